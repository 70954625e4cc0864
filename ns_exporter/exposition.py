"""State → Prometheus metric families, rendered once per scan. Opens no files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ns_exporter.lifecycle import LifecycleTotals
from ns_exporter.model import NS_TYPES, Namespace, NsKey, SkipReason
from ns_exporter.state import BuildInfo, EventStats, State

INFO_LABELS: tuple[str, ...] = (
    "ns_type",
    "ns_inode",
    "pid",
    "command",
    "owner_uid",
    "owner",
    "holder",
    "parent_inode",
    "userns_inode",
    "container_runtime",
    "container_id",
    "unit",
)


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def label_text(value: str) -> str:
    """A label value that encodes as UTF-8: lone surrogates (from bytes decoded with
    surrogateescape somewhere) become visible `\\udcNN` text instead of failing the render."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def info_labels(ns: Namespace) -> list[str]:
    """The ns_namespace_info label values, in INFO_LABELS order."""
    return [
        ns.key.ns_type.value,
        str(ns.key.inode),
        _text(ns.pid),
        label_text(ns.command),
        _text(ns.owner_uid),
        label_text(ns.owner),
        ns.holder.value,
        _text(ns.parent_inode),
        _text(ns.userns_inode),
        label_text(ns.attribution.container_runtime),
        label_text(ns.attribution.container_id),
        label_text(ns.attribution.unit),
    ]


def select_series(state: State, max_series: int) -> tuple[list[Namespace], int]:
    """The namespaces that get per-namespace series, and how many were dropped.

    Beyond the limit, unexpected namespaces are kept first, then the most populated.
    """
    namespaces = list(state.snapshot.namespaces.values())
    if len(namespaces) <= max_series:
        return namespaces, 0
    unexpected = state.unexpected

    def priority(ns: Namespace) -> tuple[bool, int, NsKey]:
        return (ns.key not in unexpected, -ns.processes, ns.key)

    kept = sorted(namespaces, key=priority)[:max_series]
    return sorted(kept, key=lambda ns: ns.key), len(namespaces) - max_series


@dataclass(frozen=True, slots=True)
class Exposition:
    """Builds every metric family of /metrics from one State."""

    build: BuildInfo
    max_series: int

    def families(self, state: State) -> Iterator[Metric]:
        kept, dropped = select_series(state, self.max_series)
        yield from self.head(state)
        yield from _per_namespace(kept)
        yield from self.between(state)
        yield from _flagged(state, kept)
        yield from self.tail(state, dropped)

    def between(self, state: State) -> Iterator[Metric]:
        """The families between the per-namespace ones and ns_namespace_unexpected."""
        yield from _limits(state)
        yield from _unexpected_per_type(state)

    def head(self, state: State) -> Iterator[Metric]:
        """The families before the per-namespace ones."""
        return _per_type(state)

    def tail(self, state: State, dropped: int) -> Iterator[Metric]:
        """The families after ns_namespace_unexpected."""
        yield from _config(state)
        yield from _lifecycle(state.lifecycle)
        yield from _exporter(state, self.build, dropped)
        yield from _event_listener(state.events)


def _per_type(state: State) -> Iterator[Metric]:
    per_type = GaugeMetricFamily(
        "ns_namespaces", "Namespaces present at the last scan, per type.", labels=["ns_type"]
    )
    for ns_type, count in state.snapshot.counts_by_type().items():
        per_type.add_metric([ns_type.value], count)
    yield per_type


def processes_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ns_namespace_processes",
        "Processes in the namespace (0 when only a bind mount or a file descriptor holds it).",
        labels=["ns_type", "ns_inode"],
    )


def info_family() -> InfoMetricFamily:
    return InfoMetricFamily(
        "ns_namespace",
        "Namespace identity: lowest pid and its command, owner, holder, parents and attribution.",
        labels=list(INFO_LABELS),
    )


def created_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ns_namespace_created_timestamp_seconds",
        "Estimated creation time: earliest start time of any member process seen, "
        "or the time it was first seen when no process is in it.",
        labels=["ns_type", "ns_inode"],
    )


def flagged_family() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "ns_namespace_unexpected",
        "1 for each namespace that no expected: rule of the config file matches.",
        labels=["ns_type", "ns_inode"],
    )


def _per_namespace(kept: Iterable[Namespace]) -> Iterator[Metric]:
    processes = processes_family()
    info = info_family()
    created = created_family()
    for ns in kept:
        key = [ns.key.ns_type.value, str(ns.key.inode)]
        processes.add_metric(key, ns.processes)
        info.add_metric([], dict(zip(INFO_LABELS, info_labels(ns), strict=True)))
        created.add_metric(key, round(ns.created, 3))
    yield processes
    yield info
    yield created


def _limits(state: State) -> Iterator[Metric]:
    limit = GaugeMetricFamily(
        "ns_namespace_limit",
        "Per-user limit on namespaces of this type (/proc/sys/user/max_TYPE_namespaces).",
        labels=["ns_type"],
    )
    for ns_type in NS_TYPES:
        value = state.snapshot.limits.get(ns_type)
        if value is not None:
            limit.add_metric([ns_type.value], value)
    yield limit


def _unexpected_per_type(state: State) -> Iterator[Metric]:
    counts = dict.fromkeys(NS_TYPES, 0)
    for key in state.unexpected:
        counts[key.ns_type] += 1
    per_type = GaugeMetricFamily(
        "ns_unexpected_namespaces",
        "Namespaces that no expected: rule of the config file matches, per type.",
        labels=["ns_type"],
    )
    for ns_type, count in counts.items():
        per_type.add_metric([ns_type.value], count)
    yield per_type


