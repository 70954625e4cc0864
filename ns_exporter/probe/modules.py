"""The probe module table: name → ModuleSpec (stdlib only)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ns_exporter.probe.kinds import cgroup, ipc, mnt, net, pid, timens, user, uts
from ns_exporter.probe.spec import ModuleSpec

DEFAULT_MODULE = "pid"

MODULES: Mapping[str, ModuleSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            pid.SPEC,
            mnt.SPEC,
            net.SPEC,
            uts.SPEC,
            ipc.SPEC,
            user.SPEC,
            cgroup.SPEC,
            timens.SPEC,
        )
    }
)

MODULE_NAMES: tuple[str, ...] = tuple(MODULES)
