"""The cached renderer gives byte for byte what prometheus_client's generate_latest gives.

Every State is rendered both ways (`exposition.render`, built afresh by prometheus_client, is
the reference) and compared as bytes, on a first render and on renders reusing cached lines.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from ns_exporter import exposition_cache
from ns_exporter.config_reload import ReloadStatus
from ns_exporter.exposition import Exposition, render
from ns_exporter.exposition_cache import CachedRenderer
from ns_exporter.model import Attribution, Holder, Namespace, NsKey, NsType
from ns_exporter.state import BuildInfo, EventStats, State
from tests.unit.test_exposition import namespace, state_of
from tests.unit.test_fuzz_exposition import label_strings, namespaces
from tests.unit.test_fuzz_exposition import state_of as fuzz_state_of
from tests.unit.test_lifecycle_exposition import totals_with_one_short_lived_net

HOSTILE = [
    'a "quoted" name',
    "back\\slash",
    "new\nline",
    '\\"\\n',
    "} 1\nfake 2",
    "caf\udce9",  # a byte that was not UTF-8, decoded with surrogateescape
    "\udcff\udcfe",
    "\\xff",
    "\x00\r\u2028",
    "ünïcødé",
    "",
    "{}=,",
]


def assert_same(exposition: Exposition, renderer: CachedRenderer, state: State) -> bytes:
    expected = render(exposition, state)
    assert renderer.render(state) == expected
    return expected


def hostile_namespace(inode: int, text: str) -> Namespace:
    return namespace(
        NsType.UTS,
        inode,
        processes=inode * 123457,
        command=text,
        owner=text,
        attribution=Attribution(text, text, text),
        created=1.7e9 + inode / 7,
    )


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_label_values_render_identically(text: str) -> None:
    exposition = Exposition(BuildInfo(revision=text), 100)
    renderer = CachedRenderer(exposition)
    state = state_of(
        hostile_namespace(1, text),
        namespace(NsType.NET, 2, processes=0, holder=Holder.MOUNT, pid=None, command=""),
        unexpected=frozenset({NsKey(NsType.UTS, 1)}),
    )
    assert_same(exposition, renderer, state)
    assert_same(exposition, renderer, state)  # from the cache


def test_every_part_of_the_state_renders_identically() -> None:
    exposition = Exposition(BuildInfo(), 100)
    renderer = CachedRenderer(exposition)
    found = [hostile_namespace(i, text) for i, text in enumerate(HOSTILE, start=1)]
    state = dataclasses.replace(
        state_of(*found, unexpected=frozenset(ns.key for ns in found[::3])),
        config=ReloadStatus(successful=False, last_success=1.75e9),
        lifecycle=totals_with_one_short_lived_net(),
        events=EventStats(up=True, events={"fork": 10**9, "exec": 3, "exit": 0}, lost=2),
    )
    body = assert_same(exposition, renderer, state)
    assert b"ns_namespace_unexpected{" in body and b"ns_namespace_lifetime_seconds_bucket" in body
    assert_same(exposition, renderer, state)


def test_extra_collectors_come_last_as_before() -> None:
    registry = CollectorRegistry(auto_describe=True)
    Counter("ns_probe_things", "Things.", registry=registry).inc(3)
    exposition = Exposition(BuildInfo(), 100)
    renderer = CachedRenderer(exposition, [registry])
    state = state_of(namespace(NsType.NET, 1))
    expected = render(exposition, state, [registry])
    assert renderer.render(state) == expected
    assert b"ns_probe_things_total 3.0" in expected.split(b"ns_exporter_events_dropped_total")[-1]


def test_changes_between_renders_show_and_reuse_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[NsKey] = []
    original = exposition_cache.namespace_lines

    def counting(ns: Namespace) -> exposition_cache.NamespaceLines:
        made.append(ns.key)
        return original(ns)

    monkeypatch.setattr(exposition_cache, "namespace_lines", counting)
    exposition = Exposition(BuildInfo(), 100)
    renderer = CachedRenderer(exposition)
    found = [namespace(NsType.NET, i, processes=i) for i in range(1, 6)]
    assert_same(exposition, renderer, state_of(*found))
    assert len(made) == 5

    made.clear()
    changed = dataclasses.replace(found[1], processes=99, command='new "comm"')
    equal_copy = dataclasses.replace(found[2])  # another object, same content
    second = [found[0], changed, equal_copy, found[3], namespace(NsType.IPC, 9)]
    body = assert_same(
        exposition, renderer, state_of(*second, unexpected=frozenset({found[0].key}))
    )
    assert sorted(made) == sorted([changed.key, NsKey(NsType.IPC, 9)])
    assert b'ns_namespace_processes{ns_inode="2",ns_type="net"} 99.0' in body
    assert b'ns_namespace_unexpected{ns_inode="1",ns_type="net"} 1.0' in body

    made.clear()
    body = assert_same(exposition, renderer, state_of(*second))  # flag cleared, nothing new
    assert made == [] and b"ns_namespace_unexpected{" not in body


def test_cache_holds_only_the_namespaces_of_the_last_render() -> None:
    exposition = Exposition(BuildInfo(), 3)
    renderer = CachedRenderer(exposition)
    assert_same(exposition, renderer, state_of(*(namespace(NsType.NET, i) for i in range(10))))
    assert renderer.cached == 3  # the cardinality guard kept three
    assert_same(exposition, renderer, state_of(namespace(NsType.PID, 1)))
    assert renderer.cached == 1
    assert_same(exposition, renderer, state_of())
    assert renderer.cached == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(namespaces(), min_size=1, max_size=4),
    st.data(),
    label_strings,
    st.integers(1, 8),
)
def test_any_sequence_of_states_renders_identically(
    scans: list[list[Namespace]], data: st.DataObject, revision: str, max_series: int
) -> None:
    exposition = Exposition(BuildInfo(revision=revision), max_series)
    renderer = CachedRenderer(exposition)
    carried: list[Namespace] = []
    for found in scans:
        # Keep some namespaces of the previous scan as the same objects (what the scanner does).
        taken = {ns.key for ns in found}
        kept = [ns for ns in carried if ns.key not in taken and data.draw(st.booleans())]
        current = found + kept
        state = fuzz_state_of(current)
        flagged = (
            data.draw(st.sets(st.sampled_from([ns.key for ns in current]))) if current else set()
        )
        state = dataclasses.replace(state, unexpected=frozenset(flagged))
        assert_same(exposition, renderer, state)
        carried = current
