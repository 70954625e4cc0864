"""Whether a process has run since an earlier look, as cheaply as the kernel allows.

A process's namespaces change only through its own system calls (setns, unshare, execve after
unshare(CLONE_NEWTIME), exit): no other process can move it. A process that has not run
since a look at its namespace links still has those links.

Two readers, both giving a value that changes whenever the process has run:

- CPU_TIME: the CPU time of all its threads, from the process CPU clock (clock_gettime, one
  system call, no file); the kernel resolves the pid in the caller's pid namespace, so this
  is used only when the procfs being walked belongs to the exporter's own pid namespace;
- SCHEDSTAT: otherwise /proc/PID/schedstat (run time, wait time and times scheduled of its
  main thread: the thread whose namespaces and credentials /proc/PID shows).

The comm of a process can also be set by its other threads (/proc/PID/comm): only CPU_TIME,
which covers every thread, also proves that the comm has not changed.

Both are accounted at scheduler events: a task that keeps a CPU without being switched out
is accounted at the scheduler tick, and on a nohz_full CPU by the housekeeping CPU's remote
tick about once a second (the kernel warns when that lags 3 s). An unchanged value therefore
proves that the process did not run only over a window longer than ACCOUNTING_BOUND.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.fields import unsigned

ACCOUNTING_BOUND = 3.0  # seconds

_CPUCLOCK_SCHED = 2  # linux/posix-timers.h: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
_SCHEDSTAT_DISABLED = b"0 0 0\n"  # kernels without sched_info accounting


@dataclass(frozen=True, slots=True)
class Activity:
    """A way to tell whether a process has run."""

    name: str
    # (procfs fd, pid) → a value that changes when the process runs; None when unknown
    read: Callable[[int, int], int | bytes | None]
    whole_process: bool  # covers every thread (so also comm changes), not the main one only


def process_cpu_clock(pid: int) -> int:
    """The clockid of a process's CPU time (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    return (~pid << 3) | _CPUCLOCK_SCHED


def cpu_time(_proc_fd: int, pid: int) -> int | None:
    """CPU time of all threads of the process, in ns; None when it is gone."""
    try:
        return time.clock_gettime_ns((~pid << 3) | _CPUCLOCK_SCHED)  # process_cpu_clock(pid)
    except OSError:
        return None  # EINVAL: no such process (the links read tells vanished from other)


def schedstat(proc_fd: int, pid: int) -> bytes | None:
    """/proc/PID/schedstat; None when unreadable or when the kernel does not account it."""
    try:
        fd = os.open(b"%d/schedstat" % pid, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    except OSError:
        return None
    try:
        data = os.read(fd, 128)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if data == _SCHEDSTAT_DISABLED else data


def parse_nspid(status: bytes) -> tuple[int, ...]:
    """The NSpid line of /proc/PID/status: the pid in each pid namespace, outermost first."""
    for line in status.split(b"\n"):
        if line.startswith(b"NSpid:"):
            return tuple(unsigned(field, "status: NSpid") for field in line.split()[1:])
    return ()


CPU_TIME = Activity("cpu_time", cpu_time, whole_process=True)
SCHEDSTAT = Activity("schedstat", schedstat, whole_process=False)


def reader_for(procfs: str) -> Activity:
    """cpu_time when `procfs` shows the exporter's own pid namespace, else schedstat.

    /proc/self/status of a procfs lists our pid in every namespace from the procfs's pid
    namespace inward (NSpid): exactly one entry means it is our own namespace.
    """
    try:
        with open(os.path.join(procfs, "self", "status"), "rb") as f:
            nspid = parse_nspid(f.read())
    except (OSError, ParseError):
        return SCHEDSTAT  # not a procfs we are visible in (or a fake tree)
    return CPU_TIME if nspid == (os.getpid(),) else SCHEDSTAT
