"""HTTP: a small WSGI app with a route table, served by a threading wsgiref server.

Handlers take a Request and return a Response; the app turns bad input into a 4xx with a
one-line reason. /metrics serves bytes rendered once per scan: a scrape does no /proc work.
"""

from __future__ import annotations

import html
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs

from ns_exporter import __version__, web_server
from ns_exporter.agent import Agent
from ns_exporter.config import ListenAddress, Settings
from ns_exporter.config_reload import ConfigReloader
from ns_exporter.logs import get_logger
from ns_exporter.model import NS_TYPES
from ns_exporter.web_server import HttpServer, Limits

log = get_logger(__name__)

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"
MAX_BODY = 64 * 1024
MAX_QUERY = 4096

_REASONS: dict[int, str] = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    414: "URI Too Long",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    remote: str = ""

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, message: str) -> Response:
        """A one-line plain-text answer."""
        return cls(status, (message.rstrip("\n") + "\n").encode())


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    methods: frozenset[str] = frozenset({"GET", "HEAD"})
    title: str = ""  # shown as a link on the landing page when set


class BadRequestError(Exception):
    """Raised by handlers for input they refuse; becomes a 400 with the message."""


@dataclass
class App:
    """The WSGI application: dispatches on path, enforces methods and input bounds."""

    routes: Mapping[str, Route]
    before: list[Callable[[Request], Response | None]] = field(default_factory=list)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        response = self._respond(environ)
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        start_response(f"{response.status} {_REASONS.get(response.status, '')}", headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [response.body]

    def _respond(self, environ: dict[str, Any]) -> Response:
        raw_query = environ.get("QUERY_STRING", "")
        if len(raw_query) > MAX_QUERY:
            return Response.text(414, f"query string longer than {MAX_QUERY} bytes")
        try:
            request = _request(environ, raw_query)
        except BadRequestError as err:
            return Response.text(400, str(err))
        for check in self.before:
            refused = check(request)
            if refused is not None:
                return refused
        route = self.routes.get(request.path)
        if route is None:
            return Response.text(404, f"no such path: {request.path[:200]}")
        if request.method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            return Response(
                405,
                f"method {request.method} not allowed (allowed: {allowed})\n".encode(),
                headers=(("Allow", allowed),),
            )
        try:
            return route.handler(request)
        except BadRequestError as err:
            return Response.text(400, str(err))
        except Exception:
            log.exception("request_failed", path=request.path)
            return Response.text(500, "internal error (see the exporter's log)")


def _request(environ: dict[str, Any], raw_query: str) -> Request:
    try:
        query = parse_qs(raw_query, keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except ValueError as err:
        raise BadRequestError(f"bad query string: {err}") from err
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    body = b""
    length_text = environ.get("CONTENT_LENGTH") or "0"
    try:
        length = int(length_text)
    except ValueError as err:
        raise BadRequestError(f"bad Content-Length {length_text!r}") from err
    if length > MAX_BODY:
        raise BadRequestError(f"request body larger than {MAX_BODY} bytes")
    if length > 0:
        body = environ["wsgi.input"].read(length)
    return Request(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", "/") or "/",
        query=MappingProxyType(query),
        headers=MappingProxyType(headers),
        body=body,
        remote=environ.get("REMOTE_ADDR", ""),
    )


# --- the exporter's own routes ----------------------------------------------------------------


def metrics_handler(agent: Agent) -> Handler:
    def handle(request: Request) -> Response:
        published = agent.published
        if published is None:
            return Response.text(503, "no scan has completed yet")
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                200,
                published.gzipped,
                EXPOSITION,
                (("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")),
            )
        return Response(200, published.body, EXPOSITION, (("Vary", "Accept-Encoding"),))

    return handle


def healthy_handler(_: Request) -> Response:
    return Response.text(200, "Healthy")


def ready_handler(agent: Agent) -> Handler:
    def handle(_: Request) -> Response:
        if agent.ready:
            return Response.text(200, "Ready")
        return Response.text(503, "not ready: the first scan has not completed")

    return handle


def reload_handler(reloader: ConfigReloader) -> Handler:
    """POST /-/reload: re-read the config file, as Prometheus does (500 with the reason)."""

    def handle(_: Request) -> Response:
        status = reloader.reload()
        if status.successful:
            return Response.text(200, "config reloaded")
        return Response.text(500, f"failed to reload config: {status.error}")

    return handle


_STYLE = "body{font-family:sans-serif;margin:2em}td,th{padding:0 1em;text-align:left}"


def landing_handler(agent: Agent, routes: Callable[[], Mapping[str, Route]]) -> Handler:
    def handle(_: Request) -> Response:
        links = "".join(
            f'<li><a href="{html.escape(path.lstrip("/") or ".")}">'
            f"{html.escape(route.title)}</a></li>"
            for path, route in routes().items()
            if route.title
        )
        published = agent.published
        if published is None:
            status = "<p>Waiting for the first scan.</p>"
        else:
            snap = published.state.snapshot
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap.stats.started))
            counts = snap.counts_by_type()
            rows = "".join(f"<tr><td>{t.value}</td><td>{counts[t]}</td></tr>" for t in NS_TYPES)
            status = (
                f"<p>Last scan: {when}, {snap.stats.duration * 1000:.1f} ms, "
                f"{snap.stats.processes_scanned} processes, "
                f"{len(snap.namespaces)} namespaces.</p>"
                f"<table><tr><th>type</th><th>namespaces</th></tr>{rows}</table>"
            )
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            "<link rel='icon' href='data:,'><title>ns_exporter</title>"
            f"<style>{_STYLE}</style>"
            f"</head><body><h1>ns_exporter</h1><p>Prometheus exporter for Linux namespaces, "
            f"version {html.escape(__version__)}.</p><ul>{links}</ul>{status}</body></html>"
        )
        return Response(200, page.encode(), HTML)

    return handle


def build_routes(agent: Agent, settings: Settings) -> dict[str, Route]:
    """The route table. Other features add their routes to the returned dict."""
    routes: dict[str, Route] = {}
    routes[settings.telemetry_path] = Route(metrics_handler(agent), title="Metrics")
    routes["/-/healthy"] = Route(healthy_handler, title="Health")
    routes["/-/ready"] = Route(ready_handler(agent), title="Readiness")
    routes["/"] = Route(landing_handler(agent, lambda: routes))
    return routes


# --- the server --------------------------------------------------------------------------------


def make_http_server(
    app: App,
    listen: ListenAddress,
    limits: Limits | None = None,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> HttpServer:
    """Bind the listen address (every interface for `:PORT`); see web_server for the limits."""
    return web_server.make_http_server(app, listen, limits, tls)
