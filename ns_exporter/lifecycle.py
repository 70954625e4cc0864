"""Namespace lifecycles: which namespaces came and went since the exporter started, and how
long they lived. Pure bookkeeping over namespace identities; reads no files.

Two sources feed it:
- scans (`reconcile`): the namespaces present at the first scan are the baseline; after that a
  namespace a scan shows for the first time is created, and one a scan no longer shows is
  destroyed;
- process events (`process_seen`, `process_exited`): the event listener reads the namespaces of
  every new or exec'ing process at once, so a namespace that is born and dies between two scans
  is still counted. A namespace first seen through an event has all its processes known from
  its birth ("followed"): when the last of them exits it is a candidate for destruction, and
  it is counted destroyed as soon as the kernel confirms it is gone (`due_checks` /
  `check_result`, NS_GET_ID file handles on Linux 6.18+), or otherwise at the next scan that
  no longer shows it. A followed namespace that outlives its processes (a bind mount, an open
  fd, an unseen setns) is handed back to the scans.

Identity. Inode numbers are recycled by the kernel at once (the lowest free number is handed
out again), so an inode alone does not name a namespace over time:
- where the kernel has NS_GET_ID (Linux 6.18+), a namespace is (type, inode, 64-bit id). Scans
  carry the id of every namespace; events carry it for the namespaces a process does not share
  with its parent (or with itself before exec), which is where a new one, or an inode reused
  since the last scan, can show up;
- otherwise it is (type, inode, creation estimate): under one inode, a namespace seen by a scan
  whose creation estimate is later than the one on record (beyond CREATED_SLACK) is a new one,
  because the estimate of a namespace can only move earlier as more members are seen; and an
  inode that events show in use by a process that appeared after every known process of its
  namespace exited is a new namespace (the kernel reuses the freed inode). What stays
  undecidable without NS_GET_ID: an inode shown by two consecutive scans and reused in between
  with no event showing it (the scanner keeps the earlier estimate for an inode it saw before).
Each recycled inode counts one destroyed plus one created.

Lifetimes run from the creation estimate to the end: the exit of the last known process where
events saw it, else the last time a scan or an event still saw the namespace.

Thread-safe: one lock around every method (the listener thread and the agent share it).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ns_exporter.logs import get_logger
from ns_exporter.model import NS_TYPES, Holder, Namespace, NsKey, NsType, Snapshot

log = get_logger(__name__)

# From sub-second to a week (seconds).
LIFETIME_BUCKETS: tuple[float, ...] = (
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    86400.0,
    7 * 86400.0,
)

# A scan's creation estimate (earliest member start time) has the resolution of the boot
# time in /proc/stat (whole seconds) and of clock ticks; later than the record by more than
# this means another namespace under the same inode.
CREATED_SLACK = 1.0

# When to ask the kernel whether a followed namespace whose last known process exited is gone,
# in seconds after that exit. User and pid namespaces outlive their last process by the time
# it takes to reap it and free its credentials (tens of ms); after the last attempt the
# namespace is handed back to the scans.
CHECK_DELAYS: tuple[float, ...] = (0.0, 0.1, 0.5, 2.0, 5.0)

# Namespaces destroyed between scans are remembered until the next scan, so that a scan which
# saw one just before it died does not bring it back. Bounded (oldest forgotten first).
MAX_TOMBSTONES = 65536


@dataclass(frozen=True, slots=True)
class Histogram:
    """A lifetime histogram: cumulative counts per bucket bound, plus sum and count."""

    cumulative: tuple[int, ...]
    sum: float
    count: int


@dataclass(frozen=True, slots=True)
class LifecycleTotals:
    """The lifecycle counters as published with one state."""

    created: Mapping[NsType, int]
    destroyed: Mapping[NsType, int]
    lifetimes: Mapping[NsType, Histogram]
    bounds: tuple[float, ...] = LIFETIME_BUCKETS
    followed: int = 0  # namespaces followed through their processes right now


def _zeros() -> Mapping[NsType, int]:
    return MappingProxyType(dict.fromkeys(NS_TYPES, 0))


def _empty_histograms() -> Mapping[NsType, Histogram]:
    empty = Histogram((0,) * len(LIFETIME_BUCKETS), 0.0, 0)
    return MappingProxyType(dict.fromkeys(NS_TYPES, empty))


EMPTY_TOTALS = LifecycleTotals(_zeros(), _zeros(), _empty_histograms())


@dataclass(frozen=True, slots=True)
class LivenessCheck:
    """A question for the kernel: is this namespace still alive?"""

    key: NsKey
    ns_id: int


@dataclass(frozen=True, slots=True)
class _Tombstone:
    ns_id: int | None
    created: float
    ended: float


class _Life:
    """One namespace the lifecycle knows to be alive (mutable, internal)."""

    __slots__ = ("checkable", "checks", "created", "ended", "key", "last_seen", "members", "ns_id")

    def __init__(
        self,
        key: NsKey,
        ns_id: int | None,
        created: float,
        last_seen: float,
        members: set[int] | None,
    ) -> None:
        self.key = key
        self.ns_id = ns_id
        self.created = created
        self.last_seen = last_seen
        # The pids known to be in it, for a namespace followed since its birth; None when
        # only scans decide its end.
        self.members = members
        # When its last known process exited (a candidate for destruction), else None.
        self.ended: float | None = None
        self.checks = 0
        self.checkable = ns_id is not None


@dataclass
class _Counts:
    created: dict[NsType, int] = field(default_factory=lambda: dict.fromkeys(NS_TYPES, 0))
    destroyed: dict[NsType, int] = field(default_factory=lambda: dict.fromkeys(NS_TYPES, 0))
    buckets: dict[NsType, list[int]] = field(
        default_factory=lambda: {t: [0] * (len(LIFETIME_BUCKETS) + 1) for t in NS_TYPES}
    )
    sums: dict[NsType, float] = field(default_factory=lambda: dict.fromkeys(NS_TYPES, 0.0))

    def histogram(self, ns_type: NsType) -> Histogram:
        running, cumulative = 0, []
        per_bucket = self.buckets[ns_type]
        for count in per_bucket[:-1]:
            running += count
            cumulative.append(running)
        return Histogram(tuple(cumulative), self.sums[ns_type], running + per_bucket[-1])


class Lifecycle:
    """Created/destroyed counters and lifetimes from scans and process events."""

    def __init__(self, check_delays: Sequence[float] = CHECK_DELAYS) -> None:
        self._lock = threading.Lock()
        self._delays = tuple(check_delays)
        self._baseline = False
        self._alive: dict[NsKey, _Life] = {}
        self._members_of: dict[int, list[_Life]] = {}  # pid → followed namespaces it is in
        self._candidates: dict[NsKey, _Life] = {}  # followed, last process gone, checkable
        self._tombstones: dict[NsKey, _Tombstone] = {}
        self._counts = _Counts()
        self._version = 0
        # A concrete logger (configured by now): the module proxy binds anew on every call,
        # which costs more than the bookkeeping on the event path.
        self._log = log.bind()

    # --- what others read ------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Changes whenever a counter changes (to know when to render again)."""
        return self._version

    @property
    def has_baseline(self) -> bool:
        return self._baseline

    def totals(self) -> LifecycleTotals:
        with self._lock:
            counts = self._counts
            return LifecycleTotals(
                created=MappingProxyType(dict(counts.created)),
                destroyed=MappingProxyType(dict(counts.destroyed)),
                lifetimes=MappingProxyType({t: counts.histogram(t) for t in NS_TYPES}),
                followed=sum(1 for life in self._alive.values() if life.members is not None),
            )

    def tracked_processes(self) -> int:
        """Processes remembered as members of followed namespaces (bounded by live ones)."""
        return len(self._members_of)

    # --- scans -----------------------------------------------------------------------------

    def reconcile(self, snapshot: Snapshot) -> None:
        """Take a scan into account (the first one is the baseline)."""
        now = snapshot.stats.started
        present = snapshot.namespaces
        with self._lock:
            if not self._baseline:
                for key, ns in present.items():
                    self._alive[key] = _Life(key, ns.ns_id, ns.created, now, None)
                self._baseline = True
                self._version += 1
                return
            for key, ns in present.items():
                self._reconcile_present(key, ns, now)
            for key, life in list(self._alive.items()):
                if key not in present:
                    self._reconcile_absent(life, now)
            self._tombstones = {k: t for k, t in self._tombstones.items() if t.ended >= now}

    def _reconcile_present(self, key: NsKey, ns: Namespace, now: float) -> None:
        life = self._alive.get(key)
        if life is not None and not _same_as_scan(life, ns):
            if life.created >= now:
                return  # born after the scan began: the scan saw its predecessor
            self._destroy(life, life.last_seen, "inode_reused")
            life = None
        if life is None:
            tomb = self._tombstones.get(key)
            if tomb is not None and tomb.ended >= now and _tomb_matches(tomb, ns):
                return  # the scan saw it just before it died
            self._create(key, ns.ns_id, ns.created, now, members=None, source="scan")
            return
        life.last_seen = max(life.last_seen, now)
        if life.ns_id is None and ns.ns_id is not None:
            life.ns_id = ns.ns_id
            life.checkable = True
        if life.ended is not None and life.ended < now:
            self._hand_to_scans(life, "outlives_processes")  # mount, fd, setns

    def _reconcile_absent(self, life: _Life, now: float) -> None:
        if life.members is not None:
            # Followed: gone from the scan after its last process exited means destroyed;
            # with live known members, their exit events (or the kernel check) will tell.
            if life.ended is not None and life.ended <= now:
                self._destroy(life, life.ended, "gone_after_last_exit")
            return
        if life.last_seen >= now:
            return  # an event saw it after this scan began
        self._destroy(life, life.last_seen, "gone_from_scan")

    # --- process events --------------------------------------------------------------------

    def interest(
        self, pid: int, keys: Iterable[NsKey], changed: Collection[NsKey], at: float
    ) -> tuple[NsKey, ...] | None:
        """What a process event needs: None when nothing (the common case), else the keys
        whose NS_GET_ID would tell them apart (possibly none) before calling `process_seen`.

        `changed` are the keys that differ from the process's parent (fork) or from the
        process before (exec): new namespaces, joined ones, or an inode on record that died
        unnoticed and was reused. Keys known, unchanged and not followed only get their
        last-seen time refreshed here.
        """
        with self._lock:
            if not self._baseline:
                return None
            needed: list[NsKey] = []
            act = pid in self._members_of
            for key in keys:
                life = self._alive.get(key)
                if life is None or life.ended is not None or key in changed:
                    needed.append(key)
                elif life.members is not None:
                    act = True
                elif life.last_seen < at:
                    life.last_seen = at
            return tuple(needed) if needed or act else None

    def process_seen(
        self, pid: int, keys: Sequence[NsKey], ns_ids: Mapping[NsKey, int | None], at: float
    ) -> None:
        """A process (new, or after exec) is in these namespaces at time `at`; `ns_ids`
        holds the NS_GET_ID of those asked for by `interest` (missing or None: unknown)."""
        with self._lock:
            if not self._baseline:
                return
            now_in: list[_Life] = []
            for key in keys:
                ns_id = ns_ids.get(key)
                life = self._alive.get(key)
                if life is not None and not _same_as_event(life, ns_id, at):
                    self._destroy(life, life.last_seen, "inode_reused", tombstone=True)
                    life = None
                if life is None:
                    life = self._create(key, ns_id, at, at, members=set(), source="event")
                else:
                    life.last_seen = max(life.last_seen, at)
                    if life.ns_id is None and ns_id is not None:
                        life.ns_id = ns_id
                        life.checkable = True
                if life.members is not None:
                    life.members.add(pid)
                    if life.ended is not None:
                        life.ended = None
                        life.checks = 0
                        self._candidates.pop(key, None)
                    now_in.append(life)
            for life in self._members_of.get(pid, ()):
                if not any(life is kept for kept in now_in):
                    self._leave(life, pid, at)  # it moved out (unshare/setns, then exec)
            if now_in:
                self._members_of[pid] = now_in
            else:
                self._members_of.pop(pid, None)

    def process_exited(self, pid: int, at: float) -> None:
        """A process (thread-group leader) exited at time `at`."""
        with self._lock:
            for life in self._members_of.pop(pid, ()):
                self._leave(life, pid, at)

    def membership_lost(self) -> None:
        """Events were lost: no namespace's membership is known for sure any more.

        Every followed namespace is handed to the scans (the agent rescans at once).
        """
        with self._lock:
            for life in self._alive.values():
                if life.members is not None:
                    self._hand_to_scans(life, "events_lost")
            self._members_of.clear()
            self._candidates.clear()

    # --- asking the kernel -----------------------------------------------------------------

    def due_checks(self, now: float) -> list[LivenessCheck]:
        """Followed namespaces whose last process exited and that are due for a check."""
        with self._lock:
            due = []
            for life in self._candidates.values():
                assert life.ended is not None and life.ns_id is not None
                if life.ended + self._delays[min(life.checks, len(self._delays) - 1)] <= now:
                    due.append(LivenessCheck(life.key, life.ns_id))
            return due

    def next_check_at(self) -> float | None:
        """When the earliest pending check falls due, or None."""
        with self._lock:
            times = [
                life.ended + self._delays[min(life.checks, len(self._delays) - 1)]
                for life in self._candidates.values()
                if life.ended is not None
            ]
            return min(times) if times else None

    def check_result(self, check: LivenessCheck, alive: bool | None) -> None:
        """The kernel's answer: destroyed (False), still alive (True) or cannot tell (None)."""
        with self._lock:
            life = self._alive.get(check.key)
            if life is None or life.ns_id != check.ns_id or life.ended is None:
                return  # it changed meanwhile (a new member, a scan, a new namespace)
            if alive is False:
                self._destroy(life, life.ended, "kernel_check", tombstone=True)
            elif alive is None:
                life.checkable = False  # the next scan decides
                self._candidates.pop(life.key, None)
            else:
                life.checks += 1
                if life.checks >= len(self._delays):
                    self._hand_to_scans(life, "still_alive")

    # --- internals (lock held) -------------------------------------------------------------

    def _create(
        self,
        key: NsKey,
        ns_id: int | None,
        created: float,
        seen: float,
        *,
        members: set[int] | None,
        source: str,
    ) -> _Life:
        life = _Life(key, ns_id, created, seen, members)
        self._alive[key] = life
        self._counts.created[key.ns_type] += 1
        self._version += 1
        self._log.debug(
            "namespace_created", ns_type=key.ns_type.value, inode=key.inode, ns_id=ns_id, by=source
        )
        return life

    def _destroy(self, life: _Life, ended: float, why: str, tombstone: bool = False) -> None:
        key = life.key
        if self._alive.get(key) is life:
            del self._alive[key]
        self._candidates.pop(key, None)
        for pid in life.members or ():
            lives = self._members_of.get(pid)
            if lives is not None:
                lives[:] = [other for other in lives if other is not life]
                if not lives:
                    del self._members_of[pid]
        life.members = None
        lifetime = max(0.0, ended - life.created)
        counts = self._counts
        counts.destroyed[key.ns_type] += 1
        counts.buckets[key.ns_type][bisect.bisect_left(LIFETIME_BUCKETS, lifetime)] += 1
        counts.sums[key.ns_type] += lifetime
        self._version += 1
        self._log.debug(
            "namespace_destroyed",
            ns_type=key.ns_type.value,
            inode=key.inode,
            ns_id=life.ns_id,
            lifetime=round(lifetime, 3),
            why=why,
        )
        if tombstone:
            if len(self._tombstones) >= MAX_TOMBSTONES:
                del self._tombstones[next(iter(self._tombstones))]
            self._tombstones[key] = _Tombstone(life.ns_id, life.created, ended)

    def _leave(self, life: _Life, pid: int, at: float) -> None:
        members = life.members
        if members is None:
            return
        members.discard(pid)
        life.last_seen = max(life.last_seen, at)
        if not members and self._alive.get(life.key) is life:
            life.ended = at
            life.checks = 0
            if life.checkable:
                self._candidates[life.key] = life

    def _hand_to_scans(self, life: _Life, why: str) -> None:
        if life.members is not None:
            self._log.debug(
                "namespace_handed_to_scans",
                ns_type=life.key.ns_type.value,
                inode=life.key.inode,
                why=why,
            )
        if life.ended is not None:
            life.last_seen = max(life.last_seen, life.ended)
        life.members = None
        life.ended = None
        self._candidates.pop(life.key, None)


def _same_as_event(life: _Life, ns_id: int | None, at: float) -> bool:
    """Is the namespace an event shows under this inode the one on record?"""
    if life.ns_id is not None:
        # With ids on record: compare; a process that exited before its id could be read is
        # taken for a member (the kernel check of the recorded id decides when it ends).
        return ns_id is None or life.ns_id == ns_id
    # Without ids: a process that appeared after every known process of the namespace had
    # exited is in a new namespace that reuses the inode (one that appeared earlier was a
    # member all along, read late).
    return life.ended is None or at <= life.ended


def _same_as_scan(life: _Life, ns: Namespace) -> bool:
    """Is the namespace a scan shows under this inode the one on record?"""
    if life.ns_id is not None and ns.ns_id is not None:
        return life.ns_id == ns.ns_id
    if life.ended is not None or ns.holder is not Holder.PROCESS:
        return True  # outlived its processes; process-less estimates are first-seen times
    return ns.created <= life.created + CREATED_SLACK


def _tomb_matches(tomb: _Tombstone, ns: Namespace) -> bool:
    if tomb.ns_id is not None and ns.ns_id is not None:
        return tomb.ns_id == ns.ns_id
    return ns.created <= tomb.created + CREATED_SLACK
