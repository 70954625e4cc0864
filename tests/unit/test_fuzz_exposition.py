"""The exposition stays valid text format for any comm, owner or attribution string.

Namespaces with arbitrary label text are rendered and parsed back with prometheus_client's
own parser: every label value round-trips, no series is duplicated, no value is negative.
"""

from __future__ import annotations

from types import MappingProxyType

from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ns_exporter.exposition import Exposition, label_text, render
from ns_exporter.model import (
    NS_TYPES,
    Attribution,
    Holder,
    Namespace,
    NsKey,
    ScanStats,
    Snapshot,
)
from ns_exporter.state import BuildInfo, ExporterTotals, State

# Any text, including lone surrogates (what surrogateescape-decoded bytes look like).
any_text = st.text(
    st.characters(exclude_categories=[]) | st.integers(0xD800, 0xDFFF).map(chr), max_size=40
)
nasty = st.sampled_from(
    ['"', "\\", "\n", '\\"', "\\n", "} 1\nfake 2", "\udce9", "\x00", "\r", "\u2028", "a=b,c"]
)
label_strings = any_text | nasty


@st.composite
def namespaces(draw: st.DrawFn) -> list[Namespace]:
    keys = draw(
        st.lists(
            st.builds(NsKey, st.sampled_from(NS_TYPES), st.integers(1, 2**32)),
            max_size=6,
            unique=True,
        )
    )
    return [
        Namespace(
            key=key,
            processes=draw(st.integers(0, 10**6)),
            holder=draw(st.sampled_from(list(Holder))),
            pid=draw(st.none() | st.integers(1, 2**22)),
            command=draw(label_strings),
            owner_uid=draw(st.none() | st.integers(0, 2**32 - 2)),
            owner=draw(label_strings),
            parent_inode=draw(st.none() | st.integers(1, 2**32)),
            userns_inode=draw(st.none() | st.integers(1, 2**32)),
            ns_id=None,
            created=draw(st.floats(0, 4e9)),
            attribution=Attribution(draw(label_strings), draw(label_strings), draw(label_strings)),
        )
        for key in keys
    ]


def state_of(found: list[Namespace]) -> State:
    snapshot = Snapshot(
        namespaces=MappingProxyType({ns.key: ns for ns in found}),
        limits=MappingProxyType(dict.fromkeys(NS_TYPES, 1000)),
        stats=ScanStats(started=1.7e9, duration=0.01, processes_scanned=5),
    )
    return State(snapshot=snapshot, totals=ExporterTotals().add(snapshot))


@settings(max_examples=200, deadline=None)
@given(namespaces(), label_strings)
@example(
    [
        Namespace(
            key=NsKey(NS_TYPES[0], 1),
            processes=1,
            holder=Holder.PROCESS,
            pid=1,
            command='a"b\\c\nd } x',
            owner_uid=0,
            owner="caf\udce9",
            parent_inode=None,
            userns_inode=None,
            ns_id=None,
            created=0.0,
        )
    ],
    "\udcff",
)
def test_any_label_text_round_trips(found: list[Namespace], revision: str) -> None:
    exposition = Exposition(build=BuildInfo(revision=revision), max_series=100)
    text = render(exposition, state_of(found)).decode("utf-8")
    families = list(text_string_to_metric_families(text))

    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for family in families:
        for sample in family.samples:
            series = (sample.name, tuple(sorted(sample.labels.items())))
            assert series not in seen, f"duplicate series {series}"
            seen.add(series)
            assert sample.value >= 0, series

    info = {
        (s.labels["ns_type"], s.labels["ns_inode"]): s.labels
        for family in families
        if family.name == "ns_namespace_info"
        for s in family.samples
    }
    assert len(info) == len(found)
    for ns in found:
        labels = info[(ns.key.ns_type.value, str(ns.key.inode))]
        assert labels["command"] == label_text(ns.command)
        assert labels["owner"] == label_text(ns.owner)
        assert labels["container_runtime"] == label_text(ns.attribution.container_runtime)
        assert labels["container_id"] == label_text(ns.attribution.container_id)
        assert labels["unit"] == label_text(ns.attribution.unit)
    (build,) = (f for f in families if f.name == "ns_exporter_build_info")
    assert build.samples[0].labels["revision"] == label_text(revision)


@settings(max_examples=300, deadline=None)
@given(label_strings)
def test_label_text_is_identity_for_valid_text(value: str) -> None:
    cleaned = label_text(value)
    cleaned.encode("utf-8")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        assert "\\u" in cleaned or "\\x" in cleaned  # the bad code point stays visible
    else:
        assert cleaned == value
