"""The scanner on fake procfs trees: grouping, owners, holders, races, hostile comms."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from ns_exporter import proctable
from ns_exporter import scanner as scanner_module
from ns_exporter.model import Holder, NsKey, NsType, SkipReason
from ns_exporter.scanner import Scanner, ScanOptions
from tests.fakeproc import BTIME, HOST_NS, FakeProc

ALL = frozenset({"mounts", "cgroups", "limits"})


def make_scanner(root: Path, collectors: frozenset[str] = ALL) -> Scanner:
    return Scanner(ScanOptions(procfs=str(root), collectors=collectors), clock=lambda: 1.8e9)


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


def test_groups_processes_by_namespace(proc: FakeProc) -> None:
    proc.add(1, "init", start_ticks=10)
    proc.add(20, "sh", start_ticks=500)
    proc.add(30, "sleep", ns={NsType.NET: 4026532001, NsType.UTS: 4026532002}, start_ticks=900)
    proc.add(31, "sleep", ns={NsType.NET: 4026532001}, start_ticks=700)
    snap = make_scanner(proc.root).scan()

    counts = snap.counts_by_type()
    assert counts[NsType.NET] == 2 and counts[NsType.UTS] == 2 and counts[NsType.PID] == 1
    host_net = snap.namespaces[NsKey(NsType.NET, HOST_NS[NsType.NET])]
    assert (host_net.processes, host_net.pid, host_net.command) == (2, 1, "init")
    new_net = snap.namespaces[NsKey(NsType.NET, 4026532001)]
    assert (new_net.processes, new_net.pid, new_net.command) == (2, 30, "sleep")
    assert new_net.holder is Holder.PROCESS
    # creation estimate: earliest member start (pid 31 started before pid 30)
    hz = os.sysconf("SC_CLK_TCK")
    assert new_net.created == pytest.approx(BTIME + 700 / hz)
    assert snap.namespaces[NsKey(NsType.UTS, 4026532002)].processes == 1
    assert snap.stats.processes_scanned == 4
    assert snap.stats.errors == 0
    assert snap.limits[NsType.USER] == 1000


def test_owner_is_lowest_pid_uid(proc: FakeProc) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown the fake pid directories")
    os.chown(proc.add(40, "a", ns={NsType.IPC: 4026532100}), 65534, 65534)
    os.chown(proc.add(41, "b", ns={NsType.IPC: 4026532100}), 0, 0)
    ns = make_scanner(proc.root).scan().namespaces[NsKey(NsType.IPC, 4026532100)]
    assert (ns.pid, ns.owner_uid, ns.owner) == (40, 65534, "nobody")


@pytest.mark.parametrize(
    "comm",
    [b"a b", b"x) y (z", b"'\"q\"'", b"new\nline", b"\xff\xfe", b")", b"((", b""],
)
def test_hostile_comm_never_breaks_a_scan(proc: FakeProc, comm: bytes) -> None:
    proc.add(50, comm, ns={NsType.UTS: 4026532200})
    snap = make_scanner(proc.root).scan()
    ns = snap.namespaces[NsKey(NsType.UTS, 4026532200)]
    assert ns.command == comm.decode("utf-8", errors="backslashreplace")
    assert snap.stats.errors == 0


def test_process_vanishing_between_listing_and_reading(
    proc: FakeProc, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc.add(60, "stays")
    gone = proc.add(61, "goes", ns={NsType.NET: 4026532300})
    real_list = proctable.list_processes

    def list_then_remove(fd: int) -> list[tuple[int, int]]:
        processes = real_list(fd)
        shutil.rmtree(gone)  # the process exits right after the listing
        return processes

    monkeypatch.setattr(proctable, "list_processes", list_then_remove)
    snap = make_scanner(proc.root).scan()
    assert snap.stats.skipped[SkipReason.VANISHED] == 1
    assert snap.stats.errors == 0
    assert NsKey(NsType.NET, 4026532300) not in snap.namespaces
    assert snap.stats.processes_scanned == 1


def test_process_vanishing_mid_read(proc: FakeProc) -> None:
    half = proc.add(70, "half")
    (half / "ns" / "uts").unlink()  # readlink gets ENOENT after stat was read
    proc.add(71, "whole")
    snap = make_scanner(proc.root).scan()
    assert snap.stats.skipped[SkipReason.VANISHED] == 1
    assert snap.stats.processes_scanned == 1


def test_permission_denied_is_counted(proc: FakeProc, monkeypatch: pytest.MonkeyPatch) -> None:
    proc.add(80, "mine")
    proc.add(81, "theirs", ns={NsType.MNT: 4026532400})
    real_readlink = os.readlink

    def readlink(path: str | bytes, *, dir_fd: int | None = None) -> str | bytes:
        if os.fsdecode(path).startswith("81/"):  # relative to the procfs fd: PID/ns/TYPE
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_readlink(path, dir_fd=dir_fd)

    monkeypatch.setattr(scanner_module.os, "readlink", readlink)
    snap = make_scanner(proc.root).scan()
    assert snap.stats.skipped[SkipReason.PERMISSION_DENIED] == 1
    assert snap.stats.errors == 0
    assert NsKey(NsType.MNT, 4026532400) not in snap.namespaces


def test_unexpected_errors_are_counted_not_raised(proc: FakeProc) -> None:
    proc.add(90, "garbled", stat=b"90 no parentheses here\n")
    proc.add(91, "fine")
    snap = make_scanner(proc.root).scan()
    assert snap.stats.errors == 1
    assert snap.stats.processes_scanned == 1


def test_nsfs_bind_mount_without_processes(proc: FakeProc) -> None:
    mounts = (
        "22 27 0:21 / /proc rw - proc proc rw\n"
        "43 42 0:4 net:[4026532500] /run/netns/blue rw shared:2 - nsfs nsfs rw\n"
        f"44 42 0:4 net:[{HOST_NS[NsType.NET]}] /run/netns/host rw - nsfs nsfs rw\n"
    )
    proc.add(1, "init", mountinfo=mounts)
    snap = make_scanner(proc.root).scan()
    blue = snap.namespaces[NsKey(NsType.NET, 4026532500)]
    assert (blue.holder, blue.processes, blue.pid, blue.mountpoint) == (
        Holder.MOUNT,
        0,
        None,
        "/run/netns/blue",
    )
    assert blue.created == 1.8e9  # first seen
    host = snap.namespaces[NsKey(NsType.NET, HOST_NS[NsType.NET])]
    assert host.holder is Holder.PROCESS and host.mountpoint == "/run/netns/host"
    # without the mounts collector, the mount-held namespace is not reported
    snap = make_scanner(proc.root, frozenset({"cgroups"})).scan()
    assert NsKey(NsType.NET, 4026532500) not in snap.namespaces
    assert [c.name for c in snap.stats.collectors] == ["processes", "cgroups"]


def test_missing_namespace_type_on_old_kernels(tmp_path: Path) -> None:
    types = tuple(t for t in NsType if t is not NsType.TIME)
    proc = FakeProc(tmp_path / "proc", types=types)
    proc.add(1, "init")
    snap = make_scanner(proc.root).scan()
    assert snap.counts_by_type()[NsType.TIME] == 0
    assert snap.counts_by_type()[NsType.NET] == 1


def test_collectors_report_success(proc: FakeProc) -> None:
    proc.add(1, "init", cgroup="0::/init.scope\n")
    snap = make_scanner(proc.root).scan()
    assert {c.name: c.success for c in snap.stats.collectors} == {
        "processes": True,
        "mounts": True,
        "cgroups": True,
        "limits": True,
    }
    assert snap.namespaces[NsKey(NsType.PID, HOST_NS[NsType.PID])].cgroup == "/init.scope"


def test_created_estimate_never_moves_later(proc: FakeProc) -> None:
    proc.add(10, "early", ns={NsType.UTS: 4026532600}, start_ticks=100)
    late = proc.add(11, "late", ns={NsType.UTS: 4026532600}, start_ticks=5000)
    scanner = make_scanner(proc.root)
    first = scanner.scan().namespaces[NsKey(NsType.UTS, 4026532600)].created
    shutil.rmtree(proc.root / "10")
    second = scanner.scan().namespaces[NsKey(NsType.UTS, 4026532600)]
    assert second.processes == 1 and second.pid == 11
    assert second.created == first
    assert late.exists()
