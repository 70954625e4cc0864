"""--web.config.file: the exporter-toolkit web-config.yml format (TLS and basic auth).

    tls_server_config:
      cert_file: server.crt              # paths relative to this file's directory
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # mTLS; default NoClientCert
      client_ca_file: clients-ca.crt
      min_version: TLS12                 # TLS10 TLS11 TLS12 (default) TLS13
      max_version: TLS13
    basic_auth_users:
      prometheus: $2y$10$...             # bcrypt hash (htpasswd -nBC 10 prometheus)

Everything is validated before anything listens: an unknown or unsupported key, a bad hash,
an unreadable certificate or key is a ConfigError naming the file, the key and the reason.
The certificate files themselves are reloaded when they change (rotation needs no restart).
"""

from __future__ import annotations

import difflib
import enum
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ns_exporter.config_error import ConfigError
from ns_exporter.logs import get_logger
from ns_exporter.yaml_load import expect_string, load_yaml, type_name

log = get_logger(__name__)

MAX_FILE_BYTES = 1024 * 1024


class ClientAuth(enum.StrEnum):
    """client_auth_type values (Go's tls.ClientAuthType names) that Python's ssl can honour."""

    NO_CLIENT_CERT = "NoClientCert"
    VERIFY_CLIENT_CERT_IF_GIVEN = "VerifyClientCertIfGiven"
    REQUIRE_AND_VERIFY_CLIENT_CERT = "RequireAndVerifyClientCert"


_VERIFY_MODES: dict[ClientAuth, ssl.VerifyMode] = {
    ClientAuth.NO_CLIENT_CERT: ssl.CERT_NONE,
    ClientAuth.VERIFY_CLIENT_CERT_IF_GIVEN: ssl.CERT_OPTIONAL,
    ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT: ssl.CERT_REQUIRED,
}

# Go accepts client certificates it does not verify; Python's ssl always verifies what it gets.
_UNVERIFIED_CLIENT_AUTH: dict[str, str] = {
    "RequestClientCert": "VerifyClientCertIfGiven",
    "RequireAnyClientCert": "RequireAndVerifyClientCert",
}

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}

# exporter-toolkit keys this exporter does not implement, with what to do instead.
_UNSUPPORTED: dict[str, str] = {
    "tls_server_config.cert": "inline certificates are not supported; use cert_file",
    "tls_server_config.key": "inline keys are not supported; use key_file",
    "tls_server_config.client_ca": "inline CAs are not supported; use client_ca_file",
    "tls_server_config.cipher_suites": "not supported; OpenSSL's default suites are used",
    "tls_server_config.curve_preferences": "not supported; OpenSSL's default curves are used",
    "tls_server_config.client_allowed_sans": "not supported; use a dedicated client CA instead",
    "http_server_config": "not supported (HTTP/1.1 only, no custom headers); remove it",
    "rate_limit": "not supported; --web.max-requests bounds concurrent requests",
}

