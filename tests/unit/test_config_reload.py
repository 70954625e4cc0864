"""Reloading the config file: a good file swaps the policy, a bad one keeps the old one."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ns_exporter import logs
from ns_exporter.config_error import ConfigError
from ns_exporter.config_reload import ConfigReloader, ReloadStatus


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() and these tests point structlog at streams that close after the test."""
    yield
    logs.configure("info", "logfmt", sys.__stderr__)


GOOD = "expected:\n  - {name: web, command: nginx}\n"
GOOD2 = "expected:\n  - {name: web, command: nginx}\n  - {name: db, command: postgres}\n"
BAD = "expected:\n  - {name: web, command: '(nginx'}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_start_without_file_expects_everything() -> None:
    reloader = ConfigReloader("")
    assert reloader.current.config.expected is None
    assert not reloader.current.policy.active
    assert reloader.status.successful
    assert reloader.reload().successful


def test_bad_file_at_start_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        ConfigReloader(str(path))
    assert info.value.key == "expected[0].command"


def test_reload_swaps_on_success_and_keeps_old_on_failure(tmp_path: Path) -> None:
    out = io.StringIO()
    logs.configure("info", "logfmt", out)
    path = tmp_path / "c.yml"
    path.write_text(GOOD)
    clock = Clock()
    reloader = ConfigReloader(str(path), clock=clock)
    seen: list[ReloadStatus] = []
    reloader.on_reload(seen.append)
    assert reloader.status.last_success == 1000.0
    first = reloader.current

    clock.now = 2000.0
    path.write_text(BAD)
    status = reloader.reload()
    assert not status.successful
    assert status.last_success == 1000.0
    assert "expected[0].command" in status.error
    assert reloader.current is first  # the old policy stays
    assert seen == [status]  # listeners hear of failures too
    line = out.getvalue().splitlines()[-1]
    assert "config_reload_failed" in line
    assert f"file={path}" in line and "key=expected[0].command" in line and "bad regex" in line

    clock.now = 3000.0
    path.unlink()
    assert not reloader.reload().successful  # a vanished file is a failed reload too
    assert reloader.current is first

    clock.now = 4000.0
    path.write_text(GOOD2)
    status = reloader.reload()
    assert status.successful and status.last_success == 4000.0 and status.error == ""
    rules = reloader.current.config.expected
    assert rules is not None and [r.name for r in rules] == ["web", "db"]
    assert seen[-1] == status and len(seen) == 3


def test_reload_in_background(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(GOOD)
    reloader = ConfigReloader(str(path))
    done = threading.Event()
    reloader.on_reload(lambda _: done.set())
    path.write_text(GOOD2)
    reloader.reload_in_background()
    assert done.wait(10)
    rules = reloader.current.config.expected
    assert rules is not None and len(rules) == 2


def test_probe_section_change_is_applied_at_the_next_start(tmp_path: Path) -> None:
    out = io.StringIO()
    logs.configure("info", "logfmt", out)
    path = tmp_path / "c.yml"
    path.write_text(GOOD + "probe:\n  timeout: 4s\n")
    reloader = ConfigReloader(str(path))
    path.write_text(GOOD + "probe:\n  timeout: 6s\n")
    assert reloader.reload().successful
    assert "config_probe_section_changed" in out.getvalue()
    probe = reloader.current.config.probe
    assert probe is not None and probe.timeout_for("pid") == 6.0
