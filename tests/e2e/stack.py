"""What the end-to-end tests stand up besides the exporter (tests/helpers.py runs that):
a real Prometheus, and namespaces for the exporter to see.

Every helper is a context manager that ends what it started (by pid) and removes what it
created, also when the test fails.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.helpers import child_pids, free_port, stop_process, wait_for

REPO = Path(__file__).resolve().parents[2]

# Families of SPEC.md that the exporter on this branch does not expose yet. Each is a strict
# xfail in test_dashboard_family_is_exposed: once a family appears, that test fails until it is
# removed from here, and from then on every query that uses it must return data.
NOT_EXPOSED_YET: dict[str, str] = {}

# Expects every namespace a process lives in: the test's bind-mounted netns is unexpected.
# Probes pid isolation every 2 s, for the periodic-probe panels.
POLICY = """
expected:
  - name: anything a process runs in
    holder: process
probe:
  periodic:
    interval: 2s
    modules: [pid]
"""


@dataclass(frozen=True, slots=True)
class Prometheus:
    url: str

    def query(self, expr: str) -> dict[str, Any]:
        """An instant query; returns Prometheus' `data` object, raising on any error."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body: dict[str, Any] = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"query failed: {body.get('error', response.text)}\n{expr}")
        data: dict[str, Any] = body["data"]
        return data

    def series(self, selector: str) -> list[dict[str, str]]:
        response = requests.get(
            f"{self.url}/api/v1/series",
            params={"match[]": selector, "start": str(time.time() - 300)},
            timeout=10,
        )
        response.raise_for_status()
        result: list[dict[str, str]] = response.json()["data"]
        return result


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@contextlib.contextmanager
def run_prometheus(config: str) -> Iterator[Prometheus]:
    """A real Prometheus with `config` (YAML) in a temporary directory on a free port."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is not installed (scripts/install-test-deps)"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ns-exporter-prom-") as tmp:
        config_file = Path(tmp) / "prometheus.yml"
        config_file.write_text(textwrap.dedent(config))
        log = Path(tmp) / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--storage.tsdb.path={tmp}/data",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp,
            )
        try:
            url = f"http://127.0.0.1:{port}"

            def ready() -> bool:
                assert proc.poll() is None, f"prometheus exited:\n{_log_tail(log)}"
                return requests.get(f"{url}/-/ready", timeout=2).status_code == 200

            wait_for(ready, timeout=60)
            yield Prometheus(url)
        finally:
            stop_process(proc)


def leaf(pid: int, depth: int, timeout: float = 10.0) -> int:
    """The process `depth` generations below pid, each generation an only child
    (`unshare --fork` runs its command as its one child)."""

    def find() -> int | None:
        current = pid
        for _ in range(depth):
            kids = child_pids(current)
            if len(kids) != 1:
                return None
            current = kids[0]
        return current

    return wait_for(find, timeout)


@contextlib.contextmanager
def bound_netns(name: str) -> Iterator[str]:
    """`ip netns add NAME`: a network namespace held only by a bind mount."""
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, capture_output=True)
