"""The Dockerfile's HEALTHCHECK command, run as is against a real exporter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from tests.deploy_files import DOCKERFILE
from tests.helpers import free_port, run_exporter


def _healthcheck_command() -> list[str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.MULTILINE)
    assert match, "no HEALTHCHECK ... CMD [...] in the Dockerfile"
    command: list[str] = json.loads(match.group(1))
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


def _run(command: list[str], port: int) -> int:
    env = {**os.environ, "NS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{port}"}
    return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode


def test_healthcheck_passes_against_a_running_exporter(tmp_path: Path) -> None:
    command = _healthcheck_command()
    with run_exporter("--no-probe.enabled", "--no-events.enabled", tmp_dir=str(tmp_path)) as exp:
        port = urlsplit(exp.url).port
        assert port is not None
        assert _run(command, port) == 0


def test_healthcheck_fails_when_nothing_listens() -> None:
    assert _run(_healthcheck_command(), free_port()) != 0
