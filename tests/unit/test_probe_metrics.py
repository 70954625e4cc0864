"""ProbeResult → /probe metrics and the periodic ns_probe_* families; result decoding."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ns_exporter.probe.metrics import periodic_families, render_probe
from ns_exporter.probe.result import FAILURE_REASONS, FailureReason, ProbeResult


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_successful_probe_metrics() -> None:
    result = ProbeResult.from_helper(
        "pid",
        0.0123,
        {"checks": {"pid_is_1": True, "cleanup": True}, "mode": "root"},
        ["elapsed_ms=1 level=info event=x"],
    )
    got = samples(render_probe(result))
    assert got[("probe_success", ())] == 1.0
    assert got[("probe_duration_seconds", ())] == 0.0123
    assert got[("probe_ns_check_success", (("check", "pid_is_1"),))] == 1.0
    assert got[("probe_ns_unprivileged", ())] == 0.0
    assert not any(name == "probe_failure_info" for name, _ in got)


def test_failed_check_means_isolation_breach() -> None:
    result = ProbeResult.from_helper(
        "pid", 0.01, {"checks": {"pid_is_1": False, "cleanup": True}, "mode": "userns"}, []
    )
    assert result.failure_reason is FailureReason.ISOLATION_BREACH
    got = samples(render_probe(result))
    assert got[("probe_success", ())] == 0.0
    assert got[("probe_ns_check_success", (("check", "pid_is_1"),))] == 0.0
    assert got[("probe_failure_info", (("reason", "isolation_breach"),))] == 1.0
    assert got[("probe_ns_unprivileged", ())] == 1.0


def test_only_cleanup_failed_means_cleanup_failed() -> None:
    result = ProbeResult.from_helper("net", 0.01, {"checks": {"x": True, "cleanup": False}}, [])
    assert result.failure_reason is FailureReason.CLEANUP_FAILED
    assert not result.success


def test_helper_reason_wins_and_no_checks_is_not_success() -> None:
    denied = ProbeResult.from_helper("pid", 0.01, {"reason": "permission_denied", "checks": {}}, [])
    assert denied.failure_reason is FailureReason.PERMISSION_DENIED and not denied.success
    empty = ProbeResult.from_helper("pid", 0.01, {"checks": {}}, [])
    assert empty.failure_reason is FailureReason.INTERNAL_ERROR and not empty.success


def test_failure_reasons_are_the_documented_set() -> None:
    assert [r.value for r in FAILURE_REASONS] == [
        "permission_denied",
        "limit_reached",
        "unsupported",
        "timeout",
        "isolation_breach",
        "cleanup_failed",
        "internal_error",
    ]


def test_failed_result_to_json() -> None:
    result = ProbeResult.failed("time", 1.5, FailureReason.TIMEOUT, ["a"])
    data = result.to_json()
    assert data["failure_reason"] == "timeout" and data["success"] is False
    assert data["log"] == ["a"] and data["checks"] == {}


def test_periodic_families() -> None:
    ok = ProbeResult.from_helper("pid", 0.01, {"checks": {"a": True}}, [])
    bad = ProbeResult.failed("net", 0.02, FailureReason.LIMIT_REACHED)

    class Latest(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            return periodic_families({"pid": (ok, 1700000000.0), "net": (bad, 1700000001.0)})

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Latest())
    got = samples(generate_latest(registry))
    assert got[("ns_probe_success", (("module", "pid"),))] == 1.0
    assert got[("ns_probe_success", (("module", "net"),))] == 0.0
    assert got[("ns_probe_last_run_timestamp_seconds", (("module", "net"),))] == 1700000001.0
    assert got[("ns_probe_failure_info", (("module", "net"), ("reason", "limit_reached")))] == 1
    assert ("ns_probe_failure_info", (("module", "pid"), ("reason", "limit_reached"))) not in got
