"""HTTP basic auth against bcrypt hashes, as an App `before` hook.

Protection is default-on: every path is checked except the explicit OPEN_PATHS, so routes
added later are protected without anyone having to remember it. A check always costs one
bcrypt comparison (an unknown user is compared against a dummy hash, so timing does not tell
which user names exist); a successful one is cached by a SHA-256 of user, password and hash,
so a scraper pays bcrypt once, not per scrape. Failures are never cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

import bcrypt

from ns_exporter.logs import get_logger
from ns_exporter.web import Request, Response

log = get_logger(__name__)

# Open without credentials: they reveal only that the process is up (healthy) and that the
# first scan has completed (ready), and orchestrators probe them without credentials.
OPEN_PATHS: frozenset[str] = frozenset({"/-/healthy", "/-/ready"})

MAX_PASSWORD_BYTES = 72  # bcrypt ignores (and the bcrypt package refuses) longer passwords
CACHE_SIZE = 256
# bcrypt is slow on purpose: bound how many run at once, so a flood of wrong passwords cannot
# take every CPU from the scans (cached successes do not wait for a slot).
CONCURRENT_CHECKS = max(1, (os.cpu_count() or 2) // 2)
CHECK_WAIT = 2.0  # seconds a request waits for a slot before 429


def _cost(hashed: bytes) -> int:
    return int(hashed.split(b"$")[2])


class BasicAuth:
    """Checks `Authorization: Basic` on every request outside the open paths."""

    def __init__(
        self,
        users: Mapping[str, bytes],
        open_paths: frozenset[str] = OPEN_PATHS,
        realm: str = "ns_exporter",
    ) -> None:
        self._users = dict(users)
        self._open = open_paths
        cost = max((_cost(h) for h in self._users.values()), default=10)
        self._dummy = bcrypt.hashpw(b"not a password", bcrypt.gensalt(cost))
        challenge = (("WWW-Authenticate", f'Basic realm="{realm}", charset="UTF-8"'),)
        self._refusal = Response(401, b"Unauthorized\n", headers=challenge)
        self._checks = threading.BoundedSemaphore(CONCURRENT_CHECKS)
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Response | None:
        if request.path in self._open:
            return None
        credentials = _credentials(request.headers.get("authorization", ""))
        if credentials is None:
            return self._refusal
        user, password = credentials
        stored = self._users.get(user)
        hashed = stored if stored is not None else self._dummy
        key = hashlib.sha256(b"\0".join((user.encode(), password, hashed))).digest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return None
        if not self._checks.acquire(timeout=CHECK_WAIT):
            log.warning("basic_auth_busy", concurrent_checks=CONCURRENT_CHECKS)
            return Response.text(429, "too many password checks at once; try again later")
        try:
            valid = self._check(user, password, hashed) and stored is not None
        finally:
            self._checks.release()
        if not valid:
            log.debug("basic_auth_failed", user=user[:64])
            return self._refusal
        with self._lock:
            self._cache[key] = None
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return None

    @staticmethod
    def _check(user: str, password: bytes, hashed: bytes) -> bool:
        try:
            return bcrypt.checkpw(password, hashed)  # constant-time comparison inside
        except ValueError as err:  # a hash the bcrypt library refuses
            log.error("basic_auth_bad_hash", user=user, error=str(err))
            return False


def _credentials(header: str) -> tuple[str, bytes] | None:
    """(user, password) from an `Authorization: Basic ...` value, or None if malformed."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep or len(password) > MAX_PASSWORD_BYTES:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None
