"""The per-process cache of a walk, on fake procfs trees with a scripted activity and clock.

The contract: links are read again unless the process's activity value is unchanged since a
baseline taken at least ACCOUNTING_BOUND before; a reused pid (new /proc/PID inode) is read
as a new process; processes that are gone are forgotten.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ns_exporter.model import NsType
from ns_exporter.procfs import activity
from ns_exporter.procfs.errors import ParseError
from ns_exporter.proctable import ProcessTable, Walk
from tests.fakeproc import HOST_NS, FakeProc


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A fake procfs, a scripted activity per pid and a clock the test moves."""

    def __init__(self, root: Path, whole_process: bool = True) -> None:
        self.proc = FakeProc(root)
        self.activity: dict[int, int | None] = {}
        self.clock = Clock()
        self.table = ProcessTable(
            tuple(NsType),
            activity.Activity("scripted", self.read_activity, whole_process),
            self.clock,
        )
        self.skipped: list[tuple[int, int | None]] = []
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)

    def read_activity(self, _proc_fd: int, pid: int) -> int | None:
        return self.activity.get(pid)

    def walk(self, after: float = activity.ACCOUNTING_BOUND + 0.1) -> Walk:
        self.clock.now += after
        return self.table.walk(self.fd, self.skip, self.parse_failed)

    def skip(self, pid: int, err: OSError) -> None:
        self.skipped.append((pid, err.errno))

    def parse_failed(self, pid: int, err: ParseError) -> None:
        raise AssertionError(f"{pid}: {err}")

    def relink(self, pid: int, ns_type: NsType, inode: int) -> None:
        """What a setns/unshare does to the process's procfs view."""
        link = self.proc.root / str(pid) / "ns" / ns_type.value
        link.unlink()
        os.symlink(f"{ns_type.value}:[{inode}]", link)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path / "proc")
    try:
        yield h
    finally:
        h.close()


def net_of(walk: Walk, pid: int) -> int:
    """The net inode of the group whose lowest member is pid."""
    index = tuple(NsType).index(NsType.NET)
    for links, group in walk.groups.items():
        if group.pid == pid:
            return int(links[index][len("net:[") : -1])
    raise AssertionError(f"pid {pid} is no group's lowest member")


def test_idle_process_keeps_its_links_without_reading_them(harness: Harness) -> None:
    harness.proc.add(10, "idle", ns={NsType.NET: 4026532001})
    harness.activity[10] = 500
    first = harness.walk()
    assert (first.scanned, first.links_read, net_of(first, 10)) == (1, 1, 4026532001)
    # the activity value is unchanged: the process has not run, so the links cannot have
    # changed; the table does not read them (the fake link changed behind its back proves it)
    harness.relink(10, NsType.NET, 4026532999)
    second = harness.walk()
    assert (second.scanned, second.links_read, net_of(second, 10)) == (1, 0, 4026532001)


def test_process_that_ran_is_read_again(harness: Harness) -> None:
    harness.proc.add(10, "busy", ns={NsType.NET: 4026532001})
    harness.activity[10] = 500
    harness.walk()
    harness.relink(10, NsType.NET, 4026532002)  # setns(2)...
    harness.activity[10] = 501  # ...takes running
    walk = harness.walk()
    assert (walk.links_read, net_of(walk, 10)) == (1, 4026532002)


def test_unchanged_activity_is_not_trusted_over_a_short_window(harness: Harness) -> None:
    harness.proc.add(10, "spinner", ns={NsType.NET: 4026532001})
    harness.activity[10] = 500
    harness.walk()
    # a task that never leaves its CPU is only accounted at the next (remote) tick: an
    # unchanged value over less than ACCOUNTING_BOUND proves nothing
    harness.relink(10, NsType.NET, 4026532002)
    walk = harness.walk(after=activity.ACCOUNTING_BOUND / 3)
    assert (walk.links_read, net_of(walk, 10)) == (1, 4026532002)
    # the baseline stays the first reading: once it is old enough, the process counts as idle
    walk = harness.walk(after=activity.ACCOUNTING_BOUND)
    assert (walk.links_read, net_of(walk, 10)) == (0, 4026532002)


def test_frequent_walks_stay_cheap_for_processes_idle_for_long(harness: Harness) -> None:
    harness.proc.add(10, "sleeper")
    harness.activity[10] = 7
    harness.walk()
    harness.walk()  # its reading is now old enough to be trusted
    for _ in range(5):  # walks much closer together than ACCOUNTING_BOUND
        assert harness.walk(after=0.1).links_read == 0
    harness.activity[10] = 8  # it runs: read at once, then again until that reading ages
    assert harness.walk(after=0.1).links_read == 1
    assert harness.walk(after=0.1).links_read == 1
    assert harness.walk(after=activity.ACCOUNTING_BOUND).links_read == 0


def test_unknown_activity_always_reads(harness: Harness) -> None:
    harness.proc.add(10, "unknown", ns={NsType.NET: 4026532001})
    harness.walk()
    harness.relink(10, NsType.NET, 4026532002)
    walk = harness.walk()
    assert (walk.links_read, net_of(walk, 10)) == (1, 4026532002)


def test_reused_pid_is_a_new_process(harness: Harness) -> None:
    old = harness.proc.add(10, "old", ns={NsType.PID: 4026532050}, start_ticks=100)
    harness.activity[10] = 500
    harness.walk()
    # it exits and the pid comes back as another process, whose directory has a new inode
    # (kept apart here while the new one is made: file systems reuse freed inode numbers)
    aside = old.rename(old.with_name("exited"))
    harness.proc.add(10, "new", start_ticks=9000)
    shutil.rmtree(aside)
    harness.activity[10] = 500  # even an identical activity value cannot hide it
    walk = harness.walk()
    (links, group), *_ = walk.groups.items()
    pid_index = tuple(NsType).index(NsType.PID)
    assert links[pid_index] == f"pid:[{HOST_NS[NsType.PID]}]".encode()
    assert group.start == 9000
    assert harness.table.representative(harness.fd, 10).comm == "new"


