"""The scanner's per-process cache never hides a change: every setns()/unshare() of a live
process is seen at the next scan, and a reused pid is read as the new process it is.

The scans here trust an unchanged activity value at once (ACCOUNTING_BOUND patched to 0), so
the cache is as aggressive as it can be; one test keeps the real bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ns_exporter import proctable
from ns_exporter.model import NsKey, NsType, Snapshot
from ns_exporter.probe.kernel import (
    CLONE_NEWCGROUP,
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    CLONE_NEWPID,
    CLONE_NEWUSER,
    CLONE_NEWUTS,
)
from ns_exporter.procfs import activity
from ns_exporter.scanner import Scanner, ScanOptions
from tests.helpers import REPO, child_pids, descendant, ns_inode, spawned, wait_for

pytestmark = pytest.mark.root

# A single-threaded process that changes its own namespaces when told to (stdin → stdout).
CHANGER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for line in sys.stdin:
    op, arg = line.split()
    if op == "unshare":
        rc = libc.unshare(int(arg))
    else:
        fd = os.open(arg, os.O_RDONLY | os.O_CLOEXEC)
        rc = libc.setns(fd, 0)
        os.close(fd)
    print("ok" if rc == 0 else "error " + os.strerror(ctypes.get_errno()), flush=True)
"""

TYPES = tuple(t.value for t in NsType)


class Changer:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.pid = process.pid

    def do(self, op: str, arg: str | int) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{op} {arg}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer == "ok", f"{op} {arg}: {answer}"

    def links(self) -> dict[str, int]:
        return {t: ns_inode(self.pid, t) for t in TYPES if os.path.exists(f"/proc/self/ns/{t}")}


@pytest.fixture
def changer() -> Iterator[Changer]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHANGER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield Changer(process)
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def eager_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust an unchanged activity value from the previous scan, however recent."""
    monkeypatch.setattr(proctable, "ACCOUNTING_BOUND", 0.0)


@pytest.fixture(params=[activity.CPU_TIME, activity.SCHEDSTAT], ids=lambda a: a.name)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> activity.Activity:
    """Both ways of telling that a process ran (schedstat serves procfs of other pid
    namespaces); scanners built in the test use this one."""
    chosen: activity.Activity = request.param
    monkeypatch.setattr(activity, "reader_for", lambda _procfs: chosen)
    return chosen


def scanner() -> Scanner:
    return Scanner(ScanOptions(collectors=frozenset()))


def check_scan(snap: Snapshot, changer: Changer, left: dict[str, set[int]]) -> None:
    """Every namespace the changer is in now is present; the private ones it left are gone."""
    for ns_type, inode in changer.links().items():
        assert NsKey(NsType(ns_type), inode) in snap.namespaces, f"{ns_type}:[{inode}] missing"
    for ns_type, inodes in left.items():
        for inode in inodes:
            assert NsKey(NsType(ns_type), inode) not in snap.namespaces, (
                f"{ns_type}:[{inode}] still reported after the process left it"
            )


def members(ns_type: str, inode: int) -> int:
    """Processes in a namespace, counted straight from /proc (only ours are in it)."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, PermissionError):
                count += ns_inode(int(name), ns_type) == inode
    return count


@contextlib.contextmanager
def holder(*flags: str) -> Iterator[int]:
    """A sleeping process in new namespaces of its own; yields its pid."""
    with spawned(["unshare", *flags, "--fork", "--kill-child", "sleep", "300"]) as proc:
        yield descendant(proc.pid, "sleep")


@pytest.mark.usefixtures("eager_cache", "reader")
def test_every_unshare_and_setns_is_seen_at_the_next_scan(changer: Changer) -> None:
    scan = scanner()
    check_scan(scan.scan(), changer, {})
    left: dict[str, set[int]] = {t: set() for t in TYPES}

    private: set[tuple[str, int]] = set()  # namespaces only the changer is in

    def step(op: str, arg: str | int, ns_type: str) -> Snapshot:
        before = changer.links()
        changer.do(op, arg)
        after = changer.links()
        assert after[ns_type] != before[ns_type], f"{op} did not change {ns_type}"
        if (ns_type, before[ns_type]) in private:  # it was alone there: that one is gone
            left[ns_type].add(before[ns_type])
        if op == "unshare":
            private.add((ns_type, after[ns_type]))
        snap = scan.scan()
        check_scan(snap, changer, left)
        return snap

    for flag, ns_type in (
        (CLONE_NEWUTS, "uts"),
        (CLONE_NEWIPC, "ipc"),
        (CLONE_NEWNET, "net"),
        (CLONE_NEWNS, "mnt"),
        (CLONE_NEWCGROUP, "cgroup"),
    ):
        snap = step("unshare", flag, ns_type)
        alone = snap.namespaces[NsKey(NsType(ns_type), changer.links()[ns_type])]
        assert (alone.processes, alone.pid) == (1, changer.pid)

    with holder("--net") as net_holder, holder("--time") as time_holder:
        for ns_type, pid in (("net", net_holder), ("time", time_holder)):
            snap = step("setns", f"/proc/{pid}/ns/{ns_type}", ns_type)
            inode = ns_inode(pid, ns_type)
            assert snap.namespaces[NsKey(NsType(ns_type), inode)].processes == members(
                ns_type, inode
            )
        # and back into the namespace it came from
        snap = step("setns", f"/proc/{os.getpid()}/ns/net", "net")
        inode = ns_inode(net_holder, "net")
        assert snap.namespaces[NsKey(NsType.NET, inode)].processes == members("net", inode)

    # unshare(CLONE_NEWPID) changes pid_for_children only: /proc/PID/ns/pid stays
    pid_before = changer.links()["pid"]
    changer.do("unshare", CLONE_NEWPID)
    assert changer.links()["pid"] == pid_before
    check_scan(scan.scan(), changer, left)

    step("unshare", CLONE_NEWUSER, "user")  # last: it gives up the capabilities over the rest
    snap = scan.scan()
    check_scan(snap, changer, left)


