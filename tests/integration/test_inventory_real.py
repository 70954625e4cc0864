"""The real exporter against real namespaces: counts, owners, parents, holders, and lsns."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    Exporter,
    child_pids,
    descendant,
    ns_inode,
    run_exporter,
    spawned,
    wait_for,
)

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    with run_exporter("--scan.interval=0.5s", tmp_dir=str(tmp_path_factory.mktemp("exp"))) as exp:
        yield exp


def info_of(exporter: Exporter, ns_type: str, inode: int) -> dict[str, str] | None:
    for sample in exporter.samples("ns_namespace_info"):
        if sample.labels["ns_type"] == ns_type and sample.labels["ns_inode"] == str(inode):
            return dict(sample.labels)
    return None


def wait_info(exporter: Exporter, ns_type: str, inode: int, **expected: str) -> dict[str, str]:
    def check() -> dict[str, str] | None:
        labels = info_of(exporter, ns_type, inode)
        if labels is None or any(labels.get(k) != v for k, v in expected.items()):
            return None
        return labels

    return wait_for(check, timeout=15)


def processes_of(exporter: Exporter, ns_type: str, inode: int) -> float | None:
    return exporter.value("ns_namespace_processes", ns_type=ns_type, ns_inode=str(inode))


def test_uts_and_ipc_namespace_with_known_members(exporter: Exporter) -> None:
    with spawned(["unshare", "--uts", "--ipc", "sh", "-c", "sleep 300 & sleep 300 & wait"]) as proc:
        sh_pid = proc.pid
        sleeper = descendant(sh_pid, "sleep")
        uts = ns_inode(sleeper, "uts")
        assert uts != ns_inode(os.getpid(), "uts")
        wait_for(lambda: len(child_pids(sh_pid)) == 2)
        labels = wait_info(exporter, "uts", uts, pid=str(sh_pid), command="sh", owner="root")
        assert labels["holder"] == "process" and labels["owner_uid"] == "0"
        assert labels["userns_inode"] == str(ns_inode(os.getpid(), "user"))
        assert labels["parent_inode"] == ""  # only pid and user namespaces have parents
        wait_for(lambda: processes_of(exporter, "uts", uts) == 3.0)
        wait_for(lambda: processes_of(exporter, "ipc", ns_inode(sleeper, "ipc")) == 3.0)
    # gone at the next scan once the processes are gone
    wait_for(lambda: info_of(exporter, "uts", uts) is None)


def test_owner_of_a_process_running_as_another_user(exporter: Exporter) -> None:
    command = [
        "unshare",
        "--uts",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sleep",
        "300",
    ]
    with spawned(command) as proc:
        uts = wait_for(lambda: _uts_if_sleeping(proc.pid))
        labels = wait_info(exporter, "uts", uts, owner_uid="65534")
        assert labels["owner"] in {"nobody", "65534"}
        assert labels["command"] == "sleep" and labels["pid"] == str(proc.pid)


def _new_ns_once_sleeping(pid: int, ns_type: str) -> int | None:
    """The process's namespace of that type once it runs `sleep` and differs from ours."""
    with open(f"/proc/{pid}/comm") as f:
        if f.read().strip() != "sleep":
            return None
    inode = ns_inode(pid, ns_type)
    return inode if inode != ns_inode(os.getpid(), ns_type) else None


def _uts_if_sleeping(pid: int) -> int | None:
    return _new_ns_once_sleeping(pid, "uts")


def test_nested_pid_namespaces_report_parents(exporter: Exporter) -> None:
    inner_cmd = ["unshare", "--fork", "--pid", "--mount-proc", "sleep", "300"]
    command = ["unshare", "--fork", "--pid", "--mount-proc", *inner_cmd]
    with spawned(command) as proc:
        sleeper = descendant(proc.pid, "sleep")
        inner = ns_inode(sleeper, "pid")
        outer_member = descendant(proc.pid, "unshare")
        outer = ns_inode(outer_member, "pid")
        host = ns_inode(os.getpid(), "pid")
        assert len({inner, outer, host}) == 3
        wait_info(exporter, "pid", outer, parent_inode=str(host))
        wait_info(exporter, "pid", inner, parent_inode=str(outer), command="sleep")
        assert processes_of(exporter, "pid", inner) == 1.0
        # a process belongs to its innermost pid namespace: the outer one holds the inner unshare
        wait_for(lambda: processes_of(exporter, "pid", outer) == 1.0)
        wait_info(exporter, "pid", outer, command="unshare", pid=str(outer_member))


def test_user_namespace_owner_and_parent(exporter: Exporter) -> None:
    command = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "unshare",
        "--user",
        "sleep",
        "300",
    ]
    with spawned(command) as proc:
        userns = wait_for(lambda: _userns_if_sleeping(proc.pid))
        labels = wait_info(exporter, "user", userns, owner_uid="65534")
        assert labels["parent_inode"] == str(ns_inode(os.getpid(), "user"))
        assert labels["userns_inode"] == str(ns_inode(os.getpid(), "user"))


def _userns_if_sleeping(pid: int) -> int | None:
    return _new_ns_once_sleeping(pid, "user")


def test_mount_namespace(exporter: Exporter) -> None:
    with spawned(["unshare", "--mount", "sleep", "300"]) as proc:
        mnt = wait_for(lambda: _mnt_if_sleeping(proc.pid))
        wait_info(exporter, "mnt", mnt, command="sleep", pid=str(proc.pid))


def _mnt_if_sleeping(pid: int) -> int | None:
    return _new_ns_once_sleeping(pid, "mnt")


@contextlib.contextmanager
def netns(name: str) -> Iterator[int]:
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield os.stat(f"/run/netns/{name}").st_ino
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_ip_netns_add_is_held_by_a_mount(exporter: Exporter) -> None:
    with netns(f"nsexp-test-{os.getpid()}") as inode:
        labels = wait_info(exporter, "net", inode, holder="mount")
        assert labels["pid"] == "" and labels["command"] == ""
        assert processes_of(exporter, "net", inode) == 0.0
    wait_for(lambda: info_of(exporter, "net", inode) is None)


def test_scan_is_not_broken_by_hostile_comm(exporter: Exporter, tmp_path: Path) -> None:
    script = tmp_path / "rename.py"
    script.write_text(
        "import ctypes, time\n"
        "libc = ctypes.CDLL(None)\n"
        "libc.prctl(15, b'x) y (\"z\\n', 0, 0, 0)\n"  # PR_SET_NAME
        "time.sleep(300)\n"
    )
    with spawned(["unshare", "--uts", sys.executable, str(script)]) as proc:
        uts = wait_for(lambda: _uts_if_renamed(proc.pid))
        wait_info(exporter, "uts", uts, command='x) y ("z\n')
        assert exporter.value("ns_exporter_scan_errors_total") == 0.0


def _uts_if_renamed(pid: int) -> int | None:
    with open(f"/proc/{pid}/comm", "rb") as f:
        return ns_inode(pid, "uts") if f.read().startswith(b"x)") else None
