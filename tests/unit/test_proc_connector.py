"""The proc connector wire format and the in-kernel filter, on synthetic datagrams."""

from __future__ import annotations

import socket
import struct

import pytest

from ns_exporter import proc_connector as pc
from ns_exporter.proc_connector import EventKind, ProcEvent


def datagram(what: int, data: tuple[int, ...], ts: int = 123_456_789) -> bytes:
    """One netlink message as the kernel sends it (76 bytes)."""
    event = struct.pack("=IIQ", what, 0, ts) + struct.pack(f"={len(data)}I", *data)
    event = event.ljust(40, b"\0")
    cn = struct.pack("=IIIIHH", pc.CN_IDX_PROC, pc.CN_VAL_PROC, 1, 0, len(event), 0) + event
    return struct.pack("=IHHII", 16 + len(cn), pc.NLMSG_DONE, 0, 1, 0) + cn


def fork(parent: int, child: int, child_tgid: int | None = None) -> bytes:
    return datagram(pc.PROC_EVENT_FORK, (parent, parent, child, child_tgid or child))


def exec_(pid: int, tgid: int | None = None) -> bytes:
    return datagram(pc.PROC_EVENT_EXEC, (pid, tgid or pid))


def exit_(pid: int, tgid: int | None = None) -> bytes:
    return datagram(pc.PROC_EVENT_EXIT, (pid, tgid or pid, 0, 17, 1, 1))


ACK = datagram(pc.PROC_EVENT_NONE, (0,))
COMM = datagram(0x200, (42, 42))
UID = datagram(0x4, (42, 42, 0, 0))
THREAD_FORK = fork(42, 43, child_tgid=42)
THREAD_EXIT = exit_(43, tgid=42)


def test_datagram_size_matches_the_kernel() -> None:
    assert len(fork(1, 2)) == 76


def test_parse_fork_exec_exit() -> None:
    assert pc.parse(fork(10, 11)) == [ProcEvent(EventKind.FORK, 11, 123_456_789, 10)]
    assert pc.parse(exec_(11)) == [ProcEvent(EventKind.EXEC, 11, 123_456_789)]
    assert pc.parse(exit_(11)) == [ProcEvent(EventKind.EXIT, 11, 123_456_789)]


@pytest.mark.parametrize("data", [THREAD_FORK, THREAD_EXIT, COMM, UID, ACK, b"", b"\0" * 40])
def test_parse_ignores_threads_other_events_and_garbage(data: bytes) -> None:
    assert pc.parse(data) == []


def test_parse_reads_only_the_received_size() -> None:
    buf = bytearray(8192)
    data = exec_(7)
    buf[: len(data)] = data
    assert pc.parse(memoryview(buf), len(data)) == [ProcEvent(EventKind.EXEC, 7, 123_456_789)]
    assert pc.parse(memoryview(buf), 40) == []


def test_parse_several_messages_in_one_datagram() -> None:
    assert [e.kind for e in pc.parse(fork(1, 2) + exec_(2) + exit_(2))] == [
        EventKind.FORK,
        EventKind.EXEC,
        EventKind.EXIT,
    ]


def test_ack_error() -> None:
    assert pc.ack_error(ACK, len(ACK)) == 0
    refused = datagram(pc.PROC_EVENT_NONE, (1,))
    assert pc.ack_error(refused, len(refused)) == 1
    assert pc.ack_error(exec_(3), 76) is None


def run_filter(program: list[tuple[int, int, int, int]], packet: bytes) -> int:
    """A classic BPF interpreter for the instructions the filter uses (as the kernel runs it:
    absolute word loads are big-endian, a load beyond the packet rejects it)."""
    a = x = 0
    pc_ = 0
    while True:
        code, jt, jf, k = program[pc_]
        if code == 0x20:  # ld [k]
            if k + 4 > len(packet):
                return 0
            a = int.from_bytes(packet[k : k + 4], "big")
        elif code == 0x07:  # tax
            x = a
        elif code == 0x15:  # jeq #k
            pc_ += jt if a == k else jf
        elif code == 0x1D:  # jeq x
            pc_ += jt if a == x else jf
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc_ += 1


@pytest.mark.parametrize(
    ("packet", "kept"),
    [
        (fork(1, 2), True),
        (exec_(2), True),
        (exit_(2), True),
        (ACK, True),
        (THREAD_FORK, False),
        (THREAD_EXIT, False),
        (COMM, False),
        (UID, False),
        (b"\0" * 20, False),
    ],
    ids=["fork", "exec", "exit", "ack", "thread_fork", "thread_exit", "comm", "uid", "short"],
)
def test_kernel_filter_keeps_what_parse_keeps(packet: bytes, kept: bool) -> None:
    assert (run_filter(pc.filter_program(), packet) != 0) is kept


def test_filter_jumps_stay_inside_the_program() -> None:
    program = pc.filter_program()
    for index, (code, jt, jf, _k) in enumerate(program):
        if code in (0x15, 0x1D):
            assert index + 1 + jt < len(program)
            assert index + 1 + jf < len(program)
    assert program[-1] == (0x06, 0, 0, 0)


def test_receive_says_whether_the_socket_was_emptied() -> None:
    """`drained` is what lets the listener wait for events to gather only without a backlog."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    connector = pc.ProcConnector(ours, filtered=True)
    try:
        for pid in (11, 12, 13):
            kernel.send(fork(1, pid))
        first = connector.receive(max_datagrams=2, timeout=1.0)
        assert [e.pid for e in first] == [11, 12]
        assert not connector.drained
        rest = connector.receive(max_datagrams=2, timeout=1.0)
        assert [e.pid for e in rest] == [13]
        assert connector.drained
        assert connector.receive(max_datagrams=2, timeout=0.01) == []
        assert connector.drained
    finally:
        ours.close()
        kernel.close()
