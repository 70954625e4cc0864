"""The kernel's process events connector (linux/connector.h, linux/cn_proc.h), read with plain
sockets and `struct`.

A NETLINK_CONNECTOR socket bound to the CN_IDX_PROC multicast group receives one datagram per
process event once PROC_CN_MCAST_LISTEN has been sent. This module only turns those datagrams
into (kind, pid, timestamp) events; it knows nothing of namespaces or Prometheus.

Only what matters for namespaces is delivered: fork of a new process (not of a thread), exec,
and exit of a thread-group leader. A classic BPF socket filter drops everything else inside the
kernel (thread creation and exit, comm/uid/gid/sid changes), so a busy multi-threaded host does
not wake the listener; where the filter cannot be attached the same selection happens here.

Wire format (native byte order), each datagram:
    nlmsghdr  16 bytes: len u32, type u16, flags u16, seq u32, pid u32
    cn_msg    20 bytes: idx u32, val u32, seq u32, ack u32, len u16, flags u16
    proc_event at offset 36: what u32, cpu u32, timestamp_ns u64 (CLOCK_MONOTONIC),
              then the event data at offset 52:
        fork: parent_pid, parent_tgid, child_pid, child_tgid (u32 each)
        exec: process_pid, process_tgid
        exit: process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid
        none (the acknowledgement of LISTEN): err u32
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import select
import socket
import struct
import time
from dataclasses import dataclass

from ns_exporter.logs import get_logger

log = get_logger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_ERROR = 2
NLMSG_DONE = 3

PROC_EVENT_NONE = 0x0
PROC_EVENT_FORK = 0x1
PROC_EVENT_EXEC = 0x2
PROC_EVENT_EXIT = 0x80000000

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_EVENT_OFFSET = _NLMSGHDR.size + _CN_MSG.size  # 36
# what, (cpu skipped), timestamp_ns, then four u32 of event data.
_EVENT = struct.Struct("=I4xQIIII")
_MIN_LEN = _EVENT_OFFSET + _EVENT.size  # 68
_FORK_CHILD_PID = _EVENT_OFFSET + 24  # 60
_FORK_CHILD_TGID = _EVENT_OFFSET + 28  # 64
_PROC_PID = _EVENT_OFFSET + 16  # 52
_PROC_TGID = _EVENT_OFFSET + 20  # 56

SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33
DEFAULT_RCVBUF = 4 * 1024 * 1024
_RECV_SIZE = 8192


class EventKind(enum.StrEnum):
    """The process events the listener delivers."""

    FORK = "fork"
    EXEC = "exec"
    EXIT = "exit"


@dataclass(frozen=True, slots=True)
class ProcEvent:
    """One process event: the process (thread-group id) and when the kernel emitted it."""

    kind: EventKind
    pid: int
    timestamp_ns: int  # CLOCK_MONOTONIC nanoseconds
    parent: int = 0  # fork: the parent process (tgid); 0 for the other kinds


class ConnectorUnavailableError(Exception):
    """The proc connector cannot be used here; the message says why in one line."""


class EventsLostError(Exception):
    """The kernel dropped events because the socket buffer was full (ENOBUFS)."""


# errno of socket()/bind()/send() → why the connector is unavailable.
_UNAVAILABLE: dict[int, str] = {
    errno.EPERM: "permission denied (before Linux 6.6: needs CAP_NET_ADMIN in the initial user "
    "namespace)",
    errno.EACCES: "permission denied (before Linux 6.6: needs CAP_NET_ADMIN in the initial user "
    "namespace)",
    errno.EPROTONOSUPPORT: "no process connector (a kernel without CONFIG_CONNECTOR)",
    errno.ECONNREFUSED: "no process connector in this network namespace (it lives in the "
    "host's initial network namespace only; or a kernel without CONFIG_PROC_EVENTS)",
    errno.EAFNOSUPPORT: "netlink sockets are not available",
}


def unavailable_reason(err: OSError) -> str:
    """A one-line reason for an OSError raised while opening the connector."""
    return _UNAVAILABLE.get(err.errno or 0, err.strerror or str(err))


def _host_u32(value: int) -> int:
    """A native-order u32 as classic BPF's absolute word load sees it (big-endian)."""
    return int.from_bytes(struct.pack("=I", value), "big")


# Classic BPF opcodes (linux/filter.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JEQ_X = 0x1D
_TAX = 0x07
_RET_K = 0x06


def filter_program() -> list[tuple[int, int, int, int]]:
    """The socket filter: keep fork of processes, exec, exit of leaders and the LISTEN ack.

    Returned as (code, jt, jf, k) instructions with jumps already resolved.
    """
    accept, reject = "accept", "reject"
    # (code, true-label, false-label, k); labels name instructions below.
    program: list[tuple[str, int, str | None, str | None, int]] = [
        ("what", _LD_W_ABS, None, None, _EVENT_OFFSET),
        ("", _JEQ_K, "fork", None, _host_u32(PROC_EVENT_FORK)),
        ("", _JEQ_K, accept, None, _host_u32(PROC_EVENT_EXEC)),
        ("", _JEQ_K, "exit", None, _host_u32(PROC_EVENT_EXIT)),
        ("", _JEQ_K, accept, reject, _host_u32(PROC_EVENT_NONE)),
        ("fork", _LD_W_ABS, None, None, _FORK_CHILD_PID),
        ("", _TAX, None, None, 0),
        ("", _LD_W_ABS, None, None, _FORK_CHILD_TGID),
        ("", _JEQ_X, accept, reject, 0),
        ("exit", _LD_W_ABS, None, None, _PROC_PID),
        ("", _TAX, None, None, 0),
        ("", _LD_W_ABS, None, None, _PROC_TGID),
        ("", _JEQ_X, accept, reject, 0),
        (accept, _RET_K, None, None, 0xFFFFFFFF),
        (reject, _RET_K, None, None, 0),
    ]
    where = {label: index for index, (label, *_rest) in enumerate(program) if label}

    def offset(index: int, label: str | None) -> int:
        return 0 if label is None else where[label] - index - 1

    return [
        (code, offset(i, jt), offset(i, jf), k) for i, (_, code, jt, jf, k) in enumerate(program)
    ]


