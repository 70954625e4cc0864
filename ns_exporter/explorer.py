"""The namespace explorer: a static page (ns_exporter/static/) and the JSON it reads.

/api/namespaces returns the document of `ns-exporter list --json` for the latest scan;
/explorer renders it in the browser as a tree. The page loads nothing from elsewhere: its
Content-Security-Policy allows only the exporter's own script, style and API.
"""

from __future__ import annotations

import json
from importlib import resources

from ns_exporter import listing
from ns_exporter.agent import Agent
from ns_exporter.model import NsType
from ns_exporter.web import HTML, BadRequestError, Handler, Request, Response, Route

JSON = "application/json; charset=utf-8"
EXPLORER_PATH = "/explorer"
API_PATH = "/api/namespaces"

# file in ns_exporter/static → content type
STATIC_FILES: dict[str, str] = {
    "explorer.html": HTML,
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
)
_TYPES = ", ".join(t.value for t in NsType)


def static_file(name: str) -> bytes:
    return resources.files("ns_exporter").joinpath("static", name).read_bytes()


def static_handler(name: str) -> Handler:
    body = static_file(name)  # read once: a missing file fails at start-up, not per request
    content_type = STATIC_FILES[name]

    def handle(_: Request) -> Response:
        return Response(200, body, content_type, PAGE_HEADERS)

    return handle


def _type_filter(request: Request) -> NsType | None:
    value = request.param("type")
    if not value:
        return None
    try:
        return NsType(value)
    except ValueError:
        raise BadRequestError(f"unknown namespace type {value[:40]!r} (one of {_TYPES})") from None


def api_handler(agent: Agent) -> Handler:
    def handle(request: Request) -> Response:
        ns_type = _type_filter(request)
        published = agent.published
        if published is None:
            return Response.text(503, "no scan has completed yet")
        document = listing.to_json(published.state, ns_type)
        body = json.dumps(document, separators=(",", ":")).encode()
        return Response(
            200,
            body,
            JSON,
            (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")),
        )

    return handle


def routes(agent: Agent) -> dict[str, Route]:
    """The explorer's routes, to merge into the web route table."""
    table = {
        EXPLORER_PATH: Route(static_handler("explorer.html"), title="Namespace explorer"),
        API_PATH: Route(api_handler(agent), title="Namespaces (JSON)"),
    }
    for name in STATIC_FILES:
        if name != "explorer.html":
            table[f"/static/{name}"] = Route(static_handler(name))
    return table