# A bcrypt hash in modular crypt format: $2a$/$2b$/$2y$, cost 04..31, 22 salt + 31 hash chars.
_BCRYPT = re.compile(r"^\$2[abxy]?\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """A validated tls_server_config (absolute paths)."""

    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = ClientAuth.NO_CLIENT_CERT
    client_ca_file: str = ""
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    prefer_server_cipher_suites: bool = True


def _no_users() -> Mapping[str, bytes]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class WebConfig:
    """A validated web config; the default (no file) serves plain HTTP without auth."""

    path: str = ""
    tls: TlsConfig | None = None
    users: Mapping[str, bytes] = field(default_factory=_no_users)  # user → bcrypt hash


# --- field parsers: (raw value, file, key, base directory) → typed value ----------------------


def _path(value: object, file: str, key: str, base: str) -> str:
    text = expect_string(value, file, key)
    if not text:
        return ""
    if "\0" in text:
        raise ConfigError(file, key, "must not contain a NUL byte")
    return os.path.normpath(os.path.join(base, text))


def _client_auth(value: object, file: str, key: str, _base: str) -> ClientAuth:
    text = expect_string(value, file, key)
    if text in _UNVERIFIED_CLIENT_AUTH:
        raise ConfigError(
            file,
            key,
            f"{text} (accepting unverified client certificates) is not supported; "
            f"use {_UNVERIFIED_CLIENT_AUTH[text]} with client_ca_file",
        )
    try:
        return ClientAuth(text)
    except ValueError:
        known = ", ".join(a.value for a in ClientAuth)
        raise ConfigError(file, key, f"unknown client_auth_type {text!r}; one of {known}") from None


def _tls_version(value: object, file: str, key: str, _base: str) -> ssl.TLSVersion:
    text = expect_string(value, file, key)
    if text not in TLS_VERSIONS:
        raise ConfigError(
            file, key, f"unknown TLS version {text!r}; one of {', '.join(TLS_VERSIONS)}"
        )
    return TLS_VERSIONS[text]


def _boolean(value: object, file: str, key: str, _base: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(file, key, f"must be true or false, got {type_name(value)}")
    return value


_TLS_FIELDS: dict[str, Callable[[object, str, str, str], object]] = {
    "cert_file": _path,
    "key_file": _path,
    "client_auth_type": _client_auth,
    "client_ca_file": _path,
    "min_version": _tls_version,
    "max_version": _tls_version,
    "prefer_server_cipher_suites": _boolean,
}


def _unknown_key(file: str, key: str, name: str, known: Iterable[str]) -> ConfigError:
    reason = _UNSUPPORTED.get(key)
    if reason is not None:
        return ConfigError(file, key, reason)
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(known)}"
    return ConfigError(file, key, f"unknown key ({hint})")


def _mapping(value: object, file: str, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"must be a mapping, got {type_name(value)}")
    for name in value:
        if not isinstance(name, str):
            raise ConfigError(file, key, f"keys must be strings, got {type_name(name)}")
    return value


def parse_tls(value: object, file: str, base: str) -> TlsConfig | None:
    """tls_server_config; None when it names no certificate (plain HTTP, as exporter-toolkit)."""
    raw = _mapping(value, file, "tls_server_config")
    for name in raw:
        if name not in _TLS_FIELDS:
            raise _unknown_key(file, f"tls_server_config.{name}", name, _TLS_FIELDS)
    values = {
        name: parse(raw[name], file, f"tls_server_config.{name}", base)
        for name, parse in _TLS_FIELDS.items()
        if name in raw and raw[name] is not None
    }
    if not any(values.get(name) for name in ("cert_file", "key_file", "client_ca_file")):
        if "client_auth_type" in values or "min_version" in values:
            raise ConfigError(file, "tls_server_config.cert_file", "missing: TLS needs cert_file")
        return None
    for name in ("cert_file", "key_file"):
        if not values.get(name):
            raise ConfigError(file, f"tls_server_config.{name}", "missing: TLS needs both")
    tls = TlsConfig(**values)  # type: ignore[arg-type]
    verifies = tls.client_auth_type is not ClientAuth.NO_CLIENT_CERT
    if verifies and not tls.client_ca_file:
        raise ConfigError(
            file,
            "tls_server_config.client_ca_file",
            f"missing: client_auth_type {tls.client_auth_type.value} needs a client CA",
        )
    if tls.client_ca_file and not verifies:
        raise ConfigError(
            file,
            "tls_server_config.client_auth_type",
            "client_ca_file is set but client_auth_type is NoClientCert; "
            "set VerifyClientCertIfGiven or RequireAndVerifyClientCert",
        )
    if tls.max_version is not None and tls.max_version < tls.min_version:
        raise ConfigError(file, "tls_server_config.max_version", "is lower than min_version")
    return tls


def parse_users(value: object, file: str) -> Mapping[str, bytes]:
    """basic_auth_users: user name → bcrypt hash (`$2y$` from htpasswd is accepted)."""
    raw = _mapping(value, file, "basic_auth_users")
    users: dict[str, bytes] = {}
    for name, hashed in raw.items():
        key = f"basic_auth_users.{name}"
        if not name:
            raise ConfigError(file, "basic_auth_users", "a user name must not be empty")
        if ":" in name:
            raise ConfigError(
                file, key, "a user name must not contain ':' (basic auth splits there)"
            )
        text = expect_string(hashed, file, key)
        if not _BCRYPT.match(text):
            raise ConfigError(
                file,
                key,
                "not a bcrypt hash (expected $2y$/$2b$ and 53 characters, "
                "e.g. from `htpasswd -nBC 10 USER`); plain-text passwords are refused",
            )
        users[name] = text.encode("ascii")
    return MappingProxyType(users)


_SECTIONS = ("tls_server_config", "basic_auth_users")


def parse_web_config(text: str, file: str) -> WebConfig:
    """Validate the text of a web config; relative paths are taken from `file`'s directory."""
    data = load_yaml(text, file)
    if data is None:
        return WebConfig(path=file)
    if not isinstance(data, dict):
        raise ConfigError(file, "(top level)", f"must be a mapping, got {type_name(data)}")
    for key in data:
        if key not in _SECTIONS:
            raise _unknown_key(file, str(key), str(key), _SECTIONS)
    base = os.path.dirname(os.path.abspath(file))
    config = WebConfig(
        path=file,
        tls=parse_tls(data.get("tls_server_config"), file, base),
        users=parse_users(data.get("basic_auth_users"), file),
    )
    if config.tls is not None:
        build_context(config.tls, file)  # unreadable or mismatched files fail now, not later
    return config


def load_web_config(path: str) -> WebConfig:
    """Read and validate a web config file; ConfigError (file, key, reason) if it is bad."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(path, "open", err.strerror or str(err)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(path, "size", f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(path, "encoding", f"not UTF-8 text ({err.reason})") from None
    return parse_web_config(text, path)


# --- TLS --------------------------------------------------------------------------------------


_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)$")
_PEM_MARKERS: dict[str, bytes] = {
    "cert_file": b"-----BEGIN CERTIFICATE-----",
    "key_file": b"PRIVATE KEY-----",
    "client_ca_file": b"-----BEGIN CERTIFICATE-----",
}


def _ssl_reason(err: ssl.SSLError) -> str:
    return _SSL_LOCATION.sub("", err.strerror or str(err))


def _check_pem(path: str, file: str, name: str) -> None:
    """The file is readable and holds the PEM block it should (precise errors per key)."""
    key = f"tls_server_config.{name}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES)
    except OSError as err:
        raise ConfigError(file, key, f"cannot read {path}: {err.strerror or err}") from None
    if _PEM_MARKERS[name] not in data:
        kind = "private key" if name == "key_file" else "certificate"
        raise ConfigError(file, key, f"{path} holds no PEM {kind}")
    if name == "key_file" and b"ENCRYPTED" in data:
        raise ConfigError(file, key, f"{path} is encrypted; give an unencrypted key")


def _no_password() -> bytes:
    return b""  # never prompt on a terminal for an encrypted key


def build_context(tls: TlsConfig, file: str) -> ssl.SSLContext:
    """An SSLContext for the server side; ConfigError when a file is unusable."""
    for name in ("cert_file", "key_file", "client_ca_file"):
        path = getattr(tls, name)
        if path:
            _check_pem(path, file, name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.minimum_version = tls.min_version
        if tls.max_version is not None:
            context.maximum_version = tls.max_version
    except (ValueError, ssl.SSLError) as err:
        raise ConfigError(file, "tls_server_config.min_version", str(err)) from None
    context.options |= ssl.OP_NO_RENEGOTIATION  # one request per connection: nothing to renegotiate
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file, password=_no_password)
    except ssl.SSLError as err:
        raise ConfigError(
            file, "tls_server_config.key_file", f"unusable with cert_file: {_ssl_reason(err)}"
        ) from None
    except OSError as err:
        raise ConfigError(file, "tls_server_config.cert_file", str(err)) from None
    if tls.client_ca_file:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except ssl.SSLError as err:
            raise ConfigError(
                file, "tls_server_config.client_ca_file", f"unusable: {_ssl_reason(err)}"
            ) from None
        except OSError as err:
            raise ConfigError(file, "tls_server_config.client_ca_file", str(err)) from None
    context.verify_mode = _VERIFY_MODES[tls.client_auth_type]
    return context


def _mtimes(tls: TlsConfig) -> tuple[int, ...]:
    paths = (tls.cert_file, tls.key_file, tls.client_ca_file)
    return tuple(os.stat(p).st_mtime_ns if p else 0 for p in paths)


class TlsContextSource:
    """The server's SSLContext, rebuilt when a certificate, key or CA file changes.

    Checked at most once per `check_every` seconds, from the connection threads. A rotation
    that leaves the files unusable (say the key is written after the certificate) keeps the
    previous context and logs a warning until the files are consistent again.
    """

    def __init__(self, tls: TlsConfig, file: str, check_every: float = 1.0) -> None:
        self._tls = tls
        self._file = file
        self._check_every = check_every
        self._lock = threading.Lock()
        self._stamp = _mtimes(tls)
        self._context = build_context(tls, file)
        self._checked = time.monotonic()

    def current(self) -> ssl.SSLContext:
        now = time.monotonic()
        if now - self._checked < self._check_every:
            return self._context
        with self._lock:
            if now - self._checked >= self._check_every:
                self._checked = now
                self._reload_if_changed()
            return self._context

    def _reload_if_changed(self) -> None:
        try:
            stamp = _mtimes(self._tls)
        except OSError as err:
            log.warning("tls_files_unreadable", file=self._file, error=str(err))
            return
        if stamp == self._stamp:
            return
        try:
            self._context = build_context(self._tls, self._file)
        except ConfigError as err:
            log.warning("tls_reload_failed", file=self._file, key=err.key, reason=err.reason)
            return
        self._stamp = stamp
        log.info("tls_reloaded", cert_file=self._tls.cert_file)