def _attach_filter(sock: socket.socket) -> None:
    program = filter_program()
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    array = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HP", len(program), ctypes.addressof(array))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _control(op: int, port: int) -> bytes:
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, port) + cn


_KINDS: dict[int, EventKind] = {
    PROC_EVENT_FORK: EventKind.FORK,
    PROC_EVENT_EXEC: EventKind.EXEC,
    PROC_EVENT_EXIT: EventKind.EXIT,
}


def parse(data: bytes | bytearray | memoryview, size: int | None = None) -> list[ProcEvent]:
    """The process events in one datagram, already narrowed to processes (not threads).

    Acknowledgements and events of other kinds yield nothing.
    """
    end = len(data) if size is None else size
    events: list[ProcEvent] = []
    offset = 0
    while offset + _MIN_LEN <= end:
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _NLMSGHDR.size:
            break
        what, ts, a, b, c, d = _EVENT.unpack_from(data, offset + _EVENT_OFFSET)
        kind = _KINDS.get(what)
        if kind is EventKind.FORK:
            if c == d:  # child pid == child tgid: a new process, not a thread
                events.append(ProcEvent(kind, c, ts, b))
        elif kind is EventKind.EXEC:
            events.append(ProcEvent(kind, b, ts))
        elif kind is EventKind.EXIT and a == b:  # the thread-group leader
            events.append(ProcEvent(kind, a, ts))
        offset += (length + 3) & ~3
    return events


def ack_error(data: bytes | bytearray | memoryview, size: int) -> int | None:
    """The errno of a LISTEN acknowledgement (0 for success), or None if this is no ack."""
    if size < _MIN_LEN:
        return None
    what, _ts, err, _b, _c, _d = _EVENT.unpack_from(data, _EVENT_OFFSET)
    return err if what == PROC_EVENT_NONE else None


class ProcConnector:
    """A subscribed proc connector socket. Use `open()`; not thread-safe (one reader)."""

    def __init__(self, sock: socket.socket, filtered: bool) -> None:
        self._sock = sock
        self._buf = bytearray(_RECV_SIZE)
        self._view = memoryview(self._buf)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self.filtered = filtered
        # Whether the last `receive` emptied the socket (False: events are still waiting).
        self.drained = True

    @classmethod
    def open(cls, rcvbuf: int = DEFAULT_RCVBUF, ack_timeout: float = 2.0) -> ProcConnector:
        """Subscribe to process events; raise ConnectorUnavailableError with the reason.

        The kernel acknowledges LISTEN only from the initial pid namespace and with enough
        privilege; no acknowledgement within `ack_timeout` means no events would ever come.
        """
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as err:
            raise ConnectorUnavailableError(unavailable_reason(err)) from err
        try:
            filtered = cls._configure(sock, rcvbuf)
            port = sock.getsockname()[0]
            sock.send(_control(PROC_CN_MCAST_LISTEN, port))
            connector = cls(sock, filtered)
            connector._await_ack(ack_timeout)
        except OSError as err:
            sock.close()
            raise ConnectorUnavailableError(unavailable_reason(err)) from err
        except ConnectorUnavailableError:
            sock.close()
            raise
        return connector

    @staticmethod
    def _configure(sock: socket.socket, rcvbuf: int) -> bool:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((0, CN_IDX_PROC))
        try:
            _attach_filter(sock)
        except OSError:
            return False  # filtering in parse() instead
        return True

    def _await_ack(self, ack_timeout: float) -> None:
        deadline = time.monotonic() + ack_timeout
        while (left := deadline - time.monotonic()) > 0:
            if not self._poll.poll(max(1, int(left * 1000))):
                break
            try:
                size = self._sock.recv_into(self._buf, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                continue
            err = ack_error(self._view, size)
            if err is None:
                continue  # an event that raced the acknowledgement
            if err:
                raise ConnectorUnavailableError(unavailable_reason(OSError(err, os.strerror(err))))
            return
        raise ConnectorUnavailableError(
            "no acknowledgement from the kernel (not in the initial pid namespace?)"
        )

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive(self, max_datagrams: int = 64, timeout: float = 0.0) -> list[ProcEvent]:
        """The events available now, waiting up to `timeout` seconds for the first one.

        Raises EventsLostError once after the kernel dropped events (ENOBUFS).
        """
        if timeout > 0 and not self._poll.poll(max(1, int(timeout * 1000))):
            self.drained = True
            return []
        events: list[ProcEvent] = []
        recv_into = self._sock.recv_into
        buf, view = self._buf, self._view
        dontwait = socket.MSG_DONTWAIT
        self.drained = False
        for _ in range(max_datagrams):
            try:
                size = recv_into(buf, 0, dontwait)
            except BlockingIOError:
                self.drained = True
                break
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    raise EventsLostError("the kernel dropped process events (ENOBUFS)") from err
                raise
            events.extend(parse(view, size))
        return events

    def close(self) -> None:
        try:
            port = self._sock.getsockname()[0]
            self._sock.send(_control(PROC_CN_MCAST_IGNORE, port))
        except OSError as err:  # closing the socket unsubscribes anyway
            log.debug("connector_unsubscribe_failed", error=str(err))
        finally:
            self._sock.close()