def _flagged(state: State, kept: Iterable[Namespace]) -> Iterator[Metric]:
    flagged = flagged_family()
    for ns in kept:
        if ns.key in state.unexpected:
            flagged.add_metric([ns.key.ns_type.value, str(ns.key.inode)], 1)
    yield flagged


def _config(state: State) -> Iterator[Metric]:
    config = state.config
    if config is not None:
        yield GaugeMetricFamily(
            "ns_exporter_config_last_reload_successful",
            "Whether the last load of the config file succeeded (0: still on the previous one).",
            value=1 if config.successful else 0,
        )
        yield GaugeMetricFamily(
            "ns_exporter_config_last_reload_success_timestamp_seconds",
            "Time of the last successful load of the config file.",
            value=config.last_success,
        )


def _lifecycle(totals: LifecycleTotals) -> Iterator[Metric]:
    created = CounterMetricFamily(
        "ns_namespaces_created",
        "Namespaces created since the exporter started (those present at its first scan are "
        "the baseline), seen by scans or, between scans, by process events.",
        labels=["ns_type"],
    )
    destroyed = CounterMetricFamily(
        "ns_namespaces_destroyed",
        "Namespaces destroyed since the exporter started.",
        labels=["ns_type"],
    )
    lifetimes = HistogramMetricFamily(
        "ns_namespace_lifetime_seconds",
        "Lifetime of destroyed namespaces, from the creation estimate to the exit of the last "
        "known process (or the last time the namespace was seen).",
        labels=["ns_type"],
    )
    bounds = [repr(float(bound)) for bound in totals.bounds]  # le="0.01" ... "604800.0"
    for ns_type in NS_TYPES:
        created.add_metric([ns_type.value], totals.created[ns_type])
        destroyed.add_metric([ns_type.value], totals.destroyed[ns_type])
        hist = totals.lifetimes[ns_type]
        buckets = [*zip(bounds, hist.cumulative, strict=True), ("+Inf", hist.count)]
        lifetimes.add_metric([ns_type.value], buckets, hist.sum)
    yield created
    yield destroyed
    yield lifetimes


def _event_listener(events: EventStats) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "ns_exporter_event_listener_up",
        "1 while the process event listener runs; 0 when disabled or unavailable (polling only: "
        "namespaces that live less than a scan interval are missed).",
        value=1.0 if events.up else 0.0,
    )
    received = CounterMetricFamily(
        "ns_exporter_events",
        "Process events received from the kernel's proc connector, by event "
        "(fork of a process, exec, exit of a process; threads are filtered out).",
        labels=["event"],
    )
    for event, count in events.events.items():
        received.add_metric([event], count)
    yield received
    yield CounterMetricFamily(
        "ns_exporter_events_lost",
        "Times the kernel dropped process events because the listener's socket buffer was "
        "full (ENOBUFS); each one triggers a full rescan.",
        value=events.lost,
    )
    yield CounterMetricFamily(
        "ns_exporter_events_dropped",
        "Processes whose namespaces were not read because the listener's bounded work queue "
        "was full (fork storm); the oldest queued reads are dropped first.",
        value=events.dropped,
    )


def _exporter(state: State, build: BuildInfo, dropped: int) -> Iterator[Metric]:
    stats = state.snapshot.stats
    totals = state.totals
    yield InfoMetricFamily(
        "ns_exporter_build",
        "Build information of ns_exporter.",
        value={
            "version": label_text(build.version),
            "revision": label_text(build.revision),  # from the environment: may be anything
            "pythonversion": build.pythonversion,
        },
    )
    yield GaugeMetricFamily(
        "ns_exporter_scan_duration_seconds", "Duration of the last scan.", value=stats.duration
    )
    yield CounterMetricFamily("ns_exporter_scans", "Scans completed.", value=totals.scans)
    yield GaugeMetricFamily(
        "ns_exporter_last_scan_timestamp_seconds",
        "Time the last scan started.",
        value=stats.started,
    )
    yield GaugeMetricFamily(
        "ns_exporter_processes_scanned",
        "Processes read by the last scan.",
        value=stats.processes_scanned,
    )
    skipped = CounterMetricFamily(
        "ns_exporter_scan_skipped_processes",
        "Processes left out of scans, by reason (vanished mid-scan or permission denied).",
        labels=["reason"],
    )
    for reason in SkipReason:
        skipped.add_metric([reason.value], totals.skipped[reason])
    yield skipped
    yield CounterMetricFamily(
        "ns_exporter_scan_errors",
        "Unexpected errors during scans (should stay 0).",
        value=totals.errors,
    )
    yield GaugeMetricFamily(
        "ns_exporter_namespaces_dropped",
        "Namespaces left without per-namespace series by --namespaces.max-series.",
        value=dropped,
    )
    success = GaugeMetricFamily(
        "ns_scrape_collector_success",
        "Whether a collector succeeded in the last scan.",
        labels=["collector"],
    )
    duration = GaugeMetricFamily(
        "ns_scrape_collector_duration_seconds",
        "Duration of a collector in the last scan.",
        labels=["collector"],
    )
    for result in stats.collectors:
        success.add_metric([result.name], 1.0 if result.success else 0.0)
        duration.add_metric([result.name], result.duration)
    yield success
    yield duration


class _StateCollector(Collector):
    def __init__(self, exposition: Exposition, state: State) -> None:
        self._exposition = exposition
        self._state = state

    def collect(self) -> Iterator[Metric]:
        return self._exposition.families(self._state)


class Families(Collector):
    """A collector that yields given families (to render them with prometheus_client)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(exposition: Exposition, state: State, extra: Iterable[Collector] = ()) -> bytes:
    """The text exposition (format 0.0.4) of a State, plus any extra collectors, built afresh
    by prometheus_client (the reference for `exposition_cache.CachedRenderer`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StateCollector(exposition, state))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)
