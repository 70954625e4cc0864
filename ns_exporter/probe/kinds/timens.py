"""time: a new time namespace shifts CLOCK_MONOTONIC and CLOCK_BOOTTIME inside only.

The worker unshares the time namespace (it applies to its children), sets offsets of ten days
before any process enters it, and forks. The child reads both clocks; they must be ahead of
the host's by the offset, while the host's clocks are untouched.
"""

from __future__ import annotations

import time

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import (
    CLEANUP_CHECK,
    DISTINCT_NAMESPACE,
    ModuleSpec,
    Probe,
    setup_error,
)

OFFSET_SECONDS = 10 * 86400
CLOCKS: dict[str, int] = {"monotonic": time.CLOCK_MONOTONIC, "boottime": time.CLOCK_BOOTTIME}
SLACK = 1.0  # seconds a reading may trail the host's second reading (scheduling)


def before_fork(probe: Probe) -> None:
    probe.create(kernel.CLONE_NEWTIME, "time namespace")
    if not probe.skip_unshare:
        offsets = "".join(f"{name} {OFFSET_SECONDS} 0\n" for name in CLOCKS)
        try:
            with open("/proc/self/timens_offsets", "w") as target:
                target.write(offsets)
        except OSError as err:
            raise setup_error(err, "write timens_offsets") from err
    probe.scratch["before"] = {name: time.clock_gettime(c) for name, c in CLOCKS.items()}


def inside(probe: Probe) -> None:
    for name, clock in CLOCKS.items():
        probe.fact(f"inner_{name}", time.clock_gettime(clock))


def outside(probe: Probe) -> None:
    before: dict[str, float] = probe.scratch["before"]
    for name, clock in CLOCKS.items():
        after = time.clock_gettime(clock)
        inner = float(probe.facts.get(f"inner_{name}", 0.0))
        shift = inner - before[name]
        ok = OFFSET_SECONDS <= shift <= OFFSET_SECONDS + (after - before[name]) + SLACK
        probe.check(
            f"{name}_offset",
            ok,
            f"CLOCK_{name.upper()} inside is {shift:.3f} s ahead of the host "
            f"(offset set: {OFFSET_SECONDS} s)",
        )


SPEC = ModuleSpec(
    name="time",
    link="time",
    flag=kernel.CLONE_NEWTIME,
    for_children=True,
    checks=("monotonic_offset", "boottime_offset", DISTINCT_NAMESPACE, CLEANUP_CHECK),
    summary="monotonic and boot-time clocks are shifted inside only",
    before_fork=before_fork,
    inside=inside,
    outside=outside,
)
