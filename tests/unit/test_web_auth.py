"""Basic auth as an App hook: default-on for every path but the open ones."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import bcrypt
import pytest

from ns_exporter import web_auth
from ns_exporter.web import App, Request, Response, Route
from ns_exporter.web_auth import OPEN_PATHS, BasicAuth

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4))
HTPASSWD = b"$2y$" + HASH[4:]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def request(path: str = "/metrics", authorization: str | None = None) -> Request:
    headers = {} if authorization is None else {"authorization": authorization}
    return Request("GET", path, MappingProxyType({}), MappingProxyType(headers))


@pytest.fixture
def auth() -> BasicAuth:
    return BasicAuth({"alice": HASH, "bob": HTPASSWD, "zoë": HASH})


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer abc",
        basic("alice", "wrong"),
        basic("mallory", "s3cret"),
        basic("alice", ""),
        basic("alice", "s3cret" + "x" * 80),
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:s3cret").decode(),
        "Basic ëëë",
    ],
)
def test_refused_with_a_challenge(auth: BasicAuth, authorization: str | None) -> None:
    response = auth(request(authorization=authorization))
    assert response is not None
    assert response.status == 401
    assert dict(response.headers)["WWW-Authenticate"].startswith('Basic realm="ns_exporter"')


@pytest.mark.parametrize(
    "authorization",
    [
        basic("alice", "s3cret"),
        basic("bob", "s3cret"),  # an htpasswd $2y$ hash
        basic("zoë", "s3cret"),  # UTF-8 user names
        "basic " + base64.b64encode(b"alice:s3cret").decode(),  # scheme is case-insensitive
    ],
)
def test_accepted(auth: BasicAuth, authorization: str) -> None:
    assert auth(request(authorization=authorization)) is None


@pytest.mark.parametrize("path", sorted(OPEN_PATHS))
def test_open_paths_need_no_credentials(auth: BasicAuth, path: str) -> None:
    assert auth(request(path)) is None


@pytest.mark.parametrize("path", ["/", "/metrics", "/probe", "/api/namespaces", "/-/reload", "/x"])
def test_every_other_path_is_protected(auth: BasicAuth, path: str) -> None:
    refused = auth(request(path))
    assert refused is not None
    assert refused.status == 401


def test_success_is_cached_failure_is_not(auth: BasicAuth, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(web_auth.bcrypt, "checkpw", counting)
    for _ in range(3):
        assert auth(request(authorization=basic("alice", "s3cret"))) is None
    assert calls == [b"s3cret"]
    for _ in range(2):
        assert auth(request(authorization=basic("alice", "nope"))) is not None
    assert calls == [b"s3cret", b"nope", b"nope"]
    # a cached success for one user is not a pass for another user with the same password
    assert auth(request(authorization=basic("bob", "s3cret"))) is None
    assert len(calls) == 4


def test_unknown_users_still_cost_a_bcrypt_check(
    auth: BasicAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes: list[bytes] = []
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        hashes.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(web_auth.bcrypt, "checkpw", spy)
    assert auth(request(authorization=basic("mallory", "s3cret"))) is not None
    assert len(hashes) == 1
    assert hashes[0] not in (HASH, HTPASSWD)  # compared against the dummy hash
    # and the cache never lets the unknown user in, even with the dummy's password
    assert auth(request(authorization=basic("mallory", "not a password"))) is not None


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_auth, "CACHE_SIZE", 3)
    users = {f"u{i}": HASH for i in range(5)}
    auth = BasicAuth(users)
    for name in users:
        assert auth(request(authorization=basic(name, "s3cret"))) is None
    assert len(auth._cache) == 3


def test_app_runs_the_hook_before_routing() -> None:
    def ok(_: Request) -> Response:
        return Response.text(200, "ok")

    app = App({"/metrics": Route(ok), "/-/healthy": Route(ok)})
    app.before.append(BasicAuth({"alice": HASH}))

    def call(path: str, authorization: str | None = None) -> int:
        environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
        if authorization is not None:
            environ["HTTP_AUTHORIZATION"] = authorization
        statuses: list[str] = []
        app(environ, lambda status, _headers: statuses.append(status))
        return int(statuses[0].split()[0])

    assert call("/metrics") == 401
    assert call("/unknown") == 401  # no path enumeration without credentials
    assert call("/metrics", basic("alice", "s3cret")) == 200
    assert call("/unknown", basic("alice", "s3cret")) == 404
    assert call("/-/healthy") == 200


def test_password_checks_are_bounded_but_cached_successes_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(web_auth, "CONCURRENT_CHECKS", 1)
    monkeypatch.setattr(web_auth, "CHECK_WAIT", 0.05)
    auth = BasicAuth({"alice": HASH, "bob": HASH})
    assert auth(request(authorization=basic("bob", "s3cret"))) is None  # bob is now cached

    entered, release = threading.Event(), threading.Event()
    real: Callable[[bytes, bytes], bool] = bcrypt.checkpw

    def slow(password: bytes, hashed: bytes) -> bool:
        entered.set()
        release.wait(30)
        return real(password, hashed)

    monkeypatch.setattr(web_auth.bcrypt, "checkpw", slow)
    results: list[Response | None] = []
    first = threading.Thread(
        target=lambda: results.append(auth(request(authorization=basic("alice", "s3cret"))))
    )
    first.start()
    try:
        assert entered.wait(30)
        busy = auth(request(authorization=basic("alice", "guess")))
        assert busy is not None
        assert busy.status == 429
        assert auth(request(authorization=basic("bob", "s3cret"))) is None  # from the cache
    finally:
        release.set()
        first.join(30)
    assert results == [None]
