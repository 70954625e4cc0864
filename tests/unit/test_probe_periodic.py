"""Periodic probing: the scheduler thread and what it adds to /metrics (fake probes)."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest

from ns_exporter.probe.periodic import PeriodicProber
from ns_exporter.probe.result import FailureReason, ProbeResult


def test_runs_every_module_with_its_timeout_and_exposes_the_last_results() -> None:
    calls: list[tuple[str, float]] = []
    done = threading.Event()

    def run(module: str, timeout: float) -> ProbeResult:
        calls.append((module, timeout))
        if len(calls) >= 4:
            done.set()
        if module == "net":
            return ProbeResult.failed(module, 0.02, FailureReason.ISOLATION_BREACH)
        return ProbeResult.from_helper(module, 0.01, {"checks": {"a": True}}, [])

    prober = PeriodicProber(
        run, ["pid", "net"], 1.0, {"pid": 2.0, "net": 3.0}.__getitem__, wall_clock=lambda: 42.0
    )
    prober.run_once()
    assert calls == [("pid", 2.0), ("net", 3.0)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(prober)
    text = generate_latest(registry).decode()
    assert 'ns_probe_success{module="pid"} 1.0' in text
    assert 'ns_probe_success{module="net"} 0.0' in text
    assert 'ns_probe_last_run_timestamp_seconds{module="pid"} 42.0' in text
    assert 'ns_probe_failure_info{module="net",reason="isolation_breach"} 1.0' in text

    prober.start()  # first round at once, the next after the interval
    assert done.wait(10)
    prober.stop()
    assert len(calls) >= 4


def test_nothing_before_the_first_run_and_stop_without_start() -> None:
    prober = PeriodicProber(
        lambda m, t: ProbeResult.failed(m, 0, FailureReason.TIMEOUT), ["pid"], 60, lambda m: 1.0
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(prober)
    assert "ns_probe_success{" not in generate_latest(registry).decode()
    prober.stop()