def test_change_seen_with_the_real_accounting_bound(changer: Changer) -> None:
    scan = scanner()
    scan.scan()
    time.sleep(activity.ACCOUNTING_BOUND + 0.2)  # long enough for idle processes to be trusted
    before = changer.links()["uts"]
    changer.do("unshare", CLONE_NEWUTS)
    snap = scan.scan()
    uts = changer.links()["uts"]
    assert uts != before and NsKey(NsType.UTS, uts) in snap.namespaces


@pytest.mark.usefixtures("eager_cache", "reader")
def test_idle_processes_are_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is used: sleeping processes cost no readlink at the second scan."""
    with spawned(["unshare", "--uts", "sh", "-c", "sleep 300 & sleep 300 & wait"]) as proc:
        sleepers = wait_for(lambda: _two_children(proc.pid))
        wait_for(lambda: all(_state(pid) == "S" for pid in sleepers))
        scan = scanner()
        scan.scan()
        read: list[bytes] = []
        real_readlink = os.readlink

        def spy(path: str | bytes, *, dir_fd: int | None = None) -> str | bytes:
            read.append(os.fsencode(path))
            if isinstance(path, bytes):
                return real_readlink(path, dir_fd=dir_fd)
            return real_readlink(path, dir_fd=dir_fd)

        monkeypatch.setattr(os, "readlink", spy)
        snap = scan.scan()
        ours = {b"%d" % pid for pid in sleepers}
        assert read, "the spy saw no readlink at all"
        assert not [path for path in read if path.split(b"/")[0] in ours]
        uts = ns_inode(sleepers[0], "uts")
        assert snap.namespaces[NsKey(NsType.UTS, uts)].processes == 3  # sh and two sleeps


def _two_children(pid: int) -> list[int] | None:
    children = child_pids(pid)
    return children if len(children) == 2 else None


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rfind(b")") + 2 :].split()[0].decode()


# Runs as pid 1 of a private pid namespace (unshare --pid --fork --mount-proc), where nothing
# else allocates pids: a process in a nested pid namespace exits and its pid is handed to a
# new process in the outer one. The scanner must report the new process's pid namespace.
PID_REUSE = r"""
import json, os, signal, subprocess, time
from ns_exporter import proctable
from ns_exporter.model import NsKey, NsType
from ns_exporter.scanner import Scanner, ScanOptions

proctable.ACCOUNTING_BOUND = 0.0
def pid_ns(pid):
    return int(os.readlink(f"/proc/{pid}/ns/pid").split("[")[1][:-1])
def wait_until(check, what):
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []

scanner = Scanner(ScanOptions(procfs="/proc", collectors=frozenset()))
outer = pid_ns(os.getpid())
nested = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "sleep", "300"])
wait_until(lambda: children(nested.pid), "the nested child")
child = children(nested.pid)[0]
wait_until(lambda: pid_ns(child) != outer, "the nested pid namespace")
inner = pid_ns(child)
first = scanner.scan()
nested.kill()
nested.wait()
def reaped():
    try:
        return os.waitpid(child, os.WNOHANG)[0] == child
    except ChildProcessError:
        return not os.path.exists(f"/proc/{child}")
wait_until(reaped, "the nested child to be reaped")
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(child - 1))
reuser = subprocess.Popen(["sleep", "300"])
second = scanner.scan()
print(json.dumps({
    "child": child, "reuser": reuser.pid, "inner": inner, "outer": outer,
    "inner_first": NsKey(NsType.PID, inner) in first.namespaces,
    "inner_second": NsKey(NsType.PID, inner) in second.namespaces,
    "outer_second": second.namespaces[NsKey(NsType.PID, outer)].processes,
    "processes": len([p for p in os.listdir("/proc") if p.isdigit()]),
}))
reuser.kill()
reuser.wait()
"""


def test_reused_pid_is_read_as_the_new_process() -> None:
    result = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", PID_REUSE],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": REPO},
        check=False,
    )
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    facts = json.loads(result.stdout)
    assert facts["reuser"] == facts["child"], "the pid was not reused (test set-up)"
    assert facts["inner_first"], "the nested pid namespace was not seen before"
    # stale cache: the reused pid would still be reported in the (gone) nested namespace
    assert not facts["inner_second"]
    assert facts["outer_second"] == facts["processes"]
