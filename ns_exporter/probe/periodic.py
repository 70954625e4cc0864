"""Optional periodic probing: a background thread probes the configured modules every
interval and keeps each module's last result; as a prometheus_client Collector it adds
`ns_probe_success{module}` and `ns_probe_last_run_timestamp_seconds{module}` to /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ns_exporter.logs import get_logger
from ns_exporter.probe.metrics import periodic_families
from ns_exporter.probe.result import ProbeResult

log = get_logger(__name__)

RunProbe = Callable[[str, float], ProbeResult]


class PeriodicProber(Collector):
    """Runs the modules one after another every `interval` seconds on its own thread."""

    def __init__(
        self,
        run: RunProbe,
        modules: Sequence[str],
        interval: float,
        timeout_for: Callable[[str], float],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._run = run
        self._modules = tuple(modules)
        self._interval = interval
        self._timeout_for = timeout_for
        self._wall_clock = wall_clock
        self._latest: Mapping[str, tuple[ProbeResult, float]] = MappingProxyType({})
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def latest(self) -> Mapping[str, tuple[ProbeResult, float]]:
        """module → (last result, unix time it finished); replaced whole, never mutated."""
        return self._latest

    def run_once(self) -> None:
        for module in self._modules:
            if self._stopping.is_set():
                return
            result = self._run(module, self._timeout_for(module))
            updated = dict(self._latest)
            updated[module] = (result, self._wall_clock())
            self._latest = MappingProxyType(updated)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ns-probe-periodic", daemon=True)
        self._thread.start()
        log.info("periodic_probe_started", modules=",".join(self._modules), interval=self._interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.run_once()
            except Exception:
                log.exception("periodic_probe_failed")
            self._stopping.wait(max(0.0, self._interval - (time.monotonic() - started)))

    def collect(self) -> Iterator[Metric]:
        yield from periodic_families(self._latest)
