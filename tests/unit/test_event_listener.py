"""The event listener's loop with a scripted connector and a fake /proc (no kernel)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence

import pytest

from ns_exporter.events import EventListener
from ns_exporter.lifecycle import LivenessCheck
from ns_exporter.model import NsKey, NsType, SkipReason
from ns_exporter.proc_connector import (
    ConnectorUnavailableError,
    EventKind,
    EventsLostError,
    ProcConnector,
    ProcEvent,
)
from ns_exporter.procfs.errors import ProcError
from ns_exporter.procfs.nslinks import ProcessNamespaces

HOST = (NsKey(NsType.NET, 1), NsKey(NsType.UTS, 2))
NEW_UTS = NsKey(NsType.UTS, 3)

Step = list[ProcEvent] | Exception


class ScriptedConnector:
    """Hands out the scripted events (at most max_datagrams per call), then stops the loop."""

    filtered = True

    def __init__(self, steps: list[Step], stop: Callable[[], None], drained: bool = True) -> None:
        self.drained = drained  # as ProcConnector: False = events still wait in the socket
        self._steps = list(steps)
        self._stop = stop
        self.closed = False
        self.calls: list[tuple[float, int]] = []  # (monotonic time, events handed out)

    def receive(self, max_datagrams: int = 64, timeout: float = 0.0) -> list[ProcEvent]:
        if not self._steps:
            self._stop()
            return []
        step = self._steps[0]
        self.calls.append((time.monotonic(), 0 if isinstance(step, Exception) else len(step)))
        if isinstance(step, Exception):
            self._steps.pop(0)
            raise step
        batch, rest = step[:max_datagrams], step[max_datagrams:]
        if rest:
            self._steps[0] = rest
        else:
            self._steps.pop(0)
        return batch

    def close(self) -> None:
        self.closed = True


class FakeProc:
    """A fake /proc: pid → namespace keys; missing pids have exited."""

    def __init__(self, processes: Mapping[int, tuple[NsKey, ...]]) -> None:
        self.processes = dict(processes)
        self.reads: list[int] = []
        self.id_reads: list[tuple[int, NsType]] = []

    def open(self, pid: int) -> int:
        if pid not in self.processes:
            raise ProcError(SkipReason.VANISHED, f"{pid} exited")
        self.reads.append(pid)
        return pid

    def keys(self, dir_fd: int) -> list[NsKey]:
        return list(self.processes[dir_fd])

    def ns_id(self, dir_fd: int, ns_type: NsType) -> int | None:
        self.id_reads.append((dir_fd, ns_type))
        return 1000 + dir_fd

    def release(self, dir_fd: int) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingSink:
    """Stands in for the lifecycle: records what the listener tells it."""

    def __init__(self) -> None:
        self.interests: list[tuple[int, tuple[NsKey, ...], tuple[NsKey, ...]]] = []
        self.seen: list[tuple[int, tuple[NsKey, ...], dict[NsKey, int | None]]] = []
        self.exited: list[int] = []
        self.lost = 0

    def interest(
        self, pid: int, keys: Sequence[NsKey], changed: Sequence[NsKey], at: float
    ) -> tuple[NsKey, ...] | None:
        self.interests.append((pid, tuple(keys), tuple(changed)))
        return tuple(changed) if changed else None

    def process_seen(
        self, pid: int, keys: Sequence[NsKey], ns_ids: Mapping[NsKey, int | None], at: float
    ) -> None:
        self.seen.append((pid, tuple(keys), dict(ns_ids)))

    def process_exited(self, pid: int, at: float) -> None:
        self.exited.append(pid)

    def membership_lost(self) -> None:
        self.lost += 1

    def due_checks(self, now: float) -> list[LivenessCheck]:
        return []

    def next_check_at(self) -> float | None:
        return None

    def check_result(self, check: LivenessCheck, alive: bool | None) -> None:
        pass


def run(
    steps: list[Step],
    proc: FakeProc,
    sink: RecordingSink,
    queue_size: int = 4096,
    on_lost: Callable[[], None] = lambda: None,
    batch: float = 0.0,
    connectors: list[ScriptedConnector] | None = None,
    drained: bool = True,
) -> EventListener:
    holder: list[EventListener] = []

    def stop() -> None:
        holder[0]._stopping.set()

    connector = ScriptedConnector(steps, stop, drained)
    if connectors is not None:
        connectors.append(connector)

    def connect() -> ProcConnector:
        return connector  # type: ignore[return-value]

    listener = EventListener(
        sink,
        proc,  # type: ignore[arg-type]
        has_ns_id=True,
        on_lost=on_lost,
        queue_size=queue_size,
        batch=batch,
        connect=connect,
        checker_factory=None,
    )
    holder.append(listener)
    assert listener.start()
    assert listener._thread is not None
    listener._thread.join(10)
    assert not listener._thread.is_alive()
    listener.stop()
    assert connector.closed
    return listener


def fork(parent: int, child: int) -> ProcEvent:
    return ProcEvent(EventKind.FORK, child, 1_000_000_000, parent)


def exec_(pid: int) -> ProcEvent:
    return ProcEvent(EventKind.EXEC, pid, 2_000_000_000)


def exit_(pid: int) -> ProcEvent:
    return ProcEvent(EventKind.EXIT, pid, 3_000_000_000)


def test_fork_storm_is_bounded_by_the_queue_and_counted() -> None:
    storm = 20_000
    proc = FakeProc({1: HOST, **{pid: HOST for pid in range(100, 100 + storm)}})
    sink = RecordingSink()
    listener = run([[fork(1, pid) for pid in range(100, 100 + storm)]], proc, sink, queue_size=50)
    stats = listener.stats()
    children_read = [pid for pid in proc.reads if pid != 1]
    assert stats.dropped > 0
    assert stats.dropped + len(children_read) == storm  # every fork read or counted dropped
    assert len(set(children_read)) == len(children_read)
    assert stats.events["fork"] == storm
    assert not stats.up  # stopped


def test_while_events_flow_rounds_are_a_batch_apart() -> None:
    """A steady trickle of events is received in rounds at least `batch` apart (one wake-up
    per batch, not per event); nothing is lost by waiting."""
    pids = range(100, 120)
    proc = FakeProc({1: HOST, **{pid: HOST for pid in pids}})
    sink = RecordingSink()
    connectors: list[ScriptedConnector] = []
    listener = run([[fork(1, pid)] for pid in pids], proc, sink, batch=0.02, connectors=connectors)
    with_events = [at for at, count in connectors[0].calls if count]
    assert len(with_events) == len(pids)
    gaps = [later - earlier for earlier, later in itertools.pairwise(with_events)]
    assert min(gaps) >= 0.02
    assert listener.stats().events["fork"] == len(pids)
    assert sorted(set(proc.reads) - {1}) == list(pids)


def test_with_a_backlog_rounds_follow_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events still waiting in the socket are never left there to gather: a process must be
    read before it exits."""
    sleeps: list[float] = []
    real_sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        if threading.current_thread().name == "ns-events":
            sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", recording_sleep)
    pids = range(100, 110)
    proc = FakeProc({1: HOST, **{pid: HOST for pid in pids}})
    steps: list[Step] = [[fork(1, pid)] for pid in pids]
    run(steps, proc, RecordingSink(), batch=0.05, drained=False)
    assert sleeps == []
    run(steps, proc, RecordingSink(), batch=0.05, drained=True)
    assert len(sleeps) == len(pids)  # before every receive after one that brought events


