"""The process event listener: reads the namespaces of every new or exec'ing process at once and
feeds what it sees to the lifecycle bookkeeping, so that namespaces that live less than a scan
interval are still counted as created and destroyed.

One thread does everything, in this order, again and again:
1. receive a batch of events from the proc connector (waiting only when nothing is due; while
   events trickle in, rounds are at least BATCH apart so that one wake-up serves several);
2. exits are handed on at once (cheap dictionary work); a fork or exec only puts its pid in a
   bounded work queue (pid → time of its first event, so a fork followed by an exec is read
   once). When the queue is full the oldest entry is dropped and counted, so a fork storm
   costs a fixed amount of memory instead of an ever-growing backlog;
3. read the namespace links of a few queued pids (a fork READ_DELAY after it happened, an
   exec at once), then go back to 1, so that the socket is drained between reads and the
   kernel buffer does not overflow (an exit removes its pid from the queue: a process that is
   gone cannot be read);
4. ask the kernel whether namespaces whose last known process exited are gone (Linux 6.18+).

A lost-events error from the kernel (ENOBUFS) is counted, the lifecycle forgets which processes
are in which namespace (it cannot trust it any more) and the agent rescans at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from ns_exporter.lifecycle import LivenessCheck
from ns_exporter.logs import get_logger
from ns_exporter.model import NsKey
from ns_exporter.proc_connector import (
    ConnectorUnavailableError,
    EventKind,
    EventsLostError,
    ProcConnector,
)
from ns_exporter.procfs.errors import ParseError, ProcError
from ns_exporter.procfs.nshandle import HandleChecker
from ns_exporter.procfs.nslinks import ProcessNamespaces
from ns_exporter.state import EventStats

log = get_logger(__name__)

DEFAULT_QUEUE_SIZE = 4096
# Per round: drain up to DRAIN datagrams, then read up to READS queued processes. Draining
# more than is read keeps the kernel buffer empty under a storm: the backlog builds up in the
# bounded queue (where it is counted when dropped), not in the socket (ENOBUFS, a rescan).
DRAIN = 256
READS = 32
# A fork is read this long after it happened: a fork followed at once by an exec (how nearly
# every program is started) is then read once, and children of a fork storm that exit at once
# are never read. Namespaces living less than this may be missed.
READ_DELAY = 0.002
# While events trickle in, two rounds are at least this far apart: a burst (fork, exec, the
# exits of a job) is received and read in one wake-up instead of one wake-up per event. Waking
# up costs more than most events (a poll and a context switch). Never applied with a backlog
# (events left in the socket, or reads due): a process must be read before it exits.
BATCH = 0.005
_KNOWN_LIMIT = 1 << 18  # remembered processes before the memory is cleared (re-read then)
_IDLE_WAKE = 0.25  # seconds between wake-ups when no event comes (to notice a stop)


def _due(pending: OrderedDict[int, tuple[int, int, int]]) -> bool:
    """Whether the oldest queued read is due now."""
    return bool(pending) and next(iter(pending.values()))[2] <= time.monotonic_ns()


class LifecycleSink(Protocol):
    """What the listener feeds (ns_exporter.lifecycle.Lifecycle)."""

    def interest(
        self, pid: int, keys: Sequence[NsKey], changed: Sequence[NsKey], at: float
    ) -> tuple[NsKey, ...] | None:
        """None when the event changes nothing, else the keys whose ns id is wanted."""
        ...

    def process_seen(
        self, pid: int, keys: Sequence[NsKey], ns_ids: Mapping[NsKey, int | None], at: float
    ) -> None: ...

    def process_exited(self, pid: int, at: float) -> None: ...

    def membership_lost(self) -> None: ...

    def due_checks(self, now: float) -> list[LivenessCheck]: ...

    def next_check_at(self) -> float | None: ...

    def check_result(self, check: LivenessCheck, alive: bool | None) -> None: ...


ConnectorFactory = Callable[[], ProcConnector]


class EventListener:
    """Listens to process events on a thread; falls back to nothing (polling) when it cannot."""

    def __init__(
        self,
        sink: LifecycleSink,
        reader: ProcessNamespaces,
        has_ns_id: bool,
        *,
        on_lost: Callable[[], None] = lambda: None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        read_delay: float = READ_DELAY,
        batch: float = BATCH,
        connect: ConnectorFactory = ProcConnector.open,
        checker_factory: Callable[[], HandleChecker] | None = HandleChecker,
    ) -> None:
        self._sink = sink
        self._reader = reader
        self._reader_closed = False
        self._has_ns_id = has_ns_id
        self.on_lost = on_lost
        self._queue_size = queue_size
        self._read_delay = read_delay
        self._batch = batch
        self._connect = connect
        self._checker_factory = checker_factory
        self._checker: HandleChecker | None = None
        self._connector: ProcConnector | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._up = False
        self._counts = dict.fromkeys(EventKind, 0)
        self._lost = 0
        self._dropped = 0
        self._revision = 0
        # pid → its namespaces when last read (the reference for its children and its next
        # exec); forgotten at exit, bounded by the live processes and _KNOWN_LIMIT.
        self._known: dict[int, tuple[NsKey, ...]] = {}

    # --- published figures -----------------------------------------------------------------

    @property
    def revision(self) -> int:
        """Changes whenever a figure changes (to know when to render again)."""
        return self._revision

    def stats(self) -> EventStats:
        return EventStats(
            up=self._up,
            events={kind.value: count for kind, count in self._counts.items()},
            lost=self._lost,
            dropped=self._dropped,
        )

    # --- life cycle of the thread ----------------------------------------------------------

    def start(self) -> bool:
        """Subscribe and start the thread; False (logged) when the connector is unavailable."""
        try:
            self._connector = self._connect()
        except ConnectorUnavailableError as err:
            log.warning(
                "event_listener_unavailable",
                reason=str(err),
                effect="polling only: namespaces that live less than a scan interval are missed",
            )
            self._close_reader()
            return False
        self._checker = self._open_checker()
        self._up = True
        self._revision += 1
        self._thread = threading.Thread(target=self._run, name="ns-events", daemon=True)
        self._thread.start()
        log.info(
            "event_listener_started",
            kernel_filter=self._connector.filtered,
            liveness_checks=self._checker is not None,
            queue_size=self._queue_size,
        )
        return True

    def _open_checker(self) -> HandleChecker | None:
        if not self._has_ns_id or self._checker_factory is None:
            return None
        try:
            checker = self._checker_factory()
        except OSError as err:
            log.info("liveness_checks_unavailable", error=str(err))
            return None
        if checker.works():
            return checker
        checker.close()
        log.info(
            "liveness_checks_unavailable",
            reason="the kernel does not open namespaces by file handle (Linux 6.18+, root)",
            effect="namespaces are counted destroyed at the next scan instead of at once",
        )
        return None

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("event_listener_stop_timeout", timeout=timeout)
                return  # it still uses the socket and the reader
        if self._connector is not None:
            self._connector.close()
            self._connector = None
        if self._checker is not None:
            self._checker.close()
            self._checker = None
        self._close_reader()
        self._up = False

    def _close_reader(self) -> None:
        if not self._reader_closed:
            self._reader.close()
            self._reader_closed = True

    # --- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("event_listener_failed", effect="polling only from now on")
            self._sink.membership_lost()
        finally:
            self._up = False
            self._revision += 1

    def _loop(self) -> None:
        connector = self._connector
        assert connector is not None
        # pid → (timestamp_ns of its first event, parent pid or 0, when to read it), oldest
        # first. A fork is read READ_DELAY after it happened, an exec at once (a process is
        # rarely exec'd twice in a row); an entry waits at most for the forks ahead of it.
        pending: OrderedDict[int, tuple[int, int, int]] = OrderedDict()
        counts = self._counts
        sink = self._sink
        known = self._known
        exit_kind, fork_kind = EventKind.EXIT, EventKind.FORK
        delay_ns = int(self._read_delay * 1e9)
        next_check: float | None = None
        batch = self._batch
        round_started = 0.0
        while not self._stopping.is_set():
            if batch > 0 and connector.drained and not _due(pending):
                gap = round_started + batch - time.monotonic()
                if gap > 0:
                    time.sleep(gap)  # nothing waits: let events gather (never with a backlog)
            wait = _IDLE_WAKE
            if pending:
                head_due = next(iter(pending.values()))[2]
                wait = min(wait, max(0.0, (head_due - time.monotonic_ns()) / 1e9))
            if next_check is not None:
                wait = min(wait, max(0.0, next_check - time.time()))
            try:
                events = connector.receive(DRAIN, wait)
            except EventsLostError:
                self._events_lost(pending)
                continue
            offset = time.time() - time.monotonic()  # CLOCK_MONOTONIC ns → unix seconds
            if events:
                round_started = time.monotonic()
            for event in events:
                counts[event.kind] += 1
                if event.kind is exit_kind:
                    pending.pop(event.pid, None)  # gone before it was read
                    known.pop(event.pid, None)
                    sink.process_exited(event.pid, event.timestamp_ns / 1e9 + offset)
                elif event.pid not in pending:
                    ts = event.timestamp_ns
                    due = ts + delay_ns if event.kind is fork_kind else ts
                    pending[event.pid] = (ts, event.parent, due)
                    if len(pending) > self._queue_size:
                        pending.popitem(last=False)
                        self._dropped += 1
            now_ns = time.monotonic_ns()
            for _ in range(min(READS, len(pending))):
                pid, (ts, parent, due) = next(iter(pending.items()))
                if due > now_ns:
                    break
                del pending[pid]
                self._read(pid, parent, ts / 1e9 + offset)
            if events:
                self._revision += 1
            if self._checker is not None:
                next_check = sink.next_check_at()
                if next_check is not None and next_check <= time.time():
                    self._run_checks(time.time())
                    next_check = sink.next_check_at()

    def _events_lost(self, pending: OrderedDict[int, tuple[int, int, int]]) -> None:
        self._lost += 1
        self._revision += 1
        pending.clear()
        self._known.clear()
        log.warning(
            "events_lost",
            reason="the kernel's socket buffer overflowed (ENOBUFS)",
            action="full rescan; namespace membership handed back to the scans",
        )
        self._sink.membership_lost()
        self.on_lost()

    def _read(self, pid: int, parent: int, at: float) -> None:
        """Read a process's namespaces at once and tell the lifecycle.

        Namespaces are only ever created by clone() or unshare(), so a new one shows up as a
        difference between a new process and its parent, or between a process before and
        after exec. Only those "changed" namespaces get their identity (NS_GET_ID) checked:
        one the lifecycle has on record under the same inode may have died unnoticed since
        the last scan and had its inode reused.
        """
        reader = self._reader
        try:
            dir_fd = reader.open(pid)
        except ProcError:
            return  # it exited before we got to it
        try:
            keys = tuple(reader.keys(dir_fd))
            reference = self._known.get(pid) or (self._reference(parent) if parent else None)
            if len(self._known) >= _KNOWN_LIMIT:
                self._known.clear()
            self._known[pid] = keys
            changed = (
                keys
                if reference is None
                else tuple(key for key, ref in zip(keys, reference, strict=False) if key != ref)
            )
            wanted = self._sink.interest(pid, keys, changed, at)
            if wanted is None:
                return
            ids = self._ns_ids(dir_fd, wanted) if self._has_ns_id and wanted else {}
            self._sink.process_seen(pid, keys, ids, at)
        except ProcError:
            return  # it exited before its links were read
        except ParseError as err:
            log.warning("namespace_link_unparsable", pid=pid, error=str(err))
        finally:
            reader.release(dir_fd)

    def _reference(self, parent: int) -> tuple[NsKey, ...] | None:
        """The parent's namespaces (read once, then remembered until it exits)."""
        keys = self._known.get(parent)
        if keys is not None:
            return keys
        reader = self._reader
        try:
            dir_fd = reader.open(parent)
        except ProcError:
            return None
        try:
            keys = tuple(reader.keys(dir_fd))
        except (ProcError, ParseError):
            return None
        finally:
            reader.release(dir_fd)
        self._known[parent] = keys
        return keys

    def _ns_ids(self, dir_fd: int, keys: Sequence[NsKey]) -> dict[NsKey, int | None]:
        """NS_GET_ID for namespaces not seen before; None for one the process just left."""
        ids: dict[NsKey, int | None] = {}
        for key in keys:
            try:
                ids[key] = self._reader.ns_id(dir_fd, key.ns_type)
            except ProcError:
                ids[key] = None  # the links were read while it lived: they still count
        return ids

    def _run_checks(self, now: float) -> None:
        checker = self._checker
        assert checker is not None
        for check in self._sink.due_checks(now):
            try:
                alive = checker.alive(check.key.ns_type, check.ns_id, check.key.inode)
            except OSError as err:
                log.warning(
                    "liveness_check_failed",
                    ns_type=check.key.ns_type.value,
                    inode=check.key.inode,
                    error=str(err),
                )
                alive = None
            self._sink.check_result(check, alive)
