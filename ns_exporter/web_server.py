"""The HTTP server: a threading wsgiref server hardened for hostile clients.

- One request per connection (HTTP/1.0-style close), one thread per connection, at most
  `max_requests` of them; beyond that a second, equally sized pool only answers 503, and past
  both a connection is closed at once. The accept loop never does I/O on a connection.
- TLS: the listening socket hands out plain sockets; the handshake happens in the connection's
  thread (a slow handshake cannot stall the accept loop) under the read deadline.
- Bounded input: request line, request head and (in the App) query string and body; one
  deadline for everything the client sends (handshake, head, body) and one for sending the
  response, so a slow or idle client cannot hold a thread for longer than those.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from ns_exporter import __version__
from ns_exporter.config import ListenAddress
from ns_exporter.logs import get_logger

log = get_logger(__name__)

_RECV = 16 * 1024  # requests are small: a head is at most Limits.request_head
_SEND = 64 * 1024
SERVER_NAME = f"ns_exporter/{__version__}"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may take from the server."""

    max_requests: int = 40  # connections served at once (each carries one request)
    request_line: int = 8 * 1024  # bytes: method, target and version
    request_head: int = 32 * 1024  # bytes: request line plus all header lines
    read_timeout: float = 10.0  # seconds for TLS handshake, request head and body together
    write_timeout: float = 30.0  # seconds to send the response
    overload_timeout: float = 2.0  # seconds an over-limit connection gets to receive its 503


