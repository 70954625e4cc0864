"""One walk of procfs → an immutable Snapshot of every namespace.

The per-process part is proctable.ProcessTable: one clock_gettime per known process, and its
namespace links read again only when it has run since they were read. Work per namespace
(nsfs ioctls, cgroup path, comm and owner of the lowest member, mountinfo) happens once per
namespace, never per process; the ioctl answers are cached for as long as the namespace
stays the same one, and a Namespace whose inputs did not change is the same object as in the
previous Snapshot.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType

from ns_exporter import proctable
from ns_exporter.attribution import attribute
from ns_exporter.logs import get_logger
from ns_exporter.model import (
    HIERARCHICAL_TYPES,
    CollectorResult,
    Holder,
    Namespace,
    NsKey,
    NsType,
    ScanStats,
    SkipReason,
    Snapshot,
    skip_counts,
)
from ns_exporter.procfs import activity, mountinfo, nsfs, system
from ns_exporter.procfs.cgroup import cgroup_path
from ns_exporter.procfs.errors import ParseError, ProcError, skip_reason
from ns_exporter.procfs.process import (
    list_pids,
    open_dir,
    parse_ns_link,
    read_small,
    supported_types,
)
from ns_exporter.procfs.users import UserNames
from ns_exporter.proctable import ProcessTable

log = get_logger(__name__)

# The optional parts of a scan, with their default on/off (--[no-]collector.NAME).
OPTIONAL_COLLECTORS: dict[str, bool] = {
    "mounts": True,  # namespaces held by nsfs bind mounts (mountinfo of every mnt namespace)
    "fds": False,  # namespaces held only by an open file descriptor (reads every /proc/PID/fd)
    "cgroups": True,  # cgroup path of each namespace's lowest member (for attribution)
    "limits": True,  # /proc/sys/user/max_*_namespaces
}


@dataclass(frozen=True, slots=True)
class ScanOptions:
    procfs: str = "/proc"
    rootfs: str = "/"
    collectors: frozenset[str] = frozenset(k for k, on in OPTIONAL_COLLECTORS.items() if on)


_NO_INFO = nsfs.NsInfo(ns_id=None, parent_inode=None, userns_inode=None, owner_uid=None)


class _Members:
    """Per-namespace accumulator during one walk (mutable, local to a scan)."""

    __slots__ = ("comm", "count", "pid", "start", "uid", "witnessed")

    def __init__(self, pid: int, count: int, start: int) -> None:
        self.count = count
        self.pid = pid  # the lowest member
        self.start = start  # the earliest start time of a member, in clock ticks
        self.comm = ""  # the lowest member's comm and owner, filled in after the walk
        self.uid = 0
        self.witnessed = False  # a member stayed in it since the previous scan (proctable)


@dataclass(frozen=True, slots=True)
class _Known:
    """What is cached about a namespace between scans."""

    info: nsfs.NsInfo
    created: float


@dataclass(frozen=True, slots=True)
class _Held:
    """A namespace found through a holder other than a member process."""

    holder: Holder
    path: str  # a path to open it by (for the ioctls)
    mountpoint: str = ""
    pid: int | None = None
    command: str = ""
    uid: int | None = None


class _Walk:
    """The mutable state of one scan: skip counts, errors, collector timings."""

    def __init__(self) -> None:
        self.skipped: Counter[SkipReason] = Counter()
        self.errors = 0
        self.collectors: list[CollectorResult] = []

    @contextmanager
    def collector(self, name: str) -> Iterator[None]:
        """Time one part of the scan; an unexpected failure marks it failed, never the scan."""
        started = time.perf_counter()
        success = True
        try:
            yield
        except Exception:  # one failing collector never fails the scan
            success = False
            self.errors += 1
            log.exception("collector_failed", collector=name)
        self.collectors.append(CollectorResult(name, success, time.perf_counter() - started))

    def late(self, pid: int, err: OSError) -> None:
        """A per-namespace read after the walk failed: expected when the process just exited."""
        if skip_reason(err) is None:
            self.errors += 1
            log.warning("namespace_read_failed", pid=pid, error=str(err))
        else:
            log.debug("namespace_read_skipped", pid=pid, error=str(err))

    def parse_failed(self, pid: int, err: ParseError) -> None:
        self.errors += 1
        log.warning("process_parse_failed", pid=pid, error=str(err))

    def skip(self, pid: int, err: OSError) -> None:
        reason = skip_reason(err)
        if reason is None:
            self.errors += 1
            log.warning("process_read_failed", pid=pid, error=str(err))
        else:
            self.skipped[reason] += 1
            log.debug("process_skipped", pid=pid, reason=reason.value, error=str(err))


class Scanner:
    """Walks procfs and keeps, between scans, only what cannot change for a namespace."""

    def __init__(self, options: ScanOptions, clock: Callable[[], float] = time.time) -> None:
        self._options = options
        self._proc = options.procfs
        self._clock = clock
        self._types = supported_types(self._proc)
        self._links = tuple(f"ns/{t.value}" for t in self._types)
        self._btime = system.read_btime(self._proc)
        self._hz = system.clock_ticks()
        self._users = UserNames(options.rootfs)
        self._known: dict[NsKey, _Known] = {}
        self._keys: dict[bytes, NsKey] = {}  # link target → key, from the last scan
        # link target → (the inputs, the Namespace built from them), from the last scan
        self._built: dict[bytes, tuple[tuple[object, ...], Namespace]] = {}
        self._table = ProcessTable(self._types, activity.reader_for(self._proc))
        self._links_read = 0
        self._has_ns_id = self._probe_ns_id()

    @property
    def types(self) -> tuple[NsType, ...]:
        return self._types

    @property
    def links_read(self) -> int:
        """Processes whose namespace links the last scan read (the others had not run)."""
        return self._links_read

    @property
    def has_ns_id(self) -> bool:
        """Whether the kernel answers NS_GET_ID (Linux 6.18+)."""
        return self._has_ns_id

    def _probe_ns_id(self) -> bool:
        try:
            fd = nsfs.open_ns(os.path.join(self._proc, "self", "ns", self._types[0].value))
        except (ProcError, IndexError):
            return False
        try:
            return nsfs.ns_id(fd) is not None
        except OSError:
            return False
        finally:
            os.close(fd)

    def scan(self) -> Snapshot:
        started = self._clock()
        t0 = time.perf_counter()
        walk = _Walk()
        members: list[dict[bytes, _Members]] = [{} for _ in self._types]
        proc_fd = open_dir(self._proc)
        try:
            with walk.collector("processes"):
                scanned = self._walk_processes(proc_fd, members, walk)
            held: dict[NsKey, _Held] = {}
            if "mounts" in self._options.collectors:
                with walk.collector("mounts"):
                    self._find_mounts(proc_fd, members, held, walk)
            if "fds" in self._options.collectors:
                with walk.collector("fds"):
                    self._find_fds(proc_fd, held, walk)
            cgroups: dict[int, str] = {}
            if "cgroups" in self._options.collectors:
                with walk.collector("cgroups"):
                    cgroups = self._read_cgroups(proc_fd, members, walk)
        finally:
            os.close(proc_fd)
        limits: dict[NsType, int | None] = dict.fromkeys(NsType)
        if "limits" in self._options.collectors:
            with walk.collector("limits"):
                limits.update(system.read_limits(self._proc))
        namespaces = self._build(members, held, cgroups, started, walk)
        stats = ScanStats(
            started=started,
            duration=time.perf_counter() - t0,
            processes_scanned=scanned,
            skipped=skip_counts(walk.skipped),
            errors=walk.errors,
            collectors=tuple(walk.collectors),
        )
        return Snapshot(
            namespaces=MappingProxyType(namespaces),
            limits=MappingProxyType(limits),
            stats=stats,
        )

    # --- the walk -------------------------------------------------------------------------

    def _walk_processes(
        self, proc_fd: int, members: list[dict[bytes, _Members]], walk: _Walk
    ) -> int:
        """The hot path (see proctable), then the current comm and owner of each namespace's
        lowest process: read once per distinct process, not per member."""
        result = self._table.walk(proc_fd, walk.skip, walk.parse_failed)
        self._links_read = result.links_read
        for links, group in result.groups.items():
            for by_link, target in zip(members, links, strict=True):
                found = by_link.get(target)
                if found is None:
                    found = by_link[target] = _Members(group.pid, group.count, group.start)
                else:
                    found.count += group.count
                    found.pid = min(found.pid, group.pid)
                    found.start = min(found.start, group.start)
                found.witnessed = found.witnessed or group.witnessed
        current: dict[int, proctable.Representative] = {}
        for by_link in members:
            for group_members in by_link.values():
                pid = group_members.pid
                rep = current.get(pid)
                if rep is None:
                    try:
                        rep = self._table.representative(proc_fd, pid)
                    except OSError as err:
                        walk.late(pid, err)
                        rep = self._table.fallback(pid)
                    current[pid] = rep
                group_members.comm = rep.comm
                group_members.uid = rep.uid
        return result.scanned

    def _find_mounts(
        self,
        proc_fd: int,
        members: list[dict[bytes, _Members]],
        held: dict[NsKey, _Held],
        walk: _Walk,
    ) -> None:
        """nsfs bind mounts, from the mountinfo of one member of every mount namespace."""
        if NsType.MNT not in self._types:
            return
        for group in members[self._types.index(NsType.MNT)].values():
            try:
                data = mountinfo.read(proc_fd, group.pid)
            except OSError as err:
                walk.late(group.pid, err)
                continue
            for mount in sorted(mountinfo.parse(data), key=lambda m: m.mountpoint):
                key = NsKey(mount.ns_type, mount.inode)
                if key not in held:
                    path = f"{self._proc}/{group.pid}/root{mount.mountpoint}"
                    held[key] = _Held(Holder.MOUNT, path, mountpoint=mount.mountpoint)

    def _find_fds(self, proc_fd: int, held: dict[NsKey, _Held], walk: _Walk) -> None:
        """Namespaces referenced by an open file descriptor (opt-in: costs a readlink per fd)."""
        for pid in list_pids(proc_fd):
            try:
                fd_dir = open_dir(f"{pid}/fd", dir_fd=proc_fd)
            except ProcError:
                continue  # the process exited or is unreadable: the process walk counted it
            try:
                for name in os.listdir(fd_dir):
                    try:
                        target = os.readlink(name, dir_fd=fd_dir)
                    except OSError:
                        continue  # the fd was closed between listing and reading
                    if target.endswith("]") and ":[" in target and not target.startswith("/"):
                        try:
                            ns_type, inode = parse_ns_link(target)
                        except ParseError:
                            continue  # socket:[N], pipe:[N], anon_inode:[...]
                        key = NsKey(ns_type, inode)
                        if key not in held:
                            held[key] = _Held(Holder.FD, f"{self._proc}/{pid}/fd/{name}", pid=pid)
            finally:
                os.close(fd_dir)

    def _read_cgroups(
        self, proc_fd: int, members: list[dict[bytes, _Members]], walk: _Walk
    ) -> dict[int, str]:
        """The cgroup path of each namespace's lowest member (once per distinct pid)."""
        paths: dict[int, str] = {}
        for by_link in members:
            for group in by_link.values():
                if group.pid in paths:
                    continue
                try:
                    paths[group.pid] = cgroup_path(read_small(proc_fd, f"{group.pid}/cgroup"))
                except OSError as err:
                    walk.late(group.pid, err)
                    paths[group.pid] = ""
        return paths

    # --- per namespace --------------------------------------------------------------------

    def _build(
        self,
        members: list[dict[bytes, _Members]],
        held: dict[NsKey, _Held],
        cgroups: dict[int, str],
        now: float,
        walk: _Walk,
    ) -> dict[NsKey, Namespace]:
        namespaces: list[tuple[NsKey, Namespace]] = []
        known: dict[NsKey, _Known] = {}
        keys: dict[bytes, NsKey] = {}
        built: dict[bytes, tuple[tuple[object, ...], Namespace]] = {}
        for ns_type, by_link in zip(self._types, members, strict=True):
            skip = len(ns_type.value) + 2  # `net:[`
            for target, group in by_link.items():
                key = self._keys.get(target) or NsKey(ns_type, int(target[skip:-1]))
                keys[target] = key
                path = f"{self._proc}/{group.pid}/ns/{ns_type.value}"
                start = self._btime + group.start / self._hz
                entry = self._identify(key, path, start, walk, group.witnessed)
                known[key] = entry
                hold = held.pop(key, None)
                info = entry.info
                owner_uid = info.owner_uid if ns_type is NsType.USER else group.uid
                mountpoint = hold.mountpoint if hold else ""
                cgroup = cgroups.get(group.pid, "")
                # the same inputs as last scan give the same (immutable) Namespace: reuse it
                inputs = (entry, group.count, group.pid, group.comm, owner_uid, mountpoint, cgroup)
                previous = self._built.get(target)
                if previous is not None and previous[0] == inputs:
                    namespace = previous[1]
                else:
                    namespace = Namespace(
                        key=key,
                        processes=group.count,
                        holder=Holder.PROCESS,
                        pid=group.pid,
                        command=group.comm,
                        owner_uid=owner_uid,
                        owner=self._owner(owner_uid),
                        parent_inode=info.parent_inode,
                        userns_inode=info.userns_inode,
                        ns_id=info.ns_id,
                        created=entry.created,
                        mountpoint=mountpoint,
                        cgroup=cgroup,
                        attribution=attribute(cgroup),
                    )
                built[target] = (inputs, namespace)
                namespaces.append((key, namespace))
        self._keys, self._built = keys, built
        for key, hold in sorted(held.items()):
            entry = self._identify(key, hold.path, now, walk)
            known[key] = entry
            owner_uid = entry.info.owner_uid if key.ns_type is NsType.USER else hold.uid
            namespaces.append(
                (
                    key,
                    Namespace(
                        key=key,
                        processes=0,
                        holder=hold.holder,
                        pid=hold.pid,
                        command=hold.command,
                        owner_uid=owner_uid,
                        owner=self._owner(owner_uid),
                        parent_inode=entry.info.parent_inode,
                        userns_inode=entry.info.userns_inode,
                        ns_id=entry.info.ns_id,
                        created=entry.created,
                        mountpoint=hold.mountpoint,
                    ),
                )
            )
        self._known = known  # namespaces gone since the last scan are forgotten here
        return dict(sorted(namespaces, key=_key_order))

    def _identify(
        self, key: NsKey, path: str, start: float, walk: _Walk, witnessed: bool = False
    ) -> _Known:
        """The cached facts if this is the namespace seen before under this inode, else new ones.

        With NS_GET_ID the 64-bit id tells a recycled inode apart. Without it, a namespace is
        the same one only while it stays present from one scan to the next (the cache is
        rebuilt every scan), so a recycled inode seen after a gap gets fresh facts.
        `witnessed`: a member process stayed in it since the previous scan, so it is the
        namespace seen then, without asking the kernel.
        """
        cached = self._known.get(key)
        if cached is not None and (witnessed or not self._has_ns_id):
            if start >= cached.created:
                return cached
            return _Known(cached.info, start)
        try:
            fd = nsfs.open_ns(path)
        except ProcError as err:
            log.debug(
                "namespace_open_failed", ns_type=key.ns_type.value, inode=key.inode, error=str(err)
            )
            return cached or _Known(_NO_INFO, start)
        try:
            current_id = nsfs.ns_id(fd) if self._has_ns_id else None
            if cached is not None and cached.info.ns_id == current_id:
                return cached if start >= cached.created else _Known(cached.info, start)
            info = nsfs.query(
                fd,
                hierarchical=key.ns_type in HIERARCHICAL_TYPES,
                is_user=key.ns_type is NsType.USER,
                known_id=current_id,
            )
        except ProcError as err:
            log.debug(
                "namespace_query_failed", ns_type=key.ns_type.value, inode=key.inode, error=str(err)
            )
            return cached or _Known(_NO_INFO, start)
        except OSError as err:
            walk.errors += 1
            log.warning(
                "nsfs_query_failed", ns_type=key.ns_type.value, inode=key.inode, error=str(err)
            )
            return cached or _Known(_NO_INFO, start)
        finally:
            os.close(fd)
        return _Known(info, start)

    def _owner(self, uid: int | None) -> str:
        return "" if uid is None else self._users.name(uid)


def _key_order(item: tuple[NsKey, Namespace]) -> tuple[str, int]:
    """NsKey order (type, inode) without its Python-level comparisons."""
    return (item[0].ns_type.value, item[0].inode)
