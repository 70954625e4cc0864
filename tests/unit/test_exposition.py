"""Exposition: families from a State, valid text for any label value, the cardinality guard."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ns_exporter.exposition import Exposition, render, select_series
from ns_exporter.model import (
    NS_TYPES,
    Attribution,
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
from ns_exporter.state import BuildInfo, ExporterTotals, State


def namespace(
    ns_type: NsType, inode: int, processes: int = 1, command: str = "sh", **kw: object
) -> Namespace:
    defaults: dict[str, object] = {
        "holder": Holder.PROCESS,
        "pid": 100 + inode % 1000,
        "owner_uid": 0,
        "owner": "root",
        "parent_inode": None,
        "userns_inode": 4026531837,
        "ns_id": None,
        "created": 1.7e9,
    }
    defaults.update(kw)
    return Namespace(key=NsKey(ns_type, inode), processes=processes, command=command, **defaults)  # type: ignore[arg-type]


def state_of(*namespaces: Namespace, unexpected: frozenset[NsKey] = frozenset()) -> State:
    stats = ScanStats(
        started=1.8e9,
        duration=0.01,
        processes_scanned=42,
        skipped=skip_counts({SkipReason.VANISHED: 2}),
        collectors=(
            CollectorResult("processes", True, 0.01),
            CollectorResult("mounts", False, 0.001),
        ),
    )
    snap = Snapshot(
        namespaces=MappingProxyType({ns.key: ns for ns in namespaces}),
        limits=MappingProxyType(dict.fromkeys(NS_TYPES, 1000)),
        stats=stats,
    )
    totals = ExporterTotals().add(snap)
    return State(snapshot=snap, totals=totals, unexpected=unexpected)


def parse(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_every_family_and_type_present() -> None:
    state = state_of(
        namespace(NsType.NET, 1),
        namespace(NsType.NET, 2, processes=0, holder=Holder.MOUNT, pid=None, command=""),
    )
    samples = parse(render(Exposition(BuildInfo(), 100), state))
    per_type = {labels["ns_type"]: value for labels, value in samples["ns_namespaces"]}
    assert per_type == {t.value: (2.0 if t is NsType.NET else 0.0) for t in NS_TYPES}
    assert {labels["ns_inode"]: v for labels, v in samples["ns_namespace_processes"]} == {
        "1": 1.0,
        "2": 0.0,
    }
    info = {labels["ns_inode"]: labels for labels, _ in samples["ns_namespace_info"]}
    assert info["2"]["holder"] == "mount" and info["2"]["pid"] == ""
    assert samples["ns_exporter_scans_total"] == [({}, 1.0)]
    skipped = {
        labels["reason"]: v for labels, v in samples["ns_exporter_scan_skipped_processes_total"]
    }
    assert skipped == {"vanished": 2.0, "permission_denied": 0.0}
    assert samples["ns_exporter_scan_errors_total"] == [({}, 0.0)]
    success = {labels["collector"]: v for labels, v in samples["ns_scrape_collector_success"]}
    assert success == {"processes": 1.0, "mounts": 0.0}
    assert len(samples["ns_namespace_limit"]) == len(NS_TYPES)
    assert samples["ns_exporter_namespaces_dropped"] == [({}, 0.0)]
    build = samples["ns_exporter_build_info"][0][0]
    assert set(build) == {"version", "revision", "pythonversion"}


@pytest.mark.parametrize(
    "text",
    ['a "quoted" name', "back\\slash", "new\nline", "x) y (z", "\\xff", "ünïcødé", "", "{}=,"],
)
def test_label_values_round_trip(text: str) -> None:
    ns = namespace(
        NsType.UTS, 7, command=text, owner=text, attribution=Attribution("docker", text, text)
    )
    samples = parse(render(Exposition(BuildInfo(), 100), state_of(ns)))
    labels = samples["ns_namespace_info"][0][0]
    assert labels["command"] == text
    assert labels["owner"] == text
    assert labels["container_id"] == text and labels["unit"] == text


def test_cardinality_guard_keeps_unexpected_then_largest() -> None:
    many = [namespace(NsType.NET, i, processes=i) for i in range(1, 11)]
    state = state_of(*many, unexpected=frozenset({NsKey(NsType.NET, 1)}))
    kept, dropped = select_series(state, 3)
    assert dropped == 7
    assert [ns.inode for ns in kept] == [1, 9, 10]
    samples = parse(render(Exposition(BuildInfo(), 3), state))
    assert samples["ns_exporter_namespaces_dropped"] == [({}, 7.0)]
    assert len(samples["ns_namespace_processes"]) == 3
    # the per-type aggregate stays exact
    assert {lab["ns_type"]: v for lab, v in samples["ns_namespaces"]}["net"] == 10.0
