"""User names for uids: the system's passwd database, or a host root's /etc/passwd."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable

from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.fields import unsigned

_MAX_UID = 2**32 - 2  # (uid_t)-1 is "no uid"


def parse_passwd(data: bytes) -> dict[int, str]:
    """uid → name from passwd file content; malformed lines are ignored."""
    names: dict[int, str] = {}
    for line in data.splitlines():
        fields = line.split(b":")
        if len(fields) < 3 or not fields[0]:
            continue
        try:
            uid = unsigned(fields[2], "passwd: uid")
        except ParseError:
            continue
        if uid <= _MAX_UID:
            names.setdefault(uid, decode_name(fields[0]))
    return names


def decode_name(raw: bytes) -> str:
    """A user name as text; bytes that are not UTF-8 stay visible as \\xNN (as comm)."""
    return raw.decode("utf-8", errors="backslashreplace")


class UserNames:
    """Caches uid → user name; the uid as text when there is no entry (as lsns)."""

    def __init__(self, rootfs: str = "/") -> None:
        self._cache: dict[int, str] = {}
        self._lookup: Callable[[int], str | None]
        if os.path.realpath(rootfs) == "/":
            self._lookup = _from_pwd
        else:
            self._lookup = _PasswdFile(os.path.join(rootfs, "etc", "passwd")).name

    def name(self, uid: int) -> str:
        cached = self._cache.get(uid)
        if cached is None:
            cached = self._lookup(uid) or str(uid)
            self._cache[uid] = cached
        return cached


def _from_pwd(uid: int) -> str | None:
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return None
    # pwd decodes with surrogateescape: turn undecodable bytes into visible \\xNN text
    return decode_name(os.fsencode(name))


class _PasswdFile:
    def __init__(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                self._names = parse_passwd(f.read())
        except OSError:
            self._names = {}

    def name(self, uid: int) -> str | None:
        return self._names.get(uid)
