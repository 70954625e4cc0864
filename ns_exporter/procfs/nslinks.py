"""One process's namespace links, read at once when a process event arrives.

The event listener calls this for every new or exec'ing process, so it is kept to one open of
/proc/PID, one readlink per type and, only for a namespace never seen before, one open of its
nsfs file for NS_GET_ID. Link targets are turned into NsKey through a small cache: almost every
process lives in namespaces the cache already holds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ns_exporter.model import NsKey, NsType
from ns_exporter.procfs import nsfs
from ns_exporter.procfs.errors import ParseError, translate
from ns_exporter.procfs.process import open_dir, parse_ns_link

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_CACHE_LIMIT = 4096


class ProcessNamespaces:
    """Reads /proc/PID/ns/* relative to one open procfs directory."""

    def __init__(self, procfs: str, types: Sequence[NsType]) -> None:
        self._proc_fd = open_dir(procfs)
        self._types = tuple(types)
        self._links = tuple(f"ns/{t.value}" for t in self._types)
        self._keys: dict[str, NsKey] = {}

    @property
    def types(self) -> tuple[NsType, ...]:
        return self._types

    def open(self, pid: int) -> int:
        """An fd on /proc/PID; raises ProcError when the process is gone or unreadable."""
        try:
            return os.open(str(pid), _DIR_FLAGS, dir_fd=self._proc_fd)
        except OSError as err:
            raise translate(err) from err

    def keys(self, dir_fd: int) -> list[NsKey]:
        """The namespaces of the process open at dir_fd, in `types` order."""
        try:
            targets = [os.readlink(link, dir_fd=dir_fd) for link in self._links]
        except OSError as err:
            raise translate(err) from err
        cache = self._keys
        keys = []
        for target in targets:
            key = cache.get(target)
            if key is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                ns_type, inode = parse_ns_link(target)
                key = cache[target] = NsKey(ns_type, inode)
            keys.append(key)
        return keys

    def ns_id(self, dir_fd: int, ns_type: NsType) -> int | None:
        """NS_GET_ID of one namespace of the process; None when gone or not supported."""
        try:
            fd = os.open(f"ns/{ns_type.value}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError as err:
            raise translate(err) from err
        try:
            return nsfs.ns_id(fd)
        except OSError as err:
            raise translate(err) from err
        finally:
            os.close(fd)

    def release(self, dir_fd: int) -> None:
        """Close an fd from `open`."""
        os.close(dir_fd)

    def close(self) -> None:
        os.close(self._proc_fd)


__all__ = ["ParseError", "ProcessNamespaces"]
