"""Is a namespace still alive? Asked by its 64-bit id through an nsfs file handle (Linux 6.18+).

Since Linux 6.18 nsfs supports file handles: open_by_handle_at() with the handle
{ns_id u64, ns_type u32 (its CLONE_NEW* flag), ns_inum u32} (FILEID_NSFS) opens the namespace
while anything still holds it (a process, a bind mount, an open fd, a child namespace) and fails
with ESTALE once it is gone. That lets the lifecycle tell "its last known process exited" from
"it is destroyed" without a full scan. Older kernels, or no CAP_DAC_READ_SEARCH, answer None
("cannot tell"), and the next scan decides instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from ns_exporter.model import NsType
from ns_exporter.procfs import nsfs

FILEID_NSFS = 0xF1
_HANDLE = struct.Struct("=IiQII")  # handle_bytes, handle_type, then the nsfs handle
_HANDLE_BYTES = 16

CLONE_FLAGS: dict[NsType, int] = {
    NsType.CGROUP: 0x02000000,
    NsType.IPC: 0x08000000,
    NsType.MNT: 0x00020000,
    NsType.NET: 0x40000000,
    NsType.PID: 0x20000000,
    NsType.TIME: 0x00000080,
    NsType.USER: 0x10000000,
    NsType.UTS: 0x04000000,
}

_GONE = frozenset({errno.ESTALE, errno.ENOENT})
# The kernel or our privileges do not allow the question: no answer, not a failure.
_UNSUPPORTED = frozenset(
    {errno.EPERM, errno.EACCES, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS, errno.EBADF}
)


class HandleChecker:
    """Answers "is namespace (type, id, inode) alive?" with one syscall per question."""

    def __init__(self, anchor_path: str = "/proc/self/ns/uts") -> None:
        # Any nsfs file serves as the mount fd for open_by_handle_at.
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._open = self._libc.open_by_handle_at
        self._open.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
        self._open.restype = ctypes.c_int
        self._anchor = os.open(anchor_path, os.O_RDONLY | os.O_CLOEXEC)

    def works(self) -> bool:
        """Whether the kernel answers: our own namespace must be reported alive.

        Kernels without nsfs file handles fail every handle with ESTALE, which would read as
        "destroyed"; this self-test keeps them on the scan-based path.
        """
        try:
            own_id = nsfs.ns_id(self._anchor)
        except OSError:
            return False
        if own_id is None:
            return False
        try:
            return self.alive(NsType.UTS, own_id, os.fstat(self._anchor).st_ino) is True
        except OSError:
            return False

    def alive(self, ns_type: NsType, ns_id: int, inode: int) -> bool | None:
        """True while it exists, False once destroyed, None when this kernel cannot tell.

        Other errors raise OSError.
        """
        handle = _HANDLE.pack(_HANDLE_BYTES, FILEID_NSFS, ns_id, CLONE_FLAGS[ns_type], inode)
        fd = self._open(self._anchor, handle, os.O_RDONLY | os.O_CLOEXEC)
        if fd >= 0:
            os.close(fd)
            return True
        code = ctypes.get_errno()
        if code in _GONE:
            return False
        if code in _UNSUPPORTED:
            return None
        raise OSError(code, os.strerror(code))

    def close(self) -> None:
        os.close(self._anchor)
