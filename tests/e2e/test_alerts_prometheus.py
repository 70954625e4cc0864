"""A real Prometheus server loads rules/ns_exporter.rules.yml, scrapes the real exporter, and
an unexpected namespace created during the test makes NsExporterUnexpectedNamespace pending."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.helpers import (
    REPO,
    free_port,
    ns_inode,
    run_exporter,
    spawned,
    stop_process,
    wait_for,
)

pytestmark = pytest.mark.root  # unshare --uts needs CAP_SYS_ADMIN

RULES = Path(REPO) / "rules" / "ns_exporter.rules.yml"


@contextlib.contextmanager
def prometheus(tmp: Path, target: str) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: install Debian's `prometheus` package"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "ns_exporter", "static_configs": [{"targets": [target]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(tmp),
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp / "prometheus.log").read_text()
            return requests.get(url + "/-/ready", timeout=5).status_code == 200

        wait_for(ready, timeout=60)
        yield url
    finally:
        stop_process(process)
        log.close()


def alerts(url: str) -> list[dict[str, Any]]:
    response = requests.get(url + "/api/v1/alerts", timeout=10)
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()["data"]["alerts"]
    return found


def test_unexpected_namespace_alert_is_pending(tmp_path: Path) -> None:
    comm = f"nsalert{os.getpid() % 100000}"
    sleeper = tmp_path / comm
    shutil.copy(shutil.which("sleep") or "/bin/sleep", sleeper)
    # A policy that expects everything but the namespaces of our uniquely named process,
    # so that the namespaces other tests on this machine create stay quiet.
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump({"expected": [{"name": "all else", "command": f"(?!{comm}$).*"}]})
    )
    with run_exporter(
        "--scan.interval=1s", f"--config.file={config}", tmp_dir=str(tmp_path)
    ) as exporter:
        target = exporter.url.removeprefix("http://")
        with prometheus(tmp_path, target) as url:
            # the rules loaded, every group healthy
            groups = requests.get(url + "/api/v1/rules", timeout=10).json()["data"]["groups"]
            assert {g["name"] for g in groups} == {"ns_exporter.recording", "ns_exporter.alerts"}
            with spawned(["unshare", "--uts", str(sleeper), "300"]) as proc:
                wait_for(lambda: Path(f"/proc/{proc.pid}/comm").read_text().strip() == comm)
                uts = str(ns_inode(proc.pid, "uts"))

                def ours() -> dict[str, Any] | None:
                    for alert in alerts(url):
                        labels = alert["labels"]
                        if (
                            labels.get("alertname") == "NsExporterUnexpectedNamespace"
                            and labels.get("ns_type") == "uts"
                            and labels.get("ns_inode") == uts
                        ):
                            return alert
                    return None

                alert = wait_for(ours, timeout=60, interval=0.5)
                assert alert["state"] == "pending"  # for: 5m, so pending for the whole test
                labels = alert["labels"]
                assert labels["command"] == comm and labels["owner"] == "root"
                assert labels["holder"] == "process" and labels["severity"] == "warning"
                assert labels["job"] == "ns_exporter"
                assert f"namespace {uts}" in alert["annotations"]["summary"]
                assert f'command "{comm}"' in alert["annotations"]["description"]
                # nothing else is unexpected under this policy
                others = [
                    a["labels"]
                    for a in alerts(url)
                    if a["labels"]["alertname"] == "NsExporterUnexpectedNamespace"
                    and a["labels"].get("command") != comm
                ]
                assert others == []
