"""nsfs bind mounts from /proc/PID/mountinfo (e.g. `ip netns add NAME` → /run/netns/NAME)."""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

from ns_exporter.model import NsType
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.process import parse_ns_link, read_at

_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class NsfsMount:
    """A namespace kept alive by a bind mount of its nsfs file."""

    ns_type: NsType
    inode: int
    mountpoint: str


def unescape(field: bytes) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    raw = _OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8) & 0xFF]), field)
    return raw.decode("utf-8", errors="backslashreplace")


def parse_line(line: bytes) -> NsfsMount | None:
    """The nsfs mount on one mountinfo line, or None for any other file system.

    Format: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    Fields are separated by single spaces; the kernel escapes only space, tab, newline and
    backslash in paths, so a path may hold \r, \v or \f: never split on other whitespace.
    """
    fields = line.split(b" ")
    try:
        sep = fields.index(b"-", 6)
    except ValueError as err:
        raise ParseError(f"mountinfo: no separator in {line[:80]!r}") from err
    if len(fields) <= sep + 1:
        raise ParseError(f"mountinfo: no fstype in {line[:80]!r}")
    if fields[sep + 1] != b"nsfs":
        return None
    root = unescape(fields[3]).lstrip("/")
    try:
        ns_type, inode = parse_ns_link(root)
    except ParseError:
        return None  # an nsfs mount of something that is not a namespace we know
    return NsfsMount(ns_type=ns_type, inode=inode, mountpoint=unescape(fields[4]))


def parse(data: bytes) -> list[NsfsMount]:
    """All nsfs mounts in a mountinfo file; malformed lines raise ParseError."""
    mounts = []
    for line in data.split(b"\n"):
        if line:
            mount = parse_line(line)
            if mount is not None:
                mounts.append(mount)
    return mounts


def read(proc_fd: int, pid: int) -> bytes:
    """/proc/PID/mountinfo content. The kernel answers EINVAL, not ENOENT, when the process is
    exiting (it has no mount namespace any more): that is a vanished process, raised as ESRCH."""
    try:
        return read_at(proc_fd, f"{pid}/mountinfo")
    except OSError as err:
        if err.errno == errno.EINVAL:
            raise ProcessLookupError(errno.ESRCH, f"process {pid} is exiting", "mountinfo") from err
        raise
