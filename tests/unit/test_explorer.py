"""The explorer's routes: the page and its files, /api/namespaces, the landing page link."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any

import pytest

from ns_exporter import explorer, listing
from ns_exporter.model import (
    NS_TYPES,
    Attribution,
    Holder,
    Namespace,
    NsKey,
    NsType,
    ScanStats,
    Snapshot,
)
from ns_exporter.state import ExporterTotals, State
from ns_exporter.web import App, Route, landing_handler

USER_ROOT = 4026531837


def _ns(ns_type: NsType, inode: int, **kw: Any) -> Namespace:
    fields: dict[str, Any] = {
        "processes": 1,
        "holder": Holder.PROCESS,
        "pid": 1,
        "command": "init",
        "owner_uid": 0,
        "owner": "root",
        "parent_inode": None,
        "userns_inode": USER_ROOT,
        "ns_id": None,
        "created": 1.7e9,
    }
    fields.update(kw)
    return Namespace(key=NsKey(ns_type, inode), **fields)


NAMESPACES = (
    _ns(NsType.USER, USER_ROOT, userns_inode=None),
    _ns(NsType.PID, 4026531836),
    _ns(NsType.PID, 4026532300, parent_inode=4026531836, pid=4242, command="sleep"),
    _ns(
        NsType.NET,
        4026532400,
        processes=0,
        holder=Holder.MOUNT,
        pid=None,
        command="",
        mountpoint="/run/netns/blue",
    ),
    _ns(
        NsType.NET,
        4026532401,
        command="<script>alert(1)</script>",
        attribution=Attribution("docker", "0123456789abcdef", "docker.service"),
    ),
)


def _state() -> State:
    snapshot = Snapshot(
        namespaces=MappingProxyType({ns.key: ns for ns in NAMESPACES}),
        limits=MappingProxyType(dict.fromkeys(NS_TYPES, 1000)),
        stats=ScanStats(started=1.8e9, duration=0.01, processes_scanned=3),
    )
    return State(
        snapshot=snapshot,
        totals=ExporterTotals(),
        unexpected=frozenset({NsKey(NsType.NET, 4026532401)}),
    )


@dataclass
class Published:
    state: State


@dataclass
class FakeAgent:
    """What the handlers read from the agent: the latest published state."""

    published: Published | None


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _get(app: App, path: str, query: str = "") -> Reply:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split(maxsplit=1)[0])
        captured["headers"] = dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(),
    }
    body = b"".join(app(environ, start_response))
    return Reply(captured["status"], captured["headers"], body)


def _app(agent: FakeAgent) -> App:
    routes: dict[str, Route] = {}
    routes["/"] = Route(landing_handler(agent, lambda: routes))  # type: ignore[arg-type]
    routes.update(explorer.routes(agent))  # type: ignore[arg-type]
    return App(routes)


@pytest.fixture
def app() -> App:
    return _app(FakeAgent(Published(_state())))


def test_api_returns_the_list_json_document(app: App) -> None:
    reply = _get(app, "/api/namespaces")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-store"
    assert json.loads(reply.body) == listing.to_json(_state())
    unexpected = [ns for ns in json.loads(reply.body)["namespaces"] if ns["unexpected"]]
    assert [ns["inode"] for ns in unexpected] == [4026532401]


def test_api_type_filter(app: App) -> None:
    reply = _get(app, "/api/namespaces", "type=net")
    assert {ns["ns_type"] for ns in json.loads(reply.body)["namespaces"]} == {"net"}
    assert json.loads(reply.body) == listing.to_json(_state(), NsType.NET)
    bad = _get(app, "/api/namespaces", "type=bogus")
    assert bad.status == 400
    assert bad.body.count(b"\n") == 1
    assert b"unknown namespace type 'bogus'" in bad.body


def test_api_before_the_first_scan() -> None:
    reply = _get(_app(FakeAgent(None)), "/api/namespaces")
    assert reply.status == 503


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/explorer", "text/html; charset=utf-8"),
        ("/static/explorer.js", "text/javascript; charset=utf-8"),
        ("/static/explorer.css", "text/css; charset=utf-8"),
    ],
)
def test_page_files_are_served_with_a_strict_policy(app: App, path: str, content_type: str) -> None:
    reply = _get(app, path)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == content_type
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.body


class _Refs(HTMLParser):
    """Every URL an HTML document refers to, and its inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        for name, value in attrs:
            if name in ("src", "href", "action") and value is not None:
                self.urls.append(value)
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}")

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(data)


def test_page_loads_nothing_from_elsewhere(app: App) -> None:
    refs = _Refs()
    refs.feed(_get(app, "/explorer").body.decode())
    assert refs.urls
    for url in refs.urls:
        local = not re.match(r"^[a-z][a-z0-9+.-]*:|^//", url) or url == "data:,"
        assert local, f"external reference {url!r}"
    # The Content-Security-Policy allows no inline code or style.
    assert refs.inline == []
    script = _get(app, "/static/explorer.js").body.decode()
    style = _get(app, "/static/explorer.css").body.decode()
    assert not re.search(r"https?://|//[a-z]", script + style)
    assert "@import" not in style
    assert "url(" not in style
    # Data from the exporter is never parsed as HTML.
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script


def test_every_static_file_is_routed(app: App) -> None:
    for name in explorer.STATIC_FILES:
        path = explorer.EXPLORER_PATH if name == "explorer.html" else f"/static/{name}"
        assert _get(app, path).body == explorer.static_file(name)


def test_landing_page_links_to_the_explorer(app: App) -> None:
    page = _get(app, "/").body.decode()
    assert '<a href="explorer">Namespace explorer</a>' in page
    assert '<a href="api/namespaces">' in page
