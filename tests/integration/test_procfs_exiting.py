"""Reads of a process that is exiting are 'vanished', never errors (real /proc, a real zombie)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ns_exporter.model import SkipReason
from ns_exporter.procfs import mountinfo
from ns_exporter.procfs.errors import skip_reason


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited and is not reaped yet (no mount namespace any more)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        os._exit(0)
    os.close(write_end)
    try:
        os.read(read_end, 1)  # EOF once the child has exited: it is a zombie now
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, still not reaped
        yield pid
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def test_mountinfo_of_an_exiting_process_is_vanished(zombie: int) -> None:
    proc_fd = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as caught:
            mountinfo.read(proc_fd, zombie)
        assert skip_reason(caught.value) is SkipReason.VANISHED
        assert mountinfo.read(proc_fd, os.getpid())  # a live process still reads fine
    finally:
        os.close(proc_fd)
