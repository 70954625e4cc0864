"""The HTTP server against hostile clients: real sockets on loopback, an in-process server."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from ns_exporter.config import ListenAddress
from ns_exporter.web import App, Request, Response, Route
from ns_exporter.web_server import HttpServer, Limits, make_http_server
from tests.pki import Pki, make_pki

BIG = b"x" * (8 * 1024 * 1024)


def _ok(_: Request) -> Response:
    return Response.text(200, "ok")


def _big(_: Request) -> Response:
    return Response(200, BIG)


APP = App({"/": Route(_ok), "/big": Route(_big)})


@contextlib.contextmanager
def serving(
    limits: Limits | None = None, tls: Callable[[], ssl.SSLContext] | None = None
) -> Iterator[HttpServer]:
    server = make_http_server(APP, ListenAddress("127.0.0.1", 0), limits or Limits(), tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def port(server: HttpServer) -> int:
    return int(server.server_address[1])


def connect(server: HttpServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
    return sock


def exchange(server: HttpServer, raw: bytes) -> bytes:
    """Send raw bytes, return everything the server answers until it closes."""
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # dropped at once
            sock.sendall(raw)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status(answer: bytes) -> int:
    """The status code of a raw answer; 0 when the server closed without answering."""
    return int(answer.split(b" ", 2)[1]) if answer else 0


def wait_until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def get_status(server: HttpServer) -> int:
    return status(exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))


def test_serves_and_does_not_advertise_python() -> None:
    with serving() as server:
        answer = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status(answer) == 200
    assert body == b"ok\n"
    assert b"Python" not in head
    assert b"Server: ns_exporter/" in head


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /?" + b"q=1&" * 1100 + b" HTTP/1.1\r\n\r\n", 414),  # query beyond 4096 bytes
        (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 40000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-A: 12345678901234567890\r\n" * 1500 + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 150 + b"\r\n", 431),  # more than 100 headers
        (b"BREW / HTCPCP/1.0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n", 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40 + b"\r\n\r\n", 400),
    ],
)
def test_oversized_or_malformed_requests_are_refused(raw: bytes, expected: int) -> None:
    with serving() as server:
        assert status(exchange(server, raw)) == expected
        assert get_status(server) == 200


def test_a_client_that_stops_sending_is_cut_off() -> None:
    with serving(Limits(read_timeout=0.5)) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert read_all(sock) == b""  # the server closed without answering


def test_a_trickling_client_cannot_stretch_the_deadline() -> None:
    """One byte at a time, always within the socket timeout, still meets the overall deadline."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"z" * 400 + b"\r\n\r\n"
    sent = 0
    with serving(Limits(read_timeout=0.5)) as server, connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in request:
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.02)  # a pace, not an assertion: 400+ bytes take ~9 s
        answer = read_all(sock)
    assert sent < len(request)
    assert b" 200 " not in answer


def test_a_client_that_does_not_read_releases_its_slot() -> None:
    limits = Limits(max_requests=1, write_timeout=0.5, overload_timeout=2.0)
    with serving(limits) as server, connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # 8 MiB it never reads
        wait_until("the slot to be released", lambda: get_status(server) == 200)


def test_over_the_limit_gets_503_and_the_server_recovers() -> None:
    limits = Limits(max_requests=2, read_timeout=60.0, overload_timeout=60.0)
    with serving(limits) as server:
        idle: list[socket.socket] = []
        try:
            for _ in range(2):  # fill every serving slot with a request that never completes
                idle.append(connect(server))
                idle[-1].sendall(b"GET / HTTP/1.1\r\n")
            wait_until("a 503", lambda: get_status(server) == 503)
            answer = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status(answer) == 503
            assert b"too many concurrent requests (limit 2)" in answer

            def dropped() -> bool:
                """Past both pools a connection is closed at once, without an answer."""
                answer = exchange(server, b"GET / HTTP/1.0\r\n\r\n")
                if not answer:
                    return True
                assert status(answer) == 503
                # not yet: hold one more slot of the pool that answers 503
                idle.append(connect(server))
                idle[-1].sendall(b"GET / HTTP/1.1\r\n")
                return False

            wait_until("a dropped connection", dropped)
        finally:
            for sock in idle:
                sock.close()
        wait_until("recovery", lambda: get_status(server) == 200)
        assert [get_status(server) for _ in range(5)] == [200] * 5


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki: Pki, client_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if client_ca is not None:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def test_tls_handshake_runs_in_the_connection_thread(pki: Pki) -> None:
    context = server_context(pki)
    with serving(Limits(read_timeout=30.0), tls=lambda: context) as server:
        url = f"https://127.0.0.1:{port(server)}/"
        with connect(server), connect(server):  # connected, never say hello
            response = requests.get(url, verify=str(pki.ca), timeout=10)
        assert response.status_code == 200
        assert response.text == "ok\n"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, verify=str(pki.rogue_ca), timeout=10)
        assert requests.get(url, verify=str(pki.ca), timeout=10).status_code == 200


def test_a_silent_tls_client_is_cut_off(pki: Pki) -> None:
    context = server_context(pki)
    with serving(Limits(read_timeout=0.5), tls=lambda: context) as server, connect(server) as sock:
        assert read_all(sock) == b""


def test_mutual_tls(pki: Pki) -> None:
    context = server_context(pki, client_ca=pki.ca)
    with serving(tls=lambda: context) as server:
        url = f"https://127.0.0.1:{port(server)}/"
        ok = requests.get(
            url, verify=str(pki.ca), cert=(str(pki.client_cert), str(pki.client_key)), timeout=10
        )
        assert ok.status_code == 200
        for cert in (None, (str(pki.rogue_client_cert), str(pki.rogue_client_key))):
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(url, verify=str(pki.ca), cert=cert, timeout=10)
