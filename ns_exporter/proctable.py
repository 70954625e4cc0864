"""The hot path of a scan: every process's namespace links, grouped by the set they form.

The kernel has no batch interface: seeing a setns()/unshare() of a live process at the next
scan takes one readlink per namespace type that can change, every scan. What cannot change
while a process lives is read once and remembered:

- its start time (for namespace creation estimates) and its pid namespace
  (/proc/PID/ns/pid is the namespace the process was born in; setns/unshare only change
  pid_for_children);
- its comm and owner, re-read for the lowest process of each namespace only
  (`representative`) and only when the process may have changed them.

A process is recognised by the inode number of its /proc/PID directory, which the listing of
/proc already returns (d_ino), so recognising costs no system call. procfs gives the
directory of a new process a new inode: the kernel drops the dentries of a process when it
is reaped, and inode numbers come from a counter (get_next_ino) that would have to wrap
around 2^32 and land on the same number for a reused pid to match. When the kernel merely
evicted the dentry of a live process, the process is read again as if new: slower, never
wrong.

A process's namespaces change only through its own system calls, so a process that has not
run since its links were read still has them (procfs/activity.py: one clock_gettime tells).
Per known process a walk costs that one call, plus one readlinkat per changeable type,
relative to the /proc fd, when the process has run (or too recently to tell); a new process
adds a stat of /proc/PID, a read of its `stat` file and the readlink of its pid namespace.
The C reference walker (bench/) does a stat, the `stat` read and eight readlinks for every
process on every walk.

A process that has not run is also a witness: it stayed in each of its namespaces the whole
time, so those namespaces lived on and cannot have been replaced by another one recycling
their inode number (`Group.witnessed`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ns_exporter.model import NsType
from ns_exporter.procfs.activity import ACCOUNTING_BOUND, Activity
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.process import decode_comm, list_processes, parse_stat, read_small

# Link targets are kept as bytes (`net:[4026531993]`): no decoding on the hot path.
LinkSet = tuple[bytes, ...]
# How a walk groups processes: (pid namespace link, links of the changeable types).
GroupKey = tuple[bytes, LinkSet]


class _Process:
    """The cache record of one live process (mutable: it is the cache's own bookkeeping).

    Fixed while the process lives: ino, start, pid_link. Updated by walks, each identified
    by its number: `key` (its links, read in walk `read`), the activity baseline (`activity`
    as read in walk `since`, before links were read in that walk), and `comm`/`uid` as read
    in walk `checked`.
    """

    __slots__ = (
        "activity",
        "checked",
        "comm",
        "ino",
        "key",
        "pid_link",
        "read",
        "since",
        "start",
        "uid",
    )

    def __init__(self, ino: int, start: int, pid_link: bytes, comm: str, uid: int, walk: int):
        self.ino = ino  # of its /proc/PID directory: identity, detects pid reuse
        self.start = start  # starttime in clock ticks after boot
        self.pid_link = pid_link  # its pid namespace
        self.comm = comm
        self.uid = uid
        self.checked = walk
        self.key: GroupKey = (pid_link, ())
        self.read = walk
        self.activity: int | bytes | None = None
        self.since = walk


class Group:
    """Processes of one walk sharing the same namespace of every type."""

    __slots__ = ("count", "key", "pid", "start", "witnessed")

    def __init__(self, key: GroupKey, pid: int, start: int) -> None:
        self.key = key
        self.count = 1
        self.pid = pid  # the lowest
        self.start = start  # the earliest start time
        # a member has not run since a walk before this one: these namespaces have lived
        # (under these inode numbers) at least since the previous walk
        self.witnessed = False


@dataclass(frozen=True, slots=True)
class Walk:
    """One pass over the processes."""

    groups: dict[LinkSet, Group]  # namespace links in `types` order → the processes there
    scanned: int
    links_read: int  # processes whose links were read (the others had not run since)


@dataclass(frozen=True, slots=True)
class Representative:
    """The current comm and owner of a namespace's lowest process."""

    comm: str
    uid: int  # of /proc/PID (its effective uid)


SkipHandler = Callable[[int, OSError], None]
ParseHandler = Callable[[int, ParseError], None]


class ProcessTable:
    """Walks /proc and remembers, per live process, what cannot change while it lives."""

    def __init__(
        self,
        types: tuple[NsType, ...],
        activity: Activity,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._types = types
        self._changeable = tuple(t.value.encode() for t in types if t is not NsType.PID)
        self._pid_index = types.index(NsType.PID) if NsType.PID in types else None
        self._activity = activity
        self._clock = clock
        self._known: dict[int, _Process] = {}
        self._walks = 0
        self._ends: list[tuple[int, float]] = []  # (walk number, end time) of recent walks

    @property
    def types(self) -> tuple[NsType, ...]:
        return self._types

    def __len__(self) -> int:
        return len(self._known)

    def walk(self, proc_fd: int, skip: SkipHandler, parse_failed: ParseHandler) -> Walk:
        """Read every process's links, or keep them for a process that has not run since
        they were read; forget processes that are gone."""
        self._walks += 1
        number = self._walks
        trusted = self._trusted_before(self._clock())
        changeable, readlink = self._changeable, os.readlink
        activity = self._activity.read
        previous = self._known
        known: dict[int, _Process] = {}
        groups: dict[GroupKey, Group] = {}
        links_read = 0
        for pid, ino in list_processes(proc_fd):
            entry = previous.get(pid)
            try:
                # read before the links: if it runs after this, the next walk sees it
                act = activity(proc_fd, pid)
                if entry is None or entry.ino != ino:
                    entry = self._first_sight(proc_fd, pid, ino, number)
                    stale = True
                else:  # stale unless it has not run since a baseline old enough to prove it
                    stale = act is None or act != entry.activity or entry.since > trusted
                if stale:
                    prefix = b"%d/ns/" % pid
                    links = tuple([readlink(prefix + link, dir_fd=proc_fd) for link in changeable])
                    entry.key = (entry.pid_link, links)
                    entry.read = number
                    links_read += 1
                    if act is None or act != entry.activity:  # a new baseline
                        entry.activity, entry.since = act, number
            except OSError as err:
                skip(pid, err)
                continue
            except ParseError as err:
                parse_failed(pid, err)
                continue
            known[pid] = entry
            group = groups.get(entry.key)
            if group is None:
                group = groups[entry.key] = Group(entry.key, pid, entry.start)
            else:
                entry.key = group.key  # one tuple per distinct set, shared by its members
                group.count += 1
                if pid < group.pid:  # noqa: PLR1730 (the hot loop: cheaper than min())
                    group.pid = pid
                if entry.start < group.start:  # noqa: PLR1730
                    group.start = entry.start
            if not stale:
                group.witnessed = True
        self._known = known
        self._ends.append((number, self._clock()))
        return Walk(
            groups={self._in_type_order(k): g for k, g in groups.items()},
            scanned=len(known),
            links_read=links_read,
        )

    def representative(self, proc_fd: int, pid: int) -> Representative:
        """The current comm and owner uid of a process found by the last walk.

        Read again unless they were read after the process last ran: at its first sight
        in that walk, or, for a process that walk found idle, since its activity baseline
        (when the activity covers every thread: other threads can set the comm). Raises
        OSError when the process is gone or unreadable now.
        """
        entry = self._known[pid]
        number = self._walks
        idle = entry.read < number and entry.checked >= entry.since
        if entry.checked == number or (idle and self._activity.whole_process):
            return Representative(entry.comm, entry.uid)
        uid = os.stat(b"%d" % pid, dir_fd=proc_fd).st_uid
        data = read_small(proc_fd, f"{pid}/comm")
        entry.comm = decode_comm(data[:-1] if data.endswith(b"\n") else data)
        entry.uid, entry.checked = uid, number
        return Representative(entry.comm, uid)

    def fallback(self, pid: int) -> Representative:
        """The comm and uid last read, for a process that exited since the walk."""
        entry = self._known[pid]
        return Representative(entry.comm, entry.uid)

    def _trusted_before(self, now: float) -> int:
        """The latest walk that ended at least ACCOUNTING_BOUND before `now` (0 if none): an
        activity value unchanged since then proves the process has not run."""
        trusted = 0
        keep = 0
        for index, (number, end) in enumerate(self._ends):
            if end <= now - ACCOUNTING_BOUND:
                trusted, keep = number, index
        del self._ends[:keep]
        return trusted

    def _first_sight(self, proc_fd: int, pid: int, ino: int, walk: int) -> _Process:
        uid = os.stat(b"%d" % pid, dir_fd=proc_fd).st_uid
        stat = parse_stat(read_small(proc_fd, f"{pid}/stat"))
        pid_link = b""
        if self._pid_index is not None:
            pid_link = os.readlink(b"%d/ns/pid" % pid, dir_fd=proc_fd)
        return _Process(ino, stat.starttime_ticks, pid_link, stat.comm, uid, walk)

    def _in_type_order(self, key: GroupKey) -> LinkSet:
        pid_link, links = key
        if self._pid_index is None:
            return links
        return (*links[: self._pid_index], pid_link, *links[self._pid_index :])
