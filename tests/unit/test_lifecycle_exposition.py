"""Lifecycle and event listener families in /metrics: names, types, labels, promtool."""

from __future__ import annotations

import shutil
import subprocess
from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ns_exporter.exposition import Exposition, render
from ns_exporter.lifecycle import LIFETIME_BUCKETS, Lifecycle, LifecycleTotals
from ns_exporter.model import NS_TYPES, NsKey, NsType, ScanStats, Snapshot
from ns_exporter.state import BuildInfo, EventStats, ExporterTotals, State


def empty_snapshot() -> Snapshot:
    return Snapshot(
        namespaces=MappingProxyType({}),
        limits=MappingProxyType({}),
        stats=ScanStats(started=100.0, duration=0.01, processes_scanned=0),
    )


def totals_with_one_short_lived_net() -> LifecycleTotals:
    life = Lifecycle()
    life.reconcile(empty_snapshot())
    key = NsKey(NsType.NET, 7)
    life.interest(10, (key,), (key,), 101.0)
    life.process_seen(10, (key,), {key: 70}, 101.0)
    life.process_exited(10, 101.2)
    for check in life.due_checks(101.2):
        life.check_result(check, False)
    return life.totals()


def rendered(state: State) -> bytes:
    return render(Exposition(build=BuildInfo(), max_series=100), state)


@pytest.fixture
def text() -> str:
    state = State(
        snapshot=empty_snapshot(),
        totals=ExporterTotals(),
        lifecycle=totals_with_one_short_lived_net(),
        events=EventStats(up=True, events={"fork": 5, "exec": 4, "exit": 3}, lost=1, dropped=2),
    )
    return rendered(state).decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_lifecycle_families(text: str) -> None:
    values = samples(text)
    for ns_type in NS_TYPES:
        label = (("ns_type", ns_type.value),)
        expected = 1.0 if ns_type is NsType.NET else 0.0
        assert values[("ns_namespaces_created_total", label)] == expected
        assert values[("ns_namespaces_destroyed_total", label)] == expected
        assert values[("ns_namespace_lifetime_seconds_count", label)] == expected
    net = "net"
    assert values[("ns_namespace_lifetime_seconds_bucket", (("le", "0.1"), ("ns_type", net)))] == 0
    assert values[("ns_namespace_lifetime_seconds_bucket", (("le", "0.25"), ("ns_type", net)))] == 1
    assert values[("ns_namespace_lifetime_seconds_bucket", (("le", "+Inf"), ("ns_type", net)))] == 1
    assert values[("ns_namespace_lifetime_seconds_sum", (("ns_type", net),))] == pytest.approx(0.2)
    les = {labels[0][1] for (name, labels) in values if name.endswith("_bucket")}
    assert les == {repr(b) for b in LIFETIME_BUCKETS} | {"+Inf"}


def test_event_listener_families(text: str) -> None:
    values = samples(text)
    assert values[("ns_exporter_event_listener_up", ())] == 1.0
    assert values[("ns_exporter_events_total", (("event", "fork"),))] == 5
    assert values[("ns_exporter_events_total", (("event", "exec"),))] == 4
    assert values[("ns_exporter_events_total", (("event", "exit"),))] == 3
    assert values[("ns_exporter_events_lost_total", ())] == 1
    assert values[("ns_exporter_events_dropped_total", ())] == 2


def test_without_listener_everything_is_present_and_down() -> None:
    state = State(snapshot=empty_snapshot(), totals=ExporterTotals())
    values = samples(rendered(state).decode())
    assert values[("ns_exporter_event_listener_up", ())] == 0.0
    assert values[("ns_exporter_events_total", (("event", "fork"),))] == 0
    assert values[("ns_namespaces_created_total", (("ns_type", "pid"),))] == 0


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_finds_nothing_to_complain_about(text: str) -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
