"""Host-wide procfs facts: boot time, clock ticks, namespace limits."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ns_exporter.model import NsType
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.fields import unsigned


def parse_btime(data: bytes) -> float:
    """Boot time (unix seconds) from the `btime` line of /proc/stat."""
    for line in data.splitlines():
        if line.startswith(b"btime "):
            return float(unsigned(line[len(b"btime ") :].strip(), "stat: btime"))
    raise ParseError("stat: no btime line")


def read_btime(proc_root: str) -> float:
    with open(os.path.join(proc_root, "stat"), "rb") as f:
        return parse_btime(f.read())


def clock_ticks() -> int:
    """USER_HZ, the unit of starttime in /proc/PID/stat."""
    return os.sysconf("SC_CLK_TCK")


def read_limits(proc_root: str) -> Mapping[NsType, int | None]:
    """/proc/sys/user/max_TYPE_namespaces for every type (None where absent or unreadable)."""
    limits: dict[NsType, int | None] = {}
    for ns_type in NsType:
        path = os.path.join(proc_root, "sys", "user", f"max_{ns_type.value}_namespaces")
        try:
            with open(path, "rb") as f:
                limits[ns_type] = int(f.read().strip())
        except (OSError, ValueError):
            limits[ns_type] = None
    return limits
