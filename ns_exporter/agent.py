"""The agent loop: scan every interval (or when asked), derive, render once, publish.

With a lifecycle and an event listener attached, counters also move between scans; the
published exposition is then rendered again when a scrape finds them changed (at most once a
`refresh_interval`), never by the listener itself.
"""

from __future__ import annotations

import dataclasses
import gzip
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.registry import Collector

from ns_exporter.config_reload import ConfigReloader
from ns_exporter.exposition import Exposition
from ns_exporter.exposition_cache import CachedRenderer
from ns_exporter.lifecycle import EMPTY_TOTALS, Lifecycle
from ns_exporter.logs import get_logger
from ns_exporter.model import Snapshot
from ns_exporter.scanner import Scanner
from ns_exporter.state import EventStats, ExporterTotals, State

if TYPE_CHECKING:
    from ns_exporter.events import EventListener

log = get_logger(__name__)

REFRESH_INTERVAL = 1.0  # seconds: how stale event-driven counters may be on a scrape


@dataclass(frozen=True, slots=True)
class Published:
    """One scan's state and its exposition, rendered once and served to every scrape."""

    state: State
    body: bytes
    gzipped: bytes
    revision: tuple[int, int] = (0, 0)  # lifecycle and listener revisions rendered
    rendered: float = 0.0  # agent clock


class Agent:
    """Runs scans on a background thread and publishes the latest result atomically."""

    def __init__(
        self,
        scanner: Scanner,
        exposition: Exposition,
        interval: float,
        extra_collectors: Iterable[Collector] = (),
        clock: Callable[[], float] = time.monotonic,
        config: ConfigReloader | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self._scanner = scanner
        self._config = config
        self._renderer = CachedRenderer(exposition, extra_collectors)
        self._interval = interval
        self._clock = clock
        self._totals = ExporterTotals()
        self._published: Published | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one scan at a time
        self._publish_lock = threading.Lock()  # one render-and-swap at a time
        self._lifecycle = lifecycle
        self._listener: EventListener | None = None
        self._refresh_interval = refresh_interval

    @property
    def lifecycle(self) -> Lifecycle | None:
        return self._lifecycle

    @property
    def listener(self) -> EventListener | None:
        return self._listener

    def attach_listener(self, listener: EventListener) -> None:
        """Feed process events to the lifecycle; lost events trigger a rescan."""
        listener.on_lost = self.request_scan
        self._listener = listener

    @property
    def published(self) -> Published | None:
        """The latest exposition, rendered again if event-driven figures moved since."""
        published = self._published
        if published is None or published.revision == self._revision():
            return published
        if self._clock() - published.rendered < self._refresh_interval:
            return published
        return self._refresh()

    def _revision(self) -> tuple[int, int]:
        lifecycle = self._lifecycle.version if self._lifecycle is not None else 0
        listener = self._listener.revision if self._listener is not None else 0
        return (lifecycle, listener)

    def _events(self) -> EventStats:
        return self._listener.stats() if self._listener is not None else EventStats()

    def _refresh(self) -> Published | None:
        with self._publish_lock:
            base = self._published
            if base is None:
                return None
            revision = self._revision()
            state = dataclasses.replace(
                base.state,
                lifecycle=self._lifecycle.totals() if self._lifecycle else base.state.lifecycle,
                events=self._events(),
            )
            return self._publish(state, revision)

    def _publish(self, state: State, revision: tuple[int, int]) -> Published:
        """Render and swap in (caller holds the publish lock)."""
        body = self._renderer.render(state)
        published = Published(
            state, body, gzip.compress(body, compresslevel=5), revision, self._clock()
        )
        self._published = published
        return published

    @property
    def ready(self) -> bool:
        return self._published is not None

    def scan_once(self) -> Published | None:
        """Scan, derive and render now; on an unexpected failure keep the last result."""
        with self._lock:
            try:
                snapshot = self._scanner.scan()
            except Exception:
                log.exception("scan_failed")
                self._totals = ExporterTotals(
                    self._totals.scans, self._totals.skipped, self._totals.errors + 1
                )
                return self._published
            self._totals = self._totals.add(snapshot)
            with self._publish_lock:
                revision = self._revision()
                published = self._publish(self.derive(snapshot), revision)
            log.debug(
                "scan_done",
                namespaces=len(snapshot.namespaces),
                processes=snapshot.stats.processes_scanned,
                duration=round(snapshot.stats.duration, 4),
            )
            return published

    def derive(self, snapshot: Snapshot) -> State:
        """Everything computed from successive snapshots (policy, lifecycle) goes here."""
        config = self._config
        lifecycle = self._lifecycle
        if lifecycle is not None:
            lifecycle.reconcile(snapshot)
        lifecycle_totals = lifecycle.totals() if lifecycle is not None else EMPTY_TOTALS
        if config is None:
            return State(
                snapshot=snapshot,
                totals=self._totals,
                lifecycle=lifecycle_totals,
                events=self._events(),
            )
        # One read of `current`: a reload swaps it whole, never half-way through a scan.
        policy = config.current.policy
        return State(
            snapshot=snapshot,
            totals=self._totals,
            unexpected=policy.unexpected(snapshot.namespaces.values()),
            config=config.status,
            lifecycle=lifecycle_totals,
            events=self._events(),
        )

    def request_scan(self) -> None:
        """Ask for a scan before the interval ends (events, reloads)."""
        self._wake.set()

    def start(self) -> None:
        # The listener starts first, so nothing between the baseline scan and it is missed.
        if self._listener is not None:
            self._listener.start()
        self._thread = threading.Thread(target=self._run, name="ns-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._listener is not None:
            self._listener.stop(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = self._clock()
            try:
                self.scan_once()
            except Exception:  # deriving or rendering failed: keep the loop (and last result)
                log.exception("scan_publish_failed")
                with self._lock:
                    self._totals = ExporterTotals(
                        self._totals.scans, self._totals.skipped, self._totals.errors + 1
                    )
            remaining = self._interval - (self._clock() - started)
            if remaining > 0:
                self._wake.wait(remaining)
            self._wake.clear()
