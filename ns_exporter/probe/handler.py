"""/probe?module=NAME[&debug=true]: one probe per request, blackbox_exporter style.

Only a fixed list of modules and two parameters are accepted (no command, no target). The
timeout is the scrape's (X-Prometheus-Scrape-Timeout-Seconds, minus a small offset so the
answer arrives in time), capped by the module's. The gate bounds concurrency (503) and rate
(429). `debug=true` answers with the probe's log lines, the metrics and the module settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ns_exporter.probe.gate import ProbeGate
from ns_exporter.probe.metrics import render_probe
from ns_exporter.probe.modules import DEFAULT_MODULE, MODULE_NAMES, MODULES
from ns_exporter.probe.result import ProbeResult
from ns_exporter.probe.settings import ProbeSettings

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
TIMEOUT_HEADER = "x-prometheus-scrape-timeout-seconds"
TIMEOUT_OFFSET = 0.5  # seconds kept back from the scrape timeout (as blackbox_exporter)
MIN_TIMEOUT = 0.1
PARAMETERS = ("module", "debug")
_BOOLEANS = {"": False, "false": False, "0": False, "true": True, "1": True}

RunProbe = Callable[[str, float], ProbeResult]


@dataclass(frozen=True, slots=True)
class ProbeResponse:
    """What the web layer sends: status, content type, extra headers, body."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _refuse(status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> ProbeResponse:
    return ProbeResponse(status, TEXT, (reason + "\n").encode(), headers)


class BadProbeRequestError(ValueError):
    """Input the endpoint refuses with a 400 and this one-line message."""


def _single(query: Mapping[str, Sequence[str]], name: str, default: str) -> str:
    values = query.get(name, ())
    if len(values) > 1:
        raise BadProbeRequestError(f"parameter {name!r} given {len(values)} times")
    return values[0] if values else default


def probe_timeout(headers: Mapping[str, str], module_cap: float) -> float:
    """The scrape's timeout minus the offset, capped by the module's; the cap without one."""
    raw = next((v for k, v in headers.items() if k.lower() == TIMEOUT_HEADER), None)
    if raw is None:
        return module_cap
    try:
        scrape = float(raw)
    except ValueError:
        raise BadProbeRequestError(
            f"bad X-Prometheus-Scrape-Timeout-Seconds {raw[:40]!r}"
        ) from None
    if not math.isfinite(scrape) or scrape <= 0:
        raise BadProbeRequestError(f"bad X-Prometheus-Scrape-Timeout-Seconds {raw[:40]!r}")
    usable = scrape - TIMEOUT_OFFSET if scrape > TIMEOUT_OFFSET + MIN_TIMEOUT else scrape
    return max(MIN_TIMEOUT, min(module_cap, usable))


def debug_body(result: ProbeResult, metrics: bytes, module: str, timeout: float) -> bytes:
    spec = MODULES[module]
    lines = [
        "Logs for the probe:",
        *result.log,
        "",
        "",
        "",
        "Metrics that would have been returned:",
        metrics.decode().rstrip("\n"),
        "",
        "",
        "",
        "Module configuration:",
        f"module: {module}",
        f"namespace: {spec.link}",
        f"timeout_seconds: {timeout:g}",
        f"checks: {', '.join(spec.checks)}",
        f"summary: {spec.summary}",
    ]
    return ("\n".join(lines) + "\n").encode()


class ProbeEndpoint:
    """Callable with (query, headers) → ProbeResponse; holds the gate and the settings."""

    def __init__(
        self, run: RunProbe, settings: ProbeSettings, gate: ProbeGate | None = None
    ) -> None:
        self._run = run
        self._settings = settings
        self._gate = gate or ProbeGate(settings.max_concurrent, settings.max_per_second)

    @property
    def gate(self) -> ProbeGate:
        return self._gate

    def __call__(
        self, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> ProbeResponse:
        try:
            module, debug, timeout = self._parse(query, headers)
        except BadProbeRequestError as err:
            return _refuse(400, str(err))
        admission = self._gate.try_enter()
        if not admission.admitted:
            return _refuse(
                admission.status, admission.reason, (("Retry-After", str(admission.retry_after)),)
            )
        try:
            result = self._run(module, timeout)
        finally:
            self._gate.leave()
        metrics = render_probe(result)
        if debug:
            return ProbeResponse(200, TEXT, debug_body(result, metrics, module, timeout))
        return ProbeResponse(200, EXPOSITION, metrics)

    def _parse(
        self, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> tuple[str, bool, float]:
        for name in query:
            if name not in PARAMETERS:
                raise BadProbeRequestError(
                    f"unknown parameter {name[:40]!r} (accepted: {', '.join(PARAMETERS)})"
                )
        module = _single(query, "module", DEFAULT_MODULE)
        if module not in MODULES:
            raise BadProbeRequestError(
                f"unknown module {module[:40]!r} (modules: {', '.join(MODULE_NAMES)})"
            )
        if module not in self._settings.enabled_modules:
            raise BadProbeRequestError(f"module {module!r} is disabled in the configuration")
        debug_text = _single(query, "debug", "").lower()
        if debug_text not in _BOOLEANS:
            raise BadProbeRequestError(f"bad debug value {debug_text[:20]!r} (use true or false)")
        timeout = probe_timeout(headers, self._settings.timeout_for(module))
        return module, _BOOLEANS[debug_text], timeout
