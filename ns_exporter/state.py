"""What the agent publishes after every scan: the snapshot plus what is derived from it."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from dataclasses import dataclass, field

from ns_exporter import __version__
from ns_exporter.config_reload import ReloadStatus
from ns_exporter.model import NsKey, SkipReason, Snapshot, skip_counts


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


@dataclass(frozen=True, slots=True)
class State:
    """The latest scan and everything derived from it; replaced whole after each scan."""

    snapshot: Snapshot
    totals: ExporterTotals
    # Keys of the namespaces no `expected:` rule matches (empty without an expected: section).
    unexpected: frozenset[NsKey] = frozenset()
    # How the last config (re)load went; None where no config is loaded (list, textfile).
    config: ReloadStatus | None = None
