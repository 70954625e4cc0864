"""The data the exporter works on: namespace types, identities, namespaces and scan snapshots.

Everything here is an immutable value. Nothing here reads files or knows Prometheus.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class NsType(enum.StrEnum):
    """The namespace kinds, named as in /proc/PID/ns."""

    CGROUP = "cgroup"
    IPC = "ipc"
    MNT = "mnt"
    NET = "net"
    PID = "pid"
    TIME = "time"
    USER = "user"
    UTS = "uts"


NS_TYPES: tuple[NsType, ...] = tuple(NsType)

# Types whose namespaces form a hierarchy the kernel reports with NS_GET_PARENT.
HIERARCHICAL_TYPES: frozenset[NsType] = frozenset({NsType.PID, NsType.USER})


class Holder(enum.StrEnum):
    """What keeps a namespace alive, in order of precedence."""

    PROCESS = "process"
    MOUNT = "mount"
    FD = "fd"


class SkipReason(enum.StrEnum):
    """Why a process was left out of a scan."""

    VANISHED = "vanished"
    PERMISSION_DENIED = "permission_denied"


@dataclass(frozen=True, slots=True, order=True)
class NsKey:
    """A namespace as the kernel names it right now: type and nsfs inode.

    Inode numbers are recycled; `Namespace.ns_id` (NS_GET_ID) or the creation estimate
    tells two namespaces that shared an inode apart over time.
    """

    ns_type: NsType
    inode: int


@dataclass(frozen=True, slots=True)
class Attribution:
    """Who runs a namespace, derived from a member process's cgroup path."""

    container_runtime: str = ""
    container_id: str = ""
    unit: str = ""
    # Kubernetes pod uid (container_runtime "kubepods"), with dashes; "" otherwise.
    pod_uid: str = ""


NO_ATTRIBUTION = Attribution()


@dataclass(frozen=True, slots=True)
class Namespace:
    """One namespace as seen by one scan."""

    key: NsKey
    processes: int
    holder: Holder
    # Lowest member pid and its comm (as lsns); None/"" for a namespace without processes.
    pid: int | None
    command: str
    # Owner: lowest member's uid, or for a user namespace the kernel's NS_GET_OWNER_UID.
    owner_uid: int | None
    owner: str
    # NS_GET_PARENT (pid and user namespaces only) and NS_GET_USERNS, as inodes.
    parent_inode: int | None
    userns_inode: int | None
    # NS_GET_ID (Linux 6.18+), None where the kernel lacks it.
    ns_id: int | None
    # Estimated creation time (unix seconds): earliest member start time seen,
    # or the time it was first seen for namespaces without processes.
    created: float
    attribution: Attribution = NO_ATTRIBUTION
    # Where it is bind-mounted (holder mount), e.g. /run/netns/NAME; "" otherwise.
    mountpoint: str = ""
    # The cgroup path of the lowest member, for attribution; "" when unknown.
    cgroup: str = ""

    @property
    def ns_type(self) -> NsType:
        return self.key.ns_type

    @property
    def inode(self) -> int:
        return self.key.inode


def _frozen_counts(counts: Mapping[SkipReason, int] | None = None) -> Mapping[SkipReason, int]:
    base = {reason: 0 for reason in SkipReason}
    if counts:
        base.update(counts)
    return MappingProxyType(base)


@dataclass(frozen=True, slots=True)
class CollectorResult:
    """How one part of a scan went (node_exporter's ns_scrape_collector_*)."""

    name: str
    success: bool
    duration: float


@dataclass(frozen=True, slots=True)
class ScanStats:
    """Facts about one scan itself."""

    started: float  # unix time the scan started
    duration: float  # seconds
    processes_scanned: int
    skipped: Mapping[SkipReason, int] = field(default_factory=_frozen_counts)
    errors: int = 0  # anything unexpected (must stay 0 in normal operation)
    collectors: tuple[CollectorResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The immutable result of one walk of procfs."""

    namespaces: Mapping[NsKey, Namespace]
    limits: Mapping[NsType, int | None]
    stats: ScanStats

    def of_type(self, ns_type: NsType) -> list[Namespace]:
        return [ns for ns in self.namespaces.values() if ns.key.ns_type is ns_type]

    def counts_by_type(self) -> dict[NsType, int]:
        counts = dict.fromkeys(NS_TYPES, 0)
        for key in self.namespaces:
            counts[key.ns_type] += 1
        return counts


def skip_counts(counts: Mapping[SkipReason, int] | None = None) -> Mapping[SkipReason, int]:
    """A read-only count for every skip reason (missing reasons are 0)."""
    return _frozen_counts(counts)
