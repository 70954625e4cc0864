"""ctypes wrappers for the few syscalls Python 3.11 lacks (stdlib only: runs in the helper)."""

from __future__ import annotations

import ctypes
import errno
import os

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# CLONE_NEW* flag → the namespace kind's name (/proc/PID/ns, /proc/sys/user/max_NAME_namespaces)
FLAG_KINDS: dict[int, str] = {
    CLONE_NEWTIME: "time",
    CLONE_NEWNS: "mnt",
    CLONE_NEWCGROUP: "cgroup",
    CLONE_NEWUTS: "uts",
    CLONE_NEWIPC: "ipc",
    CLONE_NEWUSER: "user",
    CLONE_NEWPID: "pid",
    CLONE_NEWNET: "net",
}

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

IPC_PRIVATE = 0
IPC_CREAT = 0o1000
IPC_EXCL = 0o2000
IPC_RMID = 0
IPC_STAT = 2

SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1

CAP_SYS_ADMIN = 21

# msqid_ds is 120 bytes on 64-bit Linux; IPC_STAT only needs room to write it.
_MSQID_DS_SIZE = 256

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
_libc.prctl.argtypes = (
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
)
_libc.msgget.argtypes = (ctypes.c_int, ctypes.c_int)
_libc.msgctl.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _checked(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    _checked(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _checked(
        _libc.mount(_path(source), _path(target), _path(fstype), flags, data.encode() or None),
        f"mount {target}",
    )


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _checked(_libc.umount2(_path(target), flags), f"umount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _checked(_libc.sethostname(raw, len(raw)), "sethostname")


def prctl(option: int, arg: int) -> None:
    _checked(_libc.prctl(option, arg, 0, 0, 0), "prctl")


def msgget(key: int, flags: int) -> int:
    return _checked(_libc.msgget(key, flags), "msgget")


def msg_exists(msqid: int) -> bool:
    """IPC_STAT on a queue id: True when this IPC namespace has it, False on EINVAL/EIDRM."""
    buffer = ctypes.create_string_buffer(_MSQID_DS_SIZE)
    if _libc.msgctl(msqid, IPC_STAT, buffer) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.EIDRM):
        return False
    raise OSError(err, f"msgctl IPC_STAT: {os.strerror(err)}")


def msg_remove(msqid: int) -> None:
    _checked(_libc.msgctl(msqid, IPC_RMID, None), "msgctl IPC_RMID")


def map_self_to_root(uid: int, gid: int) -> None:
    """After unshare(CLONE_NEWUSER): map this process's ids to 0 inside (as `unshare -r`)."""
    with open("/proc/self/setgroups", "w") as setgroups:
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"0 {gid} 1")


def in_initial_user_namespace() -> bool:
    """True when this process's user namespace maps every uid to itself (the host's)."""
    with open("/proc/self/uid_map") as uid_map:
        return uid_map.read().split() == ["0", "0", "4294967295"]


def effective_caps() -> int:
    """This process's effective capability mask (CapEff in /proc/self/status)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"CapEff:"):
                return int(line.split()[1], 16)
    raise ValueError("no CapEff line in /proc/self/status")


def ns_inode(pid: int | str, link: str) -> int:
    """The nsfs inode of /proc/PID/ns/LINK (`pid:[4026531836]` → 4026531836)."""
    text = os.readlink(f"/proc/{pid}/ns/{link}")
    return int(text[text.index("[") + 1 : -1])
