"""Flags, environment variables and their validation."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ns_exporter.cli import _with_default_command, build_parser
from ns_exporter.config import ListenAddress, Settings, parse_duration
from tests.helpers import REPO


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    args = build_parser(env or {}).parse_args(_with_default_command(argv))
    return Settings.from_args(args)


def test_defaults() -> None:
    s = settings([])
    assert s.listen == ListenAddress("", 10199)
    assert s.telemetry_path == "/metrics"
    assert s.scan_interval == 15.0
    assert s.collectors == frozenset({"mounts", "cgroups", "limits"})
    assert s.probe_enabled and s.events_enabled


def test_flags_and_environment() -> None:
    env = {
        "NS_EXPORTER_WEB_LISTEN_ADDRESS": "127.0.0.1:9000",
        "NS_EXPORTER_SCAN_INTERVAL": "1m30s",
        "NS_EXPORTER_COLLECTOR_FDS": "true",
        "NS_EXPORTER_PROBE_ENABLED": "false",
        "NS_EXPORTER_NAMESPACES_MAX_SERIES": "50",
    }
    s = settings([], env)
    assert s.listen == ListenAddress("127.0.0.1", 9000)
    assert s.scan_interval == 90.0
    assert "fds" in s.collectors
    assert not s.probe_enabled
    assert s.max_series == 50
    # the command line wins over the environment
    s = settings(["--scan.interval=5s", "--no-collector.fds", "--probe.enabled"], env)
    assert s.scan_interval == 5.0 and "fds" not in s.collectors and s.probe_enabled


@pytest.mark.parametrize(
    ("text", "seconds"), [("15s", 15), ("500ms", 0.5), ("1m30s", 90), ("2h", 7200), ("3", 3)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "15x", "-1s", "0s", "1.5.5s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [(":10199", ("", 10199)), ("[::1]:80", ("::1", 80)), ("localhost:1", ("localhost", 1))],
)
def test_listen_address(text: str, parsed: tuple[str, int]) -> None:
    assert ListenAddress.parse(text) == ListenAddress(*parsed)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--scan.interval=soon"], {}, "invalid duration"),
        (["--web.listen-address=nowhere"], {}, "invalid listen address"),
        (["--log.level=loud"], {}, "--log.level"),
        ([], {"NS_EXPORTER_SCAN_INTERVAL": "never"}, "NS_EXPORTER_SCAN_INTERVAL"),
        ([], {"NS_EXPORTER_PROBE_ENABLED": "maybe"}, "NS_EXPORTER_PROBE_ENABLED"),
        (["--web.telemetry-path=metrics"], {}, "telemetry-path"),
    ],
)
def test_bad_flags_exit_2_with_reason(argv: list[str], env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ns_exporter", *argv],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ns_exporter", "--version"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": REPO},
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout.startswith("ns_exporter ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["serve"]),
        (["--scan.interval=1s"], ["serve", "--scan.interval=1s"]),
        (["--path.procfs=/x", "list", "--json"], ["list", "--path.procfs=/x", "--json"]),
        (["list", "--type", "net"], ["list", "--type", "net"]),
        (["--version"], ["--version"]),
    ],
)
def test_command_may_follow_flags(argv: list[str], expected: list[str]) -> None:
    assert _with_default_command(argv) == expected
