"""/probe served by a real `ns-exporter serve`, and the `ns-exporter probe` command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _start(*flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ns_exporter",
            "serve",
            f"--web.listen-address=127.0.0.1:{port}",
            *list(flags),
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if _get(f"{base}/-/healthy")[0] == 200:
                return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError("the exporter did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            tids = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as text:
                    kids = [int(k) for k in text.read().split()]
            except FileNotFoundError:
                continue
            found += kids
            stack += kids
    return found


@pytest.fixture(scope="module")
def exporter() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc, base = _start()
    try:
        yield proc, base
    finally:
        _stop(proc)


def test_probe_endpoint(exporter: tuple[subprocess.Popen[bytes], str]) -> None:
    _, base = exporter
    status, body = _get(f"{base}/probe?module=pid", {"X-Prometheus-Scrape-Timeout-Seconds": "5"})
    assert status == 200
    values = {
        (s.name, tuple(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert values[("probe_success", ())] == 1.0
    assert values[("probe_ns_check_success", (("check", "host_pids_hidden"),))] == 1.0
    status, body = _get(f"{base}/probe?module=bogus")
    assert (status, body) == (
        400,
        "unknown module 'bogus' (modules: pid, mnt, net, uts, ipc, user, cgroup, time)\n",
    )
    status, body = _get(f"{base}/probe?module=net&debug=true")
    assert status == 200 and body.startswith("Logs for the probe:")


def test_50_concurrent_requests_leave_nothing(
    exporter: tuple[subprocess.Popen[bytes], str],
) -> None:
    proc, base = exporter
    modules = ["pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time"]
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda i: _get(f"{base}/probe?module={modules[i % 8]}"), range(50)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 429, 503}, statuses
    assert 200 in statuses
    assert 503 in statuses  # more than max_concurrent (4) at once
    assert all("probe_success 1.0" in body for status, body in answers if status == 200)
    refused = [body for status, body in answers if status != 200]
    assert all(body.count("\n") == 1 for body in refused)
    # What is left below the exporter: its fork server and the fork server's idle spare.
    deadline = time.monotonic() + 5
    while len(_descendants(proc.pid)) > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_descendants(proc.pid)) == 2


def test_probe_can_be_switched_off() -> None:
    proc, base = _start("--no-probe.enabled")
    try:
        assert _get(f"{base}/probe?module=pid")[0] == 404
        assert _descendants(proc.pid) == []  # no fork server either
    finally:
        _stop(proc)


def test_probe_command_verdict_and_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ns_exporter", "probe"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "the probe is pid 1" in done.stdout
    assert "verdict: ISOLATED" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "ns_exporter", "probe", "--module", "net", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["success"] is True and data["module"] == "net"
    assert data["checks"]["only_loopback"] is True
