"""Builds the running parts from Settings (shared by `serve`, `list` and `textfile`)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.registry import Collector

from ns_exporter.agent import Agent
from ns_exporter.build import build_info
from ns_exporter.config import Settings
from ns_exporter.config_reload import ConfigReloader
from ns_exporter.events import EventListener
from ns_exporter.exposition import Exposition
from ns_exporter.lifecycle import Lifecycle
from ns_exporter.logs import get_logger
from ns_exporter.procfs.errors import ProcError
from ns_exporter.procfs.nslinks import ProcessNamespaces
from ns_exporter.procfs.process import CAP_SYS_PTRACE, own_effective_caps
from ns_exporter.scanner import Scanner, ScanOptions

log = get_logger(__name__)


def warn_if_unprivileged() -> bool:
    """Warn once when other users' namespaces will be invisible. True when privileged."""
    try:
        caps = own_effective_caps()
    except (OSError, ValueError) as err:
        log.warning("capabilities_unknown", error=str(err))
        return False
    if caps & (1 << CAP_SYS_PTRACE):
        return True
    log.warning(
        "insufficient_privilege",
        missing="CAP_SYS_PTRACE",
        effect="namespaces of processes owned by other users will be missing; "
        'they are counted in ns_exporter_scan_skipped_processes_total{reason="permission_denied"}',
        hint="run as root or grant CAP_SYS_PTRACE (and CAP_DAC_READ_SEARCH)",
    )
    return False


def build_scanner(settings: Settings) -> Scanner:
    return Scanner(
        ScanOptions(procfs=settings.procfs, rootfs=settings.rootfs, collectors=settings.collectors)
    )


def build_agent(
    settings: Settings,
    with_process_metrics: bool = False,
    extra_collectors: Iterable[Collector] = (),
    config: ConfigReloader | None = None,
    with_events: bool = False,
) -> Agent:
    """The agent; `with_events` (serve) attaches the process event listener when enabled."""
    exposition = Exposition(build=build_info(), max_series=settings.max_series)
    extra: tuple[Collector, ...] = (
        (ProcessCollector(registry=None), PlatformCollector(registry=None))
        if with_process_metrics
        else ()
    )
    scanner = build_scanner(settings)
    agent = Agent(
        scanner,
        exposition,
        settings.scan_interval,
        (*extra, *extra_collectors),
        config=config,
        lifecycle=Lifecycle(),
    )
    if with_events:
        attach_events(agent, scanner, settings)
    return agent


def attach_events(agent: Agent, scanner: Scanner, settings: Settings) -> None:
    """Process events between scans (--[no-]events.enabled); polling only when off."""
    lifecycle = agent.lifecycle
    if lifecycle is None:
        return
    if not settings.events_enabled:
        log.info(
            "event_listener_disabled",
            effect="polling only: namespaces that live less than a scan interval are missed",
        )
        return
    try:
        reader = ProcessNamespaces(settings.procfs, scanner.types)
    except ProcError as err:
        log.warning("event_listener_unavailable", reason=str(err), effect="polling only")
        return
    agent.attach_listener(EventListener(lifecycle, reader, has_ns_id=scanner.has_ns_id))
