"""The agent loop: scan every interval (or when asked), derive, render once, publish."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.registry import Collector

from ns_exporter.config_reload import ConfigReloader
from ns_exporter.exposition import Exposition, render
from ns_exporter.logs import get_logger
from ns_exporter.model import Snapshot
from ns_exporter.scanner import Scanner
from ns_exporter.state import ExporterTotals, State

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    """One scan's state and its exposition, rendered once and served to every scrape."""

    state: State
    body: bytes
    gzipped: bytes


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
    ) -> None:
        self._scanner = scanner
        self._config = config
        self._exposition = exposition
        self._interval = interval
        self._extra = tuple(extra_collectors)
        self._clock = clock
        self._totals = ExporterTotals()
        self._published: Published | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one scan at a time

    @property
    def published(self) -> Published | None:
        return self._published

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
            state = self.derive(snapshot)
            body = render(self._exposition, state, self._extra)
            published = Published(state, body, gzip.compress(body, compresslevel=5))
            self._published = published
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
        if config is None:
            return State(snapshot=snapshot, totals=self._totals)
        # One read of `current`: a reload swaps it whole, never half-way through a scan.
        policy = config.current.policy
        return State(
            snapshot=snapshot,
            totals=self._totals,
            unexpected=policy.unexpected(snapshot.namespaces.values()),
            config=config.status,
        )

    def request_scan(self) -> None:
        """Ask for a scan before the interval ends (events, reloads)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ns-agent", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

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
