"""`ns-exporter serve` (the default): the agent loop and the HTTP server."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from ns_exporter import explorer, web, wiring
from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_reload import ConfigReloader
from ns_exporter.logs import get_logger
from ns_exporter.probe.route import PROBE_PATH, ProbeService, probe_route
from ns_exporter.probe.settings import probe_settings_of
from ns_exporter.web_auth import BasicAuth
from ns_exporter.web_config import TlsContextSource, WebConfig, load_web_config
from ns_exporter.web_server import Limits

log = get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """serve takes only the common flags."""


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        reloader = ConfigReloader(settings.config_file)
        web_config = (
            load_web_config(settings.web_config_file) if settings.web_config_file else WebConfig()
        )
        tls = TlsContextSource(web_config.tls, web_config.path) if web_config.tls else None
    except ConfigError as err:
        log.error("config_invalid", file=err.file, key=err.key, reason=err.reason)
        return 2
    wiring.warn_if_unprivileged()
    # The probe: section is read at start-up; a reload applies the expected: rules only.
    probe_settings = probe_settings_of(reloader.current.config)
    probes = ProbeService.build(probe_settings) if settings.probe_enabled else None
    extra = (probes.periodic,) if probes is not None and probes.periodic is not None else ()
    agent = wiring.build_agent(
        settings,
        with_process_metrics=True,
        extra_collectors=extra,
        config=reloader,
        with_events=True,
    )
    # A reload (good or bad) rescans at once, so the policy and its status show without delay.
    reloader.on_reload(lambda _status: agent.request_scan())
    routes = web.build_routes(agent, settings)
    routes.update(explorer.routes(agent))
    if probes is not None:
        routes[PROBE_PATH] = probe_route(probes.endpoint)
    routes["/-/reload"] = web.Route(
        web.reload_handler(reloader), methods=frozenset({"POST", "PUT"})
    )
    app = web.App(routes)
    if web_config.users:
        app.before.insert(0, BasicAuth(web_config.users))  # before any other check
    limits = Limits(max_requests=settings.max_requests, read_timeout=settings.read_timeout)
    try:
        server = web.make_http_server(app, settings.listen, limits, tls.current if tls else None)
    except OSError as err:
        log.error(
            "listen_failed",
            address=f"{settings.listen.host}:{settings.listen.port}",
            error=str(err),
        )
        return 1
    stop = threading.Event()

    def shutdown(name: str) -> None:
        log.info("stopping", signal=name)
        server.shutdown()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No logging here: the handler may interrupt the main thread inside the log lock.
        stop.set()
        name = signal.Signals(signum).name
        threading.Thread(target=shutdown, args=(name,), daemon=True).start()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        # No logging here: the handler may interrupt the main thread inside the log lock.
        reloader.reload_in_background()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    if probes is not None:
        probes.start()
    agent.start()
    host, port = server.server_address[:2]
    log.info(
        "listening",
        address=f"{settings.listen.host or '*'}:{port}",
        bound=str(host),
        procfs=settings.procfs,
        scan_interval=settings.scan_interval,
        tls=tls is not None,
        basic_auth=bool(web_config.users),
        max_requests=limits.max_requests,
    )
    server.serve_forever(poll_interval=0.5)
    agent.stop()
    if probes is not None:
        probes.stop()
    server.server_close()
    return 0
