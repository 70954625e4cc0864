"""/probe in the exporter's route table, and the probe parts `serve` starts and stops."""

from __future__ import annotations

from dataclasses import dataclass

from ns_exporter.logs import get_logger
from ns_exporter.probe.handler import ProbeEndpoint
from ns_exporter.probe.periodic import PeriodicProber
from ns_exporter.probe.runner import ProbeHelperError, ProbeRunner
from ns_exporter.probe.settings import ProbeSettings
from ns_exporter.web import Request, Response, Route

log = get_logger(__name__)

PROBE_PATH = "/probe"


def probe_route(endpoint: ProbeEndpoint) -> Route:
    def handle(request: Request) -> Response:
        answer = endpoint(request.query, request.headers)
        return Response(answer.status, answer.body, answer.content_type, answer.headers)

    return Route(handle, title="Isolation probe (module=pid)")


@dataclass(slots=True)
class ProbeService:
    """The fork server, the /probe endpoint and the optional periodic prober."""

    runner: ProbeRunner
    endpoint: ProbeEndpoint
    periodic: PeriodicProber | None

    @classmethod
    def build(cls, settings: ProbeSettings) -> ProbeService:
        runner = ProbeRunner()
        periodic = None
        if settings.periodic_interval is not None:
            periodic = PeriodicProber(
                runner.run,
                settings.periodic_modules,
                settings.periodic_interval,
                settings.timeout_for,
            )
        return cls(runner, ProbeEndpoint(runner.run, settings), periodic)

    def start(self) -> None:
        """Start the fork server now (from the main thread) and the periodic prober."""
        try:
            self.runner.start()
        except ProbeHelperError as err:
            log.error("probe_helper_unavailable", error=str(err), effect="retried per probe")
        if self.periodic is not None:
            self.periodic.start()

    def stop(self) -> None:
        if self.periodic is not None:
            self.periodic.stop()
        self.runner.close()