def test_light_load_drops_nothing() -> None:
    proc = FakeProc({1: HOST, 100: HOST, 101: HOST})
    sink = RecordingSink()
    listener = run([[fork(1, 100)], [fork(1, 101)], [exit_(100)]], proc, sink, queue_size=50)
    assert listener.stats().dropped == 0
    assert sorted(proc.reads) == [1, 100, 101]


def test_children_like_their_parent_change_nothing() -> None:
    proc = FakeProc({1: HOST, 100: HOST})
    sink = RecordingSink()
    run([[fork(1, 100)]], proc, sink)
    assert sink.interests == [(100, HOST, ())]
    assert sink.seen == []
    assert proc.id_reads == []  # no ioctl for inherited namespaces


def test_exec_after_unshare_checks_only_the_changed_namespace() -> None:
    proc = FakeProc({1: HOST, 100: HOST})
    sink = RecordingSink()

    class Unsharing(RecordingSink):
        def interest(
            self, pid: int, keys: Sequence[NsKey], changed: Sequence[NsKey], at: float
        ) -> tuple[NsKey, ...] | None:
            proc.processes[100] = (HOST[0], NEW_UTS)  # unshare(CLONE_NEWUTS) after the fork
            return super().interest(pid, keys, changed, at)

    sink = Unsharing()
    run([[fork(1, 100)], [exec_(100)]], proc, sink)
    assert sink.interests[-1] == (100, (HOST[0], NEW_UTS), (NEW_UTS,))
    assert sink.seen == [(100, (HOST[0], NEW_UTS), {NEW_UTS: 1100})]
    assert proc.id_reads == [(100, NsType.UTS)]


def test_exec_of_an_unknown_process_checks_everything() -> None:
    proc = FakeProc({200: HOST})
    sink = RecordingSink()
    run([[exec_(200)]], proc, sink)
    assert sink.interests == [(200, HOST, HOST)]


def test_exit_before_the_read_skips_it_and_is_reported() -> None:
    proc = FakeProc({1: HOST})  # pid 100 is already gone from /proc
    sink = RecordingSink()
    run([[fork(1, 100), exit_(100)]], proc, sink)
    assert 100 not in proc.reads
    assert sink.exited == [100]


def test_lost_events_are_counted_and_trigger_a_rescan() -> None:
    rescans = threading.Event()
    proc = FakeProc({1: HOST, 100: HOST})
    sink = RecordingSink()
    listener = run(
        [[fork(1, 100)], EventsLostError("ENOBUFS"), [exit_(100)]],
        proc,
        sink,
        on_lost=rescans.set,
    )
    assert listener.stats().lost == 1
    assert sink.lost == 1
    assert rescans.is_set()


def test_unavailable_connector_means_polling_only() -> None:
    def refuse() -> ProcConnector:
        raise ConnectorUnavailableError("no acknowledgement from the kernel")

    listener = EventListener(
        RecordingSink(),
        FakeProc({}),  # type: ignore[arg-type]
        has_ns_id=True,
        connect=refuse,
        checker_factory=None,
    )
    assert listener.start() is False
    assert listener.stats().up is False
    listener.stop()


def test_reader_type_is_the_real_one() -> None:
    # The fake above mirrors this interface; keep them in step.
    for name in ("open", "keys", "ns_id", "release", "close"):
        assert callable(getattr(ProcessNamespaces, name))
