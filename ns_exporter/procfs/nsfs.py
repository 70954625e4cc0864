"""nsfs ioctls (linux/nsfs.h): parent, owning user namespace, owner uid and 64-bit id.

They are issued once per newly seen namespace, never per process.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from dataclasses import dataclass

from ns_exporter.procfs.errors import translate

_NSIO = 0xB7
_IOC_READ = 2


def _io(nr: int) -> int:
    return (_NSIO << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (_IOC_READ << 30) | (size << 16) | (_NSIO << 8) | nr


NS_GET_USERNS = _io(0x1)
NS_GET_PARENT = _io(0x2)
NS_GET_NSTYPE = _io(0x3)
NS_GET_OWNER_UID = _io(0x4)
NS_GET_ID = _ior(13, 8)  # Linux 6.18+

# Errors that mean "the kernel has no answer here", not a failure:
# EINVAL/ENOTTY: ioctl unknown or not applicable to this type;
# EPERM: the parent/owner lies outside the caller's namespace (e.g. the initial namespace).
_NO_ANSWER = frozenset({errno.EINVAL, errno.ENOTTY, errno.EPERM})


@dataclass(frozen=True, slots=True)
class NsInfo:
    """What the kernel says about one namespace."""

    ns_id: int | None
    parent_inode: int | None
    userns_inode: int | None
    owner_uid: int | None


def _related_inode(fd: int, request: int) -> int | None:
    try:
        related = fcntl.ioctl(fd, request)
    except OSError as err:
        if err.errno in _NO_ANSWER:
            return None
        raise
    try:
        return os.fstat(related).st_ino
    finally:
        os.close(related)


def _owner_uid(fd: int) -> int | None:
    buf = bytearray(4)
    try:
        fcntl.ioctl(fd, NS_GET_OWNER_UID, buf, True)
    except OSError as err:
        if err.errno in _NO_ANSWER:
            return None
        raise
    uid: int = struct.unpack("I", buf)[0]
    return uid


def ns_id(fd: int) -> int | None:
    """The 64-bit namespace id, or None on kernels before 6.18."""
    buf = bytearray(8)
    try:
        fcntl.ioctl(fd, NS_GET_ID, buf, True)
    except OSError as err:
        if err.errno in _NO_ANSWER:
            return None
        raise
    value: int = struct.unpack("Q", buf)[0]
    return value


def open_ns(path: str) -> int:
    """Open an nsfs file (a /proc/PID/ns link or a bind mount) read-only."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise translate(err) from err


def query(fd: int, *, hierarchical: bool, is_user: bool, known_id: int | None = None) -> NsInfo:
    """All the ioctl facts for an open namespace fd."""
    try:
        return NsInfo(
            ns_id=known_id if known_id is not None else ns_id(fd),
            parent_inode=_related_inode(fd, NS_GET_PARENT) if hierarchical else None,
            userns_inode=_related_inode(fd, NS_GET_USERNS),
            owner_uid=_owner_uid(fd) if is_user else None,
        )
    except OSError as err:
        raise translate(err) from err
