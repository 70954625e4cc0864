"""The hot path of a scan: every process's namespace links, grouped by the set they form.

The kernel has no batch interface: seeing a setns()/unshare() of a live process at the next
scan takes one readlink per namespace type that can change, every scan. What cannot change
while a process lives is read once and remembered:

- its start time (for namespace creation estimates) and its pid namespace
  (/proc/PID/ns/pid is the namespace the process was born in; setns/unshare only change
  pid_for_children);
- its comm and owner at first sight, used only as a fallback: the comm and owner of each
  namespace's lowest process are read again every scan (`representative`), once per
  distinct process.

A process is recognised by the inode number of its /proc/PID directory, which the listing of
/proc already returns (d_ino), so recognising costs no system call. procfs gives the
directory of a new process a new inode: the kernel drops the dentries of a process when it
is reaped, and inode numbers come from a counter (get_next_ino) that would have to wrap
around 2^32 and land on the same number for a reused pid to match. When the kernel merely
evicted the dentry of a live process, the process is read again as if new: slower, never
wrong.

Per known process a walk costs one readlinkat per changeable type relative to the /proc fd
and nothing else; a new process adds a stat of /proc/PID, a read of its `stat` file and the
readlink of its pid namespace. The C reference walker (bench/) does a stat, the `stat` read
and one more readlink for every process on every walk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ns_exporter.model import NsType
from ns_exporter.procfs.activity import ACCOUNTING_BOUND, ActivityReader
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.process import decode_comm, list_processes, parse_stat, read_at

# Link targets are kept as bytes (`net:[4026531993]`): no decoding on the hot path.
LinkSet = tuple[bytes, ...]
# How a walk groups processes: (pid namespace link, links of the changeable types).
GroupKey = tuple[bytes, LinkSet]


class _Process:
    """The cache record of one live process (mutable: it is the cache's own bookkeeping).

    Fixed while the process lives: ino, start, pid_link, and the first-sight fallbacks comm
    and uid. Updated by walks: key (its links) and the activity baseline: `activity` as read
    in walk number `since`, before the links in `key` were read.
    """

    __slots__ = ("activity", "comm", "ino", "key", "pid_link", "since", "start", "uid")

    def __init__(self, ino: int, start: int, pid_link: bytes, comm: str, uid: int) -> None:
        self.ino = ino  # of its /proc/PID directory: identity, detects pid reuse
        self.start = start  # starttime in clock ticks after boot
        self.pid_link = pid_link  # its pid namespace
        self.comm = comm  # at first sight (a fallback)
        self.uid = uid  # at first sight (a fallback)
        self.key: GroupKey = (pid_link, ())
        self.activity: int | bytes | None = None
        self.since = 0


class Group:
    """Processes of one walk sharing the same namespace of every type."""

    __slots__ = ("count", "key", "pid", "start")

    def __init__(self, key: GroupKey, pid: int, start: int) -> None:
        self.key = key
        self.count = 1
        self.pid = pid  # the lowest
        self.start = start  # the earliest start time


@dataclass(frozen=True, slots=True)
class Walk:
    """One pass over the processes."""

    groups: dict[LinkSet, Group]  # namespace links in `types` order → the processes there
    scanned: int
    links_read: int  # processes whose links were read (the others had not run since)
    new_pids: frozenset[int]  # processes first seen in this walk (comm and uid are fresh)


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
        activity: ActivityReader,
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
        changeable, activity, readlink = self._changeable, self._activity, os.readlink
        previous = self._known
        known: dict[int, _Process] = {}
        groups: dict[GroupKey, Group] = {}
        new_pids: set[int] = set()
        links_read = 0
        for pid, ino in list_processes(proc_fd):
            entry = previous.get(pid)
            try:
                # read before the links: if it runs after this, the next walk sees it
                act = activity(proc_fd, pid)
                if entry is None or entry.ino != ino:
                    entry = self._first_sight(proc_fd, pid, ino)
                    new_pids.add(pid)
                    stale = True
                else:  # stale unless it has not run since a baseline old enough to prove it
                    stale = act is None or act != entry.activity or entry.since > trusted
                if stale:
                    prefix = b"%d/ns/" % pid
                    links = tuple([readlink(prefix + link, dir_fd=proc_fd) for link in changeable])
                    entry.key = (entry.pid_link, links)
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
                groups[entry.key] = Group(entry.key, pid, entry.start)
            else:
                entry.key = group.key  # one tuple per distinct set, shared by its members
                group.count += 1
                group.pid = min(group.pid, pid)
                group.start = min(group.start, entry.start)
        self._known = known
        self._ends.append((number, self._clock()))
        return Walk(
            groups={self._in_type_order(k): g for k, g in groups.items()},
            scanned=len(known),
            links_read=links_read,
            new_pids=frozenset(new_pids),
        )

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

    def representative(self, proc_fd: int, pid: int, fresh: bool) -> Representative:
        """The current comm and owner uid of a process found by the last walk.

        `fresh`: first seen by that walk, so the comm read then is current. Raises OSError
        when the process is gone or unreadable now.
        """
        uid = os.stat(b"%d" % pid, dir_fd=proc_fd).st_uid
        if fresh:
            return Representative(self._known[pid].comm, uid)
        data = read_at(proc_fd, f"{pid}/comm")
        return Representative(decode_comm(data[:-1] if data.endswith(b"\n") else data), uid)

    def fallback(self, pid: int) -> Representative:
        """comm and uid from first sight, for a process that exited since the walk."""
        entry = self._known[pid]
        return Representative(entry.comm, entry.uid)

    def _first_sight(self, proc_fd: int, pid: int, ino: int) -> _Process:
        uid = os.stat(b"%d" % pid, dir_fd=proc_fd).st_uid
        stat = parse_stat(read_at(proc_fd, f"{pid}/stat"))
        pid_link = b""
        if self._pid_index is not None:
            pid_link = os.readlink(b"%d/ns/pid" % pid, dir_fd=proc_fd)
        return _Process(ino, stat.starttime_ticks, pid_link, stat.comm, uid)

    def _in_type_order(self, key: GroupKey) -> LinkSet:
        pid_link, links = key
        if self._pid_index is None:
            return links
        return (*links[: self._pid_index], pid_link, *links[self._pid_index :])
