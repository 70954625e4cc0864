"""What the agent publishes after every scan: the snapshot plus what is derived from it."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ns_exporter import __version__
from ns_exporter.config_reload import ReloadStatus
from ns_exporter.lifecycle import EMPTY_TOTALS, LifecycleTotals
from ns_exporter.model import NsKey, SkipReason, Snapshot, skip_counts
from ns_exporter.proc_connector import EventKind


@dataclass(frozen=True, slots=True)
class BuildInfo:
    version: str = __version__
    revision: str = "unknown"
    pythonversion: str = platform.python_version()


@dataclass(frozen=True, slots=True)
class ExporterTotals:
    """Counters over the exporter's life."""

    scans: int = 0
    skipped: Mapping[SkipReason, int] = field(default_factory=skip_counts)
    errors: int = 0

    def add(self, snapshot: Snapshot, extra_errors: int = 0) -> ExporterTotals:
        stats = snapshot.stats
        skipped = {r: self.skipped[r] + stats.skipped[r] for r in SkipReason}
        return ExporterTotals(
            scans=self.scans + 1,
            skipped=skip_counts(skipped),
            errors=self.errors + stats.errors + extra_errors,
        )


def _no_events() -> Mapping[str, int]:
    return MappingProxyType(dict.fromkeys((kind.value for kind in EventKind), 0))


@dataclass(frozen=True, slots=True)
class EventStats:
    """The process event listener's figures (all zero and down when it does not run)."""

    up: bool = False
    events: Mapping[str, int] = field(default_factory=_no_events)  # by EventKind value
    lost: int = 0  # times the kernel dropped events (ENOBUFS)
    dropped: int = 0  # queued process reads dropped because the work queue was full


@dataclass(frozen=True, slots=True)
class State:
    """The latest scan and everything derived from it; replaced whole after each scan."""

    snapshot: Snapshot
    totals: ExporterTotals
    # Keys of the namespaces no `expected:` rule matches (empty without an expected: section).
    unexpected: frozenset[NsKey] = frozenset()
    # How the last config (re)load went; None where no config is loaded (list, textfile).
    config: ReloadStatus | None = None
    lifecycle: LifecycleTotals = EMPTY_TOTALS
    events: EventStats = field(default_factory=EventStats)
