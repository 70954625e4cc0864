"""Per-process procfs facts: /proc/PID/stat, the owner uid and the namespace links.

Parsers take bytes/str and return plain values; readers work relative to a directory fd
(one open of /proc/PID, then *at() calls) and raise errors.ProcError for expected failures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ns_exporter.model import NsType
from ns_exporter.procfs.errors import ParseError, ProcError, translate
from ns_exporter.procfs.fields import hex_mask, unsigned

# Fields after the comm in /proc/PID/stat start at field 3 (state); starttime is field 22.
_STARTTIME_INDEX = 22 - 3
_PPID_INDEX = 4 - 3
_READ_SIZE = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class StatFields:
    """The parts of /proc/PID/stat the exporter uses."""

    comm: str
    ppid: int
    starttime_ticks: int


def decode_comm(raw: bytes) -> str:
    """comm is arbitrary bytes (up to 15); keep non-UTF-8 bytes visible as \\xNN."""
    return raw.decode("utf-8", errors="backslashreplace")


def parse_stat(data: bytes) -> StatFields:
    """Parse /proc/PID/stat. comm may hold spaces, parentheses and newlines, so the comm
    is what lies between the first '(' and the last ')' (as psutil does)."""
    open_paren = data.find(b"(")
    close_paren = data.rfind(b")")
    if open_paren < 0 or close_paren < open_paren:
        raise ParseError("stat: no (comm) field")
    rest = data[close_paren + 2 :].split()
    if len(rest) <= _STARTTIME_INDEX:
        raise ParseError(f"stat: {len(rest) + 2} fields, need {_STARTTIME_INDEX + 3}")
    return StatFields(
        comm=decode_comm(data[open_paren + 1 : close_paren]),
        ppid=unsigned(rest[_PPID_INDEX], "stat: ppid"),
        starttime_ticks=unsigned(rest[_STARTTIME_INDEX], "stat: starttime"),
    )


def parse_ns_link(text: str) -> tuple[NsType, int]:
    """Parse a namespace link target such as `net:[4026531993]`."""
    name, sep, rest = text.partition(":[")
    if not sep or not rest.endswith("]"):
        raise ParseError(f"ns link: {text[:80]!r} is not TYPE:[INODE]")
    try:
        ns_type = NsType(name)
    except ValueError:
        raise ParseError(f"ns link: {name[:40]!r} is not a namespace type") from None
    return ns_type, unsigned(rest[:-1], "ns link: inode")


def read_at(dir_fd: int, name: str | bytes) -> bytes:
    """Read a procfs file relative to a directory fd, to the end."""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_small(dir_fd: int, name: str | bytes) -> bytes:
    """Read a procfs file that the kernel makes in one go (stat, comm, cgroup, schedstat:
    seq_file single_open): a read that returns less than asked got all of it, so such a
    file costs one read, not two. (Not for record-by-record files such as mountinfo, whose
    reads stop short at a record that does not fit.)"""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunk = os.read(fd, _READ_SIZE)
        if len(chunk) < _READ_SIZE:
            return chunk
        chunks = [chunk]
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """Open a procfs directory, translating expected errors."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise translate(err) from err


def list_processes(proc_fd: int) -> list[tuple[int, int]]:
    """(pid, inode of /proc/PID) of every process, in listing order (ascending pids).

    The inode number comes with the listing (d_ino), so it costs no stat; procfs gives the
    directory of a new process a new inode, so it tells a reused pid apart.
    """
    with os.scandir(proc_fd) as listing:
        return [(int(e.name), e.inode()) for e in listing if e.name.isdigit()]


def list_pids(proc_fd: int) -> list[int]:
    """All process ids in a procfs mount, sorted (threads are not listed there)."""
    return sorted(int(name) for name in os.listdir(proc_fd) if name.isdigit())


def supported_types(proc_root: str) -> tuple[NsType, ...]:
    """The namespace types this kernel has, from /proc/self/ns."""
    try:
        present = set(os.listdir(os.path.join(proc_root, "self", "ns")))
    except OSError as err:
        raise translate(err) from err
    return tuple(t for t in NsType if t.value in present)


CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21


def parse_effective_caps(status: bytes) -> int:
    """The CapEff bit mask from /proc/PID/status content."""
    for line in status.splitlines():
        if line.startswith(b"CapEff:"):
            value = line[len(b"CapEff:") :].strip()
            return hex_mask(value, "status: CapEff")
    raise ParseError("status: no CapEff line")


def own_effective_caps() -> int:
    """This process's effective capabilities (always from the real /proc/self)."""
    with open("/proc/self/status", "rb") as f:
        return parse_effective_caps(f.read())


__all__ = [
    "CAP_DAC_READ_SEARCH",
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "ProcError",
    "StatFields",
    "decode_comm",
    "list_pids",
    "list_processes",
    "open_dir",
    "own_effective_caps",
    "parse_effective_caps",
    "parse_ns_link",
    "parse_stat",
    "read_at",
    "read_small",
    "supported_types",
]
