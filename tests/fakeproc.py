"""Fake procfs trees built from data, for unit tests of parsing and races.

Namespace links are dangling symlinks named like the kernel's (`net:[4026531993]`), as in
prometheus/procfs fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path

from ns_exporter.model import NsType

HOST_NS: dict[NsType, int] = {t: 4026531830 + i for i, t in enumerate(NsType)}
BTIME = 1_700_000_000


class FakeProc:
    def __init__(self, root: Path, types: tuple[NsType, ...] = tuple(NsType)) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\nprocesses 10\n")
        self._links(root / "self" / "ns", {t: HOST_NS[t] for t in types})
        sysdir = root / "sys" / "user"
        sysdir.mkdir(parents=True)
        for t in NsType:
            (sysdir / f"max_{t.value}_namespaces").write_text("1000\n")

    @staticmethod
    def _links(ns_dir: Path, namespaces: dict[NsType, int]) -> None:
        ns_dir.mkdir(parents=True, exist_ok=True)
        for ns_type, inode in namespaces.items():
            os.symlink(f"{ns_type.value}:[{inode}]", ns_dir / ns_type.value)

    def add(
        self,
        pid: int,
        comm: bytes | str = "proc",
        ns: dict[NsType, int] | None = None,
        start_ticks: int = 100,
        mountinfo: str = "",
        cgroup: str = "0::/system.slice/test.service\n",
        stat: bytes | None = None,
    ) -> Path:
        """A process whose namespaces are the host's, overridden by `ns`."""
        pid_dir = self.root / str(pid)
        pid_dir.mkdir()
        raw_comm = comm.encode() if isinstance(comm, str) else comm
        if stat is None:
            fields = ["S", "1", str(pid), str(pid), "0", "-1", "4194560"] + ["0"] * 12
            fields += [str(start_ticks), "1000", "100"]
            stat = b"%d (%s) %s\n" % (pid, raw_comm, " ".join(fields).encode())
        (pid_dir / "stat").write_bytes(stat)
        (pid_dir / "cgroup").write_text(cgroup)
        (pid_dir / "mountinfo").write_text(mountinfo)
        self._links(pid_dir / "ns", {**HOST_NS, **(ns or {})})
        return pid_dir
