"""Process counts agree with `lsns --json` for every namespace, taken at the same moment.

The host's own process population changes all the time (other tests, the session), so the
comparison runs in a sandbox: a fresh pid namespace with its own /proc, in which the real
exporter, lsns and the test's namespaced processes are the only processes. lsns counts
itself, so in the namespaces lsns is a member of its count is one higher; the scan compared
is one that started after lsns had exited.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.helpers import Exporter, descendant, ns_inode, run_exporter, spawned, wait_for

pytestmark = pytest.mark.root

NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


@pytest.fixture
def sandbox() -> Iterator[int]:
    with spawned(["unshare", "--fork", "--pid", "--mount-proc", "sleep", "600"]) as proc:
        yield descendant(proc.pid, "sleep")


def in_sandbox(sandbox: int, *command: str) -> list[str]:
    return ["nsenter", "-t", str(sandbox), "-p", "-m", *command]


def lsns_in(sandbox: int) -> dict[tuple[str, int], int]:
    out = subprocess.run(
        in_sandbox(sandbox, "lsns", "--json", "--output", "NS,TYPE,NPROCS"),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return {
        (row["type"], int(row["ns"])): int(row["nprocs"])
        for row in json.loads(out)["namespaces"]
        if row["nprocs"]
    }


def scanned_after(exporter: Exporter, moment: float) -> dict[tuple[str, int], int]:
    def fresh() -> bool:
        return (exporter.value("ns_exporter_last_scan_timestamp_seconds") or 0) > moment

    wait_for(fresh, timeout=15)
    return {
        (s.labels["ns_type"], int(s.labels["ns_inode"])): int(s.value)
        for s in exporter.samples("ns_namespace_processes")
        if s.value > 0
    }


def test_process_counts_agree_with_lsns(
    sandbox: int, tmp_path_factory: pytest.TempPathFactory
) -> None:

    workloads = [
        ["unshare", "--uts", "--net", "--ipc", "sh", "-c", "sleep 300 & sleep 300 & wait"],
        [
            "unshare",
            "--fork",
            "--pid",
            "--mount-proc",
            "unshare",
            "--fork",
            "--pid",
            "--mount-proc",
            "sleep",
            "300",
        ],
        ["unshare", "--user", "--map-root-user", "--mount", "sleep", "300"],
        ["unshare", "--cgroup", "--time", "sleep", "300"],
    ]
    with run_exporter(
        "--scan.interval=0.3s",
        tmp_dir=str(tmp_path_factory.mktemp("lsns")),
        preexec=in_sandbox(sandbox),
    ) as exporter:
        procs = [subprocess.Popen(in_sandbox(sandbox, *w)) for w in workloads]
        try:
            wait_for(lambda: len(lsns_in(sandbox)) >= 12, timeout=15)
            time.sleep(0.5)
            lsns = lsns_in(sandbox)
            lsns_done = time.time()
            ours = scanned_after(exporter, lsns_done)
            # lsns ran in the sandbox's pid and mount namespaces and the host's others; so did
            # the exporter, whose namespaces are the ones where lsns counted itself.
            own = {(t, ns_inode(sandbox, t)) for t in NS_TYPES}
            expected = {key: n - (1 if key in own else 0) for key, n in lsns.items()}
            expected = {key: n for key, n in expected.items() if n > 0}
            assert len(expected) >= 12
            assert ours == expected
        finally:
            for p in procs:
                p.kill()
                p.wait()
