"""The real exporter and its config file: refused at start-up, reloaded over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import REPO, free_port, run_exporter, wait_for

BAD = "expected:\n  - name: web\n    command: nginx\n    unit: '(nginx'\n"


def test_malformed_config_refuses_to_start_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    for text, key, reason in [
        (BAD, "expected[0].unit", "bad regex"),
        ("expected:\n  - {name: a, comand: x}\n", "expected[0].comand", "unknown key"),
        ("expected:\n  - {name: a, owner_uid: root}\n", "expected[0].owner_uid", "must be a uid"),
    ]:
        config.write_text(text)
        port = free_port()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "ns_exporter",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--config.file={config}",
                "--log.format=logfmt",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": REPO},
            cwd=str(tmp_path),
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert f"file={config}" in result.stderr
        assert f"key={key}" in result.stderr and reason in result.stderr
        assert "listening" not in result.stderr  # refused before anything listens


def test_reload_over_http_keeps_the_old_policy_on_a_bad_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text("expected:\n  - {name: nothing, command: no-such-command}\n")
    with run_exporter(
        "--scan.interval=0.5s", f"--config.file={config}", tmp_dir=str(tmp_path)
    ) as exp:
        assert exp.value("ns_exporter_config_last_reload_successful") == 1
        everything = exp.value("ns_unexpected_namespaces", ns_type="mnt")
        assert everything is not None and everything >= 1  # our own mnt namespace, at least

        config.write_text("expected:\n  - {name: all, command: '.*'}\n")
        ok = requests.post(exp.url + "/-/reload", timeout=30)
        assert ok.status_code == 200, ok.text
        wait_for(lambda: exp.value("ns_unexpected_namespaces", ns_type="mnt") == 0)
        good_at = exp.value("ns_exporter_config_last_reload_success_timestamp_seconds")

        config.write_text(BAD)
        bad = requests.post(exp.url + "/-/reload", timeout=30)
        assert bad.status_code == 500
        assert "expected[0].unit" in bad.text and "bad regex" in bad.text
        wait_for(lambda: exp.value("ns_exporter_config_last_reload_successful") == 0)
        exp.wait_scans(2)
        assert exp.value("ns_unexpected_namespaces", ns_type="mnt") == 0  # old policy kept
        assert exp.value("ns_exporter_config_last_reload_success_timestamp_seconds") == good_at
        assert "event=config_reload_failed" in exp.log() and "key=expected[0].unit" in exp.log()

        assert requests.get(exp.url + "/-/reload", timeout=10).status_code == 405
        config.write_text("expected:\n  - {name: all, command: '.*'}\n")
        assert requests.put(exp.url + "/-/reload", timeout=30).status_code == 200
        wait_for(lambda: exp.value("ns_exporter_config_last_reload_successful") == 1)
