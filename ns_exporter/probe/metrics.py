"""ProbeResult → Prometheus text, in a fresh registry per probe (as blackbox_exporter does).

Also the families periodic probing adds to /metrics (`ns_probe_*{module}`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ns_exporter.probe.result import ProbeResult


def probe_families(result: ProbeResult) -> list[Metric]:
    success = GaugeMetricFamily(
        "probe_success", "Whether the namespace isolation probe succeeded (1) or failed (0)."
    )
    success.add_metric([], 1.0 if result.success else 0.0)
    duration = GaugeMetricFamily(
        "probe_duration_seconds", "How long the probe took to complete, in seconds."
    )
    duration.add_metric([], result.duration)
    checks = GaugeMetricFamily(
        "probe_ns_check_success",
        "Result of each isolation check the probe ran (1 pass, 0 fail).",
        labels=["check"],
    )
    for name, ok in result.checks.items():
        checks.add_metric([name], 1.0 if ok else 0.0)
    failure = GaugeMetricFamily(
        "probe_failure_info",
        "Why the probe failed (present only on failure).",
        labels=["reason"],
    )
    if result.failure_reason is not None:
        failure.add_metric([result.failure_reason.value], 1.0)
    unprivileged = GaugeMetricFamily(
        "probe_ns_unprivileged",
        "1 when the probe had no CAP_SYS_ADMIN and worked through a user namespace.",
    )
    unprivileged.add_metric([], 1.0 if result.mode == "userns" else 0.0)
    return [success, duration, checks, failure, unprivileged]


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def render_probe(result: ProbeResult) -> bytes:
    """The /probe response body: a fresh registry holding only this probe's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(probe_families(result)))
    return generate_latest(registry)


def periodic_families(latest: Mapping[str, tuple[ProbeResult, float]]) -> list[Metric]:
    """module → (its last result, unix time it finished) → the ns_probe_* families."""
    success = GaugeMetricFamily(
        "ns_probe_success",
        "Whether the last periodic isolation probe of a module succeeded (1) or failed (0).",
        labels=["module"],
    )
    last_run = GaugeMetricFamily(
        "ns_probe_last_run_timestamp_seconds",
        "Unix time the last periodic probe of a module finished.",
        labels=["module"],
    )
    duration = GaugeMetricFamily(
        "ns_probe_duration_seconds",
        "How long the last periodic probe of a module took, in seconds.",
        labels=["module"],
    )
    failure = GaugeMetricFamily(
        "ns_probe_failure_info",
        "Why the last periodic probe of a module failed (present only on failure).",
        labels=["module", "reason"],
    )
    for module, (result, finished) in sorted(latest.items()):
        success.add_metric([module], 1.0 if result.success else 0.0)
        last_run.add_metric([module], finished)
        duration.add_metric([module], result.duration)
        if result.failure_reason is not None:
            failure.add_metric([module, result.failure_reason.value], 1.0)
    return [success, last_run, duration, failure]
