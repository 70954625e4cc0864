"""uts: a hostname set inside a new UTS namespace is not seen by the host.

The child sets a random hostname only once its UTS namespace is proven new, so a broken
namespace never renames the host.
"""

from __future__ import annotations

import os
import socket

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe, setup_error


def prepare(probe: Probe) -> None:
    probe.scratch["host_name"] = socket.gethostname()
    probe.scratch["probe_name"] = "ns-probe-" + os.urandom(6).hex()


def inside(probe: Probe) -> None:
    name = str(probe.scratch["probe_name"])
    if probe.isolated:
        try:
            kernel.sethostname(name)
        except OSError as err:
            raise setup_error(err, "sethostname inside") from err
        now = socket.gethostname()
    else:
        probe.log("warn", "sethostname_skipped", why="UTS namespace is the host's")
        now = socket.gethostname()
    probe.fact("inner_hostname", now)
    probe.check("hostname_set_inside", now == name, f"inside, the hostname is now {now!r}")


def outside(probe: Probe) -> None:
    host_now = socket.gethostname()
    before = str(probe.scratch["host_name"])
    set_inside = probe.checks.get("hostname_set_inside", False)
    probe.check(
        "hostname_hidden",
        set_inside and host_now == before,
        f"the host's hostname stays {host_now!r}"
        + ("" if set_inside else " (no hostname was set inside)"),
    )


def release(probe: Probe) -> list[str]:
    before = probe.scratch.get("host_name")
    if before is not None and socket.gethostname() != before:
        return [f"the host's hostname changed from {before!r} to {socket.gethostname()!r}"]
    return []


SPEC = ModuleSpec(
    name="uts",
    link="uts",
    flag=kernel.CLONE_NEWUTS,
    for_children=False,
    checks=("hostname_set_inside", "hostname_hidden", DISTINCT_NAMESPACE, CLEANUP_CHECK),
    summary="a hostname set inside is not seen by the host",
    prepare=prepare,
    inside=inside,
    outside=outside,
    release=release,
)