def test_pid_namespace_and_start_time_are_read_once(harness: Harness) -> None:
    harness.proc.add(10, "p", start_ticks=100)
    harness.walk()
    (harness.proc.root / "10" / "stat").write_bytes(b"garbage")  # never read again
    (harness.proc.root / "10" / "ns" / "pid").unlink()
    walk = harness.walk()
    assert walk.scanned == 1  # no ParseError, no skip: neither was read again
    assert next(iter(walk.groups.values())).start == 100


def test_gone_processes_are_forgotten(harness: Harness) -> None:
    for pid in (10, 11, 12):
        harness.proc.add(pid, "p")
        harness.activity[pid] = 1
    assert harness.walk().scanned == 3
    shutil.rmtree(harness.proc.root / "11")
    walk = harness.walk()
    assert walk.scanned == 2 and len(harness.table) == 2


def test_groups_share_one_key_and_count_members(harness: Harness) -> None:
    harness.proc.add(12, "b", ns={NsType.UTS: 4026532100}, start_ticks=50)
    harness.proc.add(11, "a", ns={NsType.UTS: 4026532100}, start_ticks=70)
    harness.proc.add(10, "host")
    walk = harness.walk()
    uts = tuple(NsType).index(NsType.UTS)
    group = next(g for links, g in walk.groups.items() if links[uts] == b"uts:[4026532100]")
    assert (group.count, group.pid, group.start) == (2, 11, 50)


def test_vanished_while_reading_links_is_skipped(harness: Harness) -> None:
    harness.proc.add(10, "half")
    (harness.proc.root / "10" / "ns" / "net").unlink()
    walk = harness.walk()
    assert walk.scanned == 0 and harness.skipped[0][0] == 10


def test_idle_members_witness_their_namespaces(harness: Harness) -> None:
    harness.proc.add(10, "idle", ns={NsType.NET: 4026532001})
    harness.proc.add(20, "busy", ns={NsType.NET: 4026532002})
    harness.activity.update({10: 1, 20: 1})
    first = harness.walk()
    assert not any(g.witnessed for g in first.groups.values())  # all read at first sight
    harness.activity[20] = 2
    walk = harness.walk()
    witnessed = {net_of(walk, pid): g.witnessed for g in walk.groups.values() for pid in [g.pid]}
    assert witnessed == {4026532001: True, 4026532002: False}


def write_comm(harness: Harness, pid: int, comm: str) -> None:
    (harness.proc.root / str(pid) / "comm").write_text(comm + "\n")


def test_comm_is_read_again_only_when_it_may_have_changed(harness: Harness) -> None:
    harness.proc.add(10, "first")
    harness.activity[10] = 1
    harness.walk()
    assert harness.table.representative(harness.fd, 10).comm == "first"  # from stat
    write_comm(harness, 10, "renamed")  # prctl(PR_SET_NAME) takes running...
    harness.activity[10] = 2
    harness.walk()
    assert harness.table.representative(harness.fd, 10).comm == "renamed"
    write_comm(harness, 10, "hidden")  # ...so with the activity unchanged it cannot happen
    harness.walk()
    assert harness.table.representative(harness.fd, 10).comm == "renamed"


def test_comm_always_read_when_the_activity_covers_the_main_thread_only(
    tmp_path: Path,
) -> None:
    harness = Harness(tmp_path / "proc", whole_process=False)
    try:
        harness.proc.add(10, "first")
        harness.activity[10] = 1
        harness.walk()
        harness.walk()
        write_comm(harness, 10, "by-another-thread")  # /proc/PID/comm from a sibling thread
        harness.walk()
        assert harness.table.representative(harness.fd, 10).comm == "by-another-thread"
    finally:
        harness.close()


def test_nspid_parsing() -> None:
    status = b"Name:\tx\nTgid:\t7\nNSpid:\t4242\t7\t1\nNSsid:\t1\n"
    assert activity.parse_nspid(status) == (4242, 7, 1)
    assert activity.parse_nspid(b"Name:\tx\n") == ()


def test_process_cpu_clock_ids() -> None:
    # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED) = (~pid << 3) | 2, a negative clockid
    assert activity.process_cpu_clock(1) == -14
    assert activity.process_cpu_clock(4194304) == ((~4194304) << 3) | 2


def test_reader_choice(tmp_path: Path) -> None:
    assert activity.reader_for("/proc") is activity.CPU_TIME
    # a procfs we are not visible in (or a fake tree) uses schedstat files through the fd
    assert activity.reader_for(str(tmp_path)) is activity.SCHEDSTAT


def test_schedstat_reader(tmp_path: Path) -> None:
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "schedstat").write_bytes(b"123 45 6\n")
    (tmp_path / "6").mkdir()
    (tmp_path / "6" / "schedstat").write_bytes(b"0 0 0\n")  # sched_info not accounted
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert activity.schedstat(fd, 5) == b"123 45 6\n"
        assert activity.schedstat(fd, 6) is None
        assert activity.schedstat(fd, 7) is None
    finally:
        os.close(fd)


def test_cpu_time_of_this_process_moves_and_of_a_gone_pid_is_unknown() -> None:
    before = activity.cpu_time(-1, os.getpid())
    sum(range(200_000))
    after = activity.cpu_time(-1, os.getpid())
    assert before is not None and after is not None and after > before
    assert activity.cpu_time(-1, 2**22 + 1) is None  # above any pid_max
