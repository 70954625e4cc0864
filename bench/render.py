#!/usr/bin/env python3
"""Rendering /metrics: prometheus_client afresh (old) against the cached renderer (new).

Builds synthetic States of N namespaces (labels like a container host's: docker ids, systemd
units) and prints, per render, the median CPU time of the calling thread:

- old: `exposition.render` (every family built and rendered by generate_latest);
- new, cold: `CachedRenderer` on a State it has not seen (first scan, or all changed);
- new, unchanged: the same namespace objects again (the agent's refresh when only lifecycle
  or listener counters moved, or a scan where nothing changed);
- new, 1% / 10% changed: that share of the namespaces are new objects with a new count.

Both outputs are compared byte for byte before timing. Needs no root: nothing is scanned.

    python3 bench/render.py [--namespaces 1000,4500,10000 --repeats 15]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ns_exporter.exposition import Exposition, render
from ns_exporter.exposition_cache import CachedRenderer
from ns_exporter.lifecycle import EMPTY_TOTALS
from ns_exporter.model import (
    NS_TYPES,
    Attribution,
    CollectorResult,
    Holder,
    Namespace,
    NsKey,
    ScanStats,
    Snapshot,
)
from ns_exporter.state import BuildInfo, ExporterTotals, State


def population(count: int, rng: random.Random) -> list[Namespace]:
    found = []
    for i in range(count):
        ns_type = NS_TYPES[i % len(NS_TYPES)]
        container = f"{rng.getrandbits(256):064x}"
        found.append(
            Namespace(
                key=NsKey(ns_type, 4026531840 + i),
                processes=rng.randint(1, 20),
                holder=Holder.PROCESS,
                pid=1000 + i,
                command=rng.choice(["bash", "nginx", "postgres", "sleep", "containerd-shim"]),
                owner_uid=0,
                owner="root",
                parent_inode=None,
                userns_inode=4026531837,
                ns_id=None,
                created=1.75e9 + rng.random() * 1e6,
                attribution=Attribution("docker", container, f"docker-{container}.scope"),
            )
        )
    return found


def state_of(found: list[Namespace]) -> State:
    snapshot = Snapshot(
        namespaces=MappingProxyType({ns.key: ns for ns in found}),
        limits=MappingProxyType(dict.fromkeys(NS_TYPES, 63000)),
        stats=ScanStats(
            started=1.76e9,
            duration=0.2,
            processes_scanned=10_000,
            collectors=(CollectorResult("processes", True, 0.2),),
        ),
    )
    return State(snapshot=snapshot, totals=ExporterTotals().add(snapshot), lifecycle=EMPTY_TOTALS)


def changed(found: list[Namespace], share: float, rng: random.Random) -> list[Namespace]:
    picked = set(rng.sample(range(len(found)), round(len(found) * share)))
    return [
        dataclasses.replace(ns, processes=ns.processes + 1) if i in picked else ns
        for i, ns in enumerate(found)
    ]


def cpu_median(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.thread_time()
        action()
        times.append(time.thread_time() - started)
    return statistics.median(times)


class Alternating:
    """Renders two States in turn, so that each render finds the changed lines stale."""

    def __init__(self, renderer: CachedRenderer, states: tuple[State, State]) -> None:
        self._renderer = renderer
        self._states = states
        self._turn = 0

    def __call__(self) -> bytes:
        self._turn ^= 1
        return self._renderer.render(self._states[self._turn])


def render_cases(
    exposition: Exposition,
    renderer: CachedRenderer,
    base: list[Namespace],
    state: State,
    rng: random.Random,
) -> dict[str, Callable[[], object]]:
    cases: dict[str, Callable[[], object]] = {
        "new, cold": lambda: CachedRenderer(exposition).render(state),
        "new, unchanged": lambda: renderer.render(state),
    }
    for share in (0.01, 0.1):
        other = state_of(changed(base, share, rng))
        cases[f"new, {share:.0%} changed"] = Alternating(renderer, (other, state))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespaces", default="1000,4500,10000")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    exposition = Exposition(BuildInfo(), max_series=100_000)
    rng = random.Random(1)

    print(f"{'namespaces':>10} {'case':<16} {'ms/render':>10} {'µs/ns':>7} {'old/new':>8}")
    for count in (int(n) for n in args.namespaces.split(",")):
        base = population(count, rng)
        state = state_of(base)
        renderer = CachedRenderer(exposition)
        assert renderer.render(state) == render(exposition, state)  # same bytes
        old = cpu_median(lambda state=state: render(exposition, state), args.repeats)

        cases = render_cases(exposition, renderer, base, state, rng)
        print(f"{count:>10} {'old':<16} {old * 1e3:>10.2f} {old / count * 1e6:>7.1f} {'':>8}")
        for name, action in cases.items():
            new = cpu_median(action, args.repeats)
            print(
                f"{count:>10} {name:<16} {new * 1e3:>10.2f} {new / count * 1e6:>7.1f} "
                f"{old / new:>7.1f}x"
            )


if __name__ == "__main__":
    main()
