"""The live config file: loaded at start-up, re-read on SIGHUP and POST /-/reload.

A bad file at start-up raises ConfigError (the CLI exits 2 before anything listens). A bad
file on reload keeps the previous config and policy, logs the file, key and reason, and
marks the reload failed (ns_exporter_config_last_reload_successful 0) until a good reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import ConfigFile, load_config_file
from ns_exporter.logs import get_logger
from ns_exporter.policy import Policy

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config file and the policy compiled from it."""

    config: ConfigFile
    policy: Policy


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """How the last (re)load went, as Prometheus reports its own config reloads."""

    successful: bool
    last_success: float  # unix time of the last successful load
    error: str = ""  # the last failure, "" after a success


def _loaded(config: ConfigFile) -> LoadedConfig:
    return LoadedConfig(config, Policy(config.expected))


class ConfigReloader:
    """Holds the current config; `reload()` swaps it only for a valid file. Thread-safe."""

    def __init__(
        self,
        path: str,
        *,
        load: Callable[[str], ConfigFile] = load_config_file,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._load = load
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Callable[[ReloadStatus], None]] = []
        # At start-up a bad file is fatal: ConfigError propagates to the caller.
        self._current = _loaded(load(path) if path else ConfigFile())
        self._status = ReloadStatus(successful=True, last_success=clock())

    @property
    def current(self) -> LoadedConfig:
        return self._current

    @property
    def status(self) -> ReloadStatus:
        return self._status

    def on_reload(self, listener: Callable[[ReloadStatus], None]) -> None:
        """Call `listener(status)` after every reload attempt, failed or not (e.g. to rescan)."""
        self._listeners.append(listener)

    def reload(self) -> ReloadStatus:
        """Re-read the file; keep the old config if it is bad. Returns the new status."""
        with self._lock:
            status = self._reload_locked()
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(status)
        return status

    def _reload_locked(self) -> ReloadStatus:
        if not self.path:
            self._status = ReloadStatus(successful=True, last_success=self._clock())
            log.info("config_reload_skipped", reason="no --config.file")
            return self._status
        try:
            loaded = _loaded(self._load(self.path))
        except ConfigError as err:
            self._status = ReloadStatus(
                successful=False, last_success=self._status.last_success, error=str(err)
            )
            log.error("config_reload_failed", file=err.file, key=err.key, reason=err.reason)
            return self._status
        if loaded.config.probe != self._current.config.probe:
            log.warning(
                "config_probe_section_changed",
                file=self.path,
                effect="the probe: section applies at the next start; expected: applies now",
            )
        self._current = loaded
        self._status = ReloadStatus(successful=True, last_success=self._clock())
        rules = loaded.config.expected
        log.info(
            "config_reloaded",
            file=self.path,
            expected_rules=None if rules is None else len(rules),
        )
        return self._status

    def reload_in_background(self) -> None:
        """For a signal handler: reload in a short-lived thread, never inside the handler."""
        threading.Thread(target=self.reload, name="config-reload", daemon=True).start()
