"""read_small: one read for files the kernel makes in one go, the whole file in any case."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ns_exporter.procfs.process import list_processes, read_at, read_small


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 10000])
def test_read_small_returns_the_whole_file(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_small(fd, "f") == data
        assert read_at(fd, b"f") == data
    finally:
        os.close(fd)


def test_read_small_on_real_procfs_files() -> None:
    fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        me = os.getpid()
        for name in ("stat", "comm", "cgroup", "schedstat"):
            with open(f"/proc/{me}/{name}", "rb") as f:
                expected = f.read()
            got = read_small(fd, f"{me}/{name}")
            if name in ("stat", "schedstat"):  # counters move between the two reads
                assert got.split()[:2] == expected.split()[:2]
            else:
                assert got == expected
    finally:
        os.close(fd)


def test_list_processes_gives_the_inode_stat_gives() -> None:
    fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        processes = dict(list_processes(fd))
        me = os.getpid()
        assert processes[me] == os.stat(f"/proc/{me}").st_ino
        assert all(pid > 0 for pid in processes)
    finally:
        os.close(fd)