class _DeadlineReader:
    """Buffered reads from a socket that stop at a deadline and count the request head.

    Every recv gets the time left as its timeout, so the total is bounded whatever the pace of
    the client. Until `end_head()`, bytes handed out count against the head budget; beyond it
    readline raises http.client.LineTooLong (which parse_request answers with 431).
    """

    def __init__(self, sock: socket.socket, deadline: float, head_budget: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buf = bytearray()
        self._eof = False
        self._head_left: int | None = head_budget

    def end_head(self) -> None:
        self._head_left = None

    def _fill(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("client did not send its request in time")
        self._sock.settimeout(remaining)
        chunk = self._sock.recv(_RECV)
        if chunk:
            self._buf += chunk
        else:
            self._eof = True

    def _take(self, size: int) -> bytes:
        data = bytes(self._buf[:size])
        del self._buf[:size]
        if self._head_left is not None:
            self._head_left -= len(data)
            if self._head_left < 0:
                raise http.client.LineTooLong("request head")
        return data

    def readline(self, limit: int | None = -1) -> bytes:
        bound = -1 if limit is None else limit
        while True:
            newline = self._buf.find(b"\n")
            if newline >= 0:
                size = newline + 1
            elif self._eof or 0 <= bound <= len(self._buf):
                size = len(self._buf)
            else:
                self._fill()
                continue
            return self._take(size if bound < 0 else min(size, bound))

    def read(self, size: int | None = -1) -> bytes:
        wanted = -1 if size is None else size
        while not self._eof and (wanted < 0 or len(self._buf) < wanted):
            self._fill()
        return self._take(len(self._buf) if wanted < 0 else min(wanted, len(self._buf)))

    def close(self) -> None:
        self._buf.clear()


class _DeadlineWriter:
    """Sends with one deadline for the whole response, starting at its first byte."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self._sock = sock
        self._timeout = timeout
        self._deadline: float | None = None

    def write(self, data: bytes) -> int:
        if self._deadline is None:
            self._deadline = time.monotonic() + self._timeout
        view = memoryview(data)
        while view:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("client did not take the response in time")
            self._sock.settimeout(remaining)
            sent = self._sock.send(view[:_SEND])
            view = view[sent:]
        return len(data)

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """The server closes the socket."""


class _ServerHandler(ServerHandler):
    server_software = SERVER_NAME

    def log_exception(self, exc_info: Any) -> None:
        # The App answers every failure itself; what reaches here is the client going away
        # or a write timing out, which is the client's problem, not the exporter's.
        log.debug("http_response_failed", error=repr(exc_info[1]))


class RequestHandler(WSGIRequestHandler):
    """One connection, one request; bounded and timed as the server's Limits say."""

    server: HttpServer
    server_version = SERVER_NAME
    sys_version = ""
    overloaded = False  # answer 503 without running the app
    rfile: Any
    wfile: Any

    def setup(self) -> None:
        limits = self.server.limits
        self.connection = self.request
        self.rfile = _DeadlineReader(
            self.connection, self.server.read_deadline(), limits.request_head
        )
        self.wfile = _DeadlineWriter(
            self.connection, limits.overload_timeout if self.overloaded else limits.write_timeout
        )

    def finish(self) -> None:
        """The server closes the connection."""

    def handle(self) -> None:
        try:
            self._handle()
        except TimeoutError as err:
            log.debug("http_client_timeout", client=self.client_address[0], error=str(err))
        except (ConnectionError, ssl.SSLError) as err:
            log.debug("http_client_gone", client=self.client_address[0], error=str(err))

    def _handle(self) -> None:
        limit = self.server.limits.request_line
        self.raw_requestline = self.rfile.readline(limit + 1)
        if not self.raw_requestline:
            return
        if len(self.raw_requestline) > limit:
            self.requestline = self.request_version = self.command = ""
            self._plain(HTTPStatus.REQUEST_URI_TOO_LONG, f"request line longer than {limit} bytes")
            return
        if not self.parse_request():  # answered 400/431/505 itself
            return
        self.rfile.end_head()
        if self.overloaded:
            self._plain(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many concurrent requests (limit {self.server.limits.max_requests})",
            )
            return
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        app = self.server.get_app()
        if app is not None:
            handler.run(app)

    def _plain(self, status: HTTPStatus, message: str) -> None:
        body = (message + "\n").encode()
        head = (
            f"HTTP/1.0 {status.value} {status.phrase}\r\n"
            f"Server: {SERVER_NAME}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.wfile.write(head.encode("latin-1") + body)
        self.log_request(status.value, len(body))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """parse_request's answers (400, 431, 505) as one line of plain text."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._plain(status, message or status.phrase)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("http_request", client=self.address_string(), line=format % args)


class _DropLog:
    """Warns about dropped connections at most once per `every` seconds, with a count: a flood
    must not turn into a flood of log lines."""

    def __init__(self, every: float = 10.0) -> None:
        self._every = every
        self._lock = threading.Lock()
        self._count = 0
        self._last = -every

    def note(self, client: str, reason: str) -> None:
        with self._lock:
            self._count += 1
            now = time.monotonic()
            if now - self._last < self._every:
                return
            count, self._count, self._last = self._count, 0, now
        log.warning("http_connections_dropped", count=count, last_client=client, reason=reason)


class _Slots:
    """The two connection pools: serving, and answering 503."""

    def __init__(self, size: int) -> None:
        self.serving = threading.BoundedSemaphore(size)
        self.overloaded = threading.BoundedSemaphore(size)


class HttpServer(ThreadingMixIn, WSGIServer):
    """Threading WSGI server with TLS, a bound on concurrent connections and deadlines."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    limits: Limits = Limits()
    tls: Callable[[], ssl.SSLContext] | None = None
    _slots: _Slots
    _local: threading.local
    _dropped: _DropLog

    def configure(self, limits: Limits, tls: Callable[[], ssl.SSLContext] | None) -> None:
        self.limits = limits
        self.tls = tls
        self._slots = _Slots(limits.max_requests)
        self._local = threading.local()
        self._dropped = _DropLog()

    def read_deadline(self) -> float:
        """When the current connection's client must have sent its request (this thread's)."""
        deadline: float = self._local.deadline
        return deadline

    def process_request(self, request: Any, client_address: Any) -> None:
        """In the accept loop: pick a pool and hand the connection to a thread, no I/O."""
        if self._slots.serving.acquire(blocking=False):
            pool, handler = self._slots.serving, self.RequestHandlerClass
        elif self._slots.overloaded.acquire(blocking=False):
            pool, handler = self._slots.overloaded, _OverloadedHandler
            log.debug("http_overloaded", client=client_address[0])
        else:
            self._dropped.note(client_address[0], "overloaded")
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self._serve,
            args=(request, client_address, pool, handler),
            name="ns-http",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError as err:  # cannot start a thread: the host is out of resources
            pool.release()
            self._dropped.note(client_address[0], str(err))
            self.shutdown_request(request)

    def _serve(
        self,
        request: socket.socket,
        client_address: Any,
        pool: threading.BoundedSemaphore,
        handler: type[RequestHandler],
    ) -> None:
        connection: socket.socket = request
        try:
            timeout = (
                self.limits.overload_timeout if handler.overloaded else self.limits.read_timeout
            )
            deadline = time.monotonic() + timeout
            self._local.deadline = deadline
            if self.tls is not None:
                try:
                    connection = self._handshake(request, deadline)
                except OSError as err:  # ssl.SSLError, a timeout, a reset: the client's problem
                    log.debug("tls_handshake_failed", client=client_address[0], error=str(err))
                    return
            handler(connection, client_address, self)
        except OSError as err:  # the handler catches the expected ones; a rare late reset
            log.debug("http_connection_error", client=client_address[0], error=str(err))
        except Exception:
            log.exception("http_connection_failed", client=client_address[0])
        finally:
            pool.release()  # before the close: a client that saw its answer end finds it free
            self.shutdown_request(connection)

    def _handshake(self, request: socket.socket, deadline: float) -> socket.socket:
        assert self.tls is not None
        connection = self.tls().wrap_socket(
            request, server_side=True, do_handshake_on_connect=False
        )
        connection.settimeout(max(deadline - time.monotonic(), 0.001))
        connection.do_handshake()
        return connection

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("http_connection_failed", client=client_address[0])


class _OverloadedHandler(RequestHandler):
    overloaded = True


class _DualStackServer(HttpServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _IPv6Server(HttpServer):
    address_family = socket.AF_INET6


def make_http_server(
    app: Callable[..., Any],
    listen: ListenAddress,
    limits: Limits | None = None,
    tls: Callable[[], ssl.SSLContext] | None = None,
) -> HttpServer:
    """Bind the listen address: every interface (IPv6 and IPv4) for `:PORT`.

    `tls` returns the SSLContext to use for a new connection (certificates may be reloaded).
    """
    server = _bind(listen)
    server.set_app(app)
    server.configure(limits or Limits(), tls)
    return server


def _bind(listen: ListenAddress) -> HttpServer:
    if not listen.host:
        if socket.has_ipv6:
            try:
                return _DualStackServer(("::", listen.port), RequestHandler)
            except OSError as err:
                log.debug("ipv6_unavailable", error=str(err))
        return HttpServer(("0.0.0.0", listen.port), RequestHandler)
    server_class = _IPv6Server if ":" in listen.host else HttpServer
    return server_class((listen.host, listen.port), RequestHandler)
