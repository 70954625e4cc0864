"""--web.config.file: what is accepted, what is refused and how the refusal reads."""

from __future__ import annotations

import os
import ssl
import textwrap
from pathlib import Path

import bcrypt
import pytest

from ns_exporter.config_error import ConfigError
from ns_exporter.web_config import (
    ClientAuth,
    TlsContextSource,
    WebConfig,
    load_web_config,
    parse_web_config,
)
from tests.pki import Pki, make_pki

HASH = bcrypt.hashpw(b"secret", bcrypt.gensalt(4)).decode()
HTPASSWD_HASH = "$2y$" + HASH[4:]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(directory: Path, text: str, name: str = "web.yml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_web_config(str(path))
    assert caught.value.file == str(path)
    return caught.value


def test_empty_file_means_plain_http_without_auth(tmp_path: Path) -> None:
    config = load_web_config(str(write(tmp_path, "")))
    assert config.tls is None
    assert not config.users


def test_tls_and_users(tmp_path: Path, pki: Pki) -> None:
    path = write(
        tmp_path,
        f"""
        tls_server_config:
          cert_file: {pki.server_cert}
          key_file: {pki.server_key}
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: {pki.ca}
          min_version: TLS13
        basic_auth_users:
          alice: {HASH}
          bob: {HTPASSWD_HASH}
        """,
    )
    config = load_web_config(str(path))
    assert config.tls is not None
    assert config.tls.client_auth_type is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert config.tls.min_version is ssl.TLSVersion.TLSv1_3
    assert config.users == {"alice": HASH.encode(), "bob": HTPASSWD_HASH.encode()}


def test_relative_paths_are_taken_from_the_config_directory(tmp_path: Path, pki: Pki) -> None:
    directory = pki.server_cert.parent
    path = write(
        directory,
        f"""
        tls_server_config:
          cert_file: {pki.server_cert.name}
          key_file: ./{pki.server_key.name}
        """,
        name="relative.yml",
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        config = load_web_config(str(path))
    finally:
        os.chdir(cwd)
    assert config.tls is not None
    assert config.tls.cert_file == str(pki.server_cert)


def test_empty_tls_section_is_plain_http(tmp_path: Path) -> None:
    assert load_web_config(str(write(tmp_path, "tls_server_config: {}\n"))).tls is None


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("tls_server_config: [a]\n", "tls_server_config", "must be a mapping"),
        ("- a\n- b\n", "(top level)", "must be a mapping"),
        ("tls_server_confg: {}\n", "tls_server_confg", "did you mean tls_server_config?"),
        ("http_server_config: {http2: true}\n", "http_server_config", "not supported"),
        (
            "tls_server_config: {cipher_suites: [TLS_AES_128_GCM_SHA256]}\n",
            "tls_server_config.cipher_suites",
            "not supported",
        ),
        ("tls_server_config: {cert: PEM}\n", "tls_server_config.cert", "use cert_file"),
        ("tls_server_config: {min_version: TLS12}\n", "tls_server_config.cert_file", "missing"),
        ("tls_server_config: {cert_file: a.crt}\n", "tls_server_config.key_file", "missing"),
        ("basic_auth_users: {alice: secret}\n", "basic_auth_users.alice", "not a bcrypt hash"),
        ("basic_auth_users: {alice: 12}\n", "basic_auth_users.alice", "must be a string"),
        (f"basic_auth_users: {{'a:b': '{HASH}'}}\n", "basic_auth_users.a:b", "must not contain"),
        (f"basic_auth_users: {{'': '{HASH}'}}\n", "basic_auth_users", "must not be empty"),
        ("basic_auth_users: [alice]\n", "basic_auth_users", "must be a mapping"),
        ("basic_auth_users: {1: x}\n", "basic_auth_users", "keys must be strings"),
        ("a: 1\na: 2\n", "line 2", "duplicate key"),
        ("tls_server_config: {\n", "line 2, column 1", "invalid YAML"),
    ],
)
def test_malformed_configs_name_the_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    err = refused(write(tmp_path, text))
    assert err.key == key
    assert reason in err.reason


@pytest.mark.parametrize(
    ("fields", "key", "reason"),
    [
        ({"client_auth_type": "RequireAnyClientCert"}, "client_auth_type", "not supported"),
        ({"client_auth_type": "RequestClientCert"}, "client_auth_type", "VerifyClientCertIfGiven"),
        ({"client_auth_type": "Always"}, "client_auth_type", "unknown client_auth_type"),
        ({"client_auth_type": "RequireAndVerifyClientCert"}, "client_ca_file", "missing"),
        ({"client_ca_file": "CA"}, "client_auth_type", "NoClientCert"),
        ({"min_version": "TLS14"}, "min_version", "unknown TLS version"),
        ({"min_version": "TLS13", "max_version": "TLS12"}, "max_version", "lower than"),
        ({"prefer_server_cipher_suites": "maybe"}, "prefer_server_cipher_suites", "true or false"),
        ({"cert_file": "/nonexistent/server.crt"}, "cert_file", "No such file"),
        ({"key_file": "/nonexistent/server.key"}, "key_file", "No such file"),
        ({"cert_file": "KEY"}, "cert_file", "no PEM certificate"),
        ({"key_file": "CERT"}, "key_file", "no PEM private key"),
        ({"key_file": "OTHER_KEY"}, "key_file", "unusable with cert_file"),
        (
            {"client_auth_type": "VerifyClientCertIfGiven", "client_ca_file": "KEY"},
            "client_ca_file",
            "no PEM",
        ),
    ],
)
def test_tls_refusals(
    tmp_path: Path, pki: Pki, fields: dict[str, str], key: str, reason: str
) -> None:
    substitutions = {
        "CA": str(pki.ca),
        "KEY": str(pki.server_key),
        "CERT": str(pki.server_cert),
        "OTHER_KEY": str(pki.client_key),
    }
    tls = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    tls.update({name: substitutions.get(value, value) for name, value in fields.items()})
    lines = "".join(f"  {name}: {value}\n" for name, value in tls.items())
    err = refused(write(tmp_path, f"tls_server_config:\n{lines}"))
    assert err.key == f"tls_server_config.{key}"
    assert reason in err.reason


def test_encrypted_key_is_refused_without_prompting(tmp_path: Path, pki: Pki) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass"),
        )
    )
    path = write(
        tmp_path, f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {encrypted}\n"
    )
    err = refused(path)
    assert err.key == "tls_server_config.key_file"
    assert "encrypted" in err.reason


def test_missing_and_binary_files(tmp_path: Path) -> None:
    assert refused(tmp_path / "absent.yml").key == "open"
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00tls")
    assert refused(binary).key == "encoding"


def test_deeply_nested_yaml_is_a_config_error(tmp_path: Path) -> None:
    err = refused(write(tmp_path, "basic_auth_users: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert (err.key, err.reason) == ("yaml", "invalid YAML: nested too deeply")


def test_parse_web_config_without_a_file() -> None:
    assert parse_web_config("", "inline.yml") == WebConfig(path="inline.yml")


def test_certificate_rotation_is_picked_up(tmp_path: Path, pki: Pki) -> None:
    cert = tmp_path / "server.crt"
    key = tmp_path / "server.key"
    cert.write_bytes(pki.server_cert.read_bytes())
    key.write_bytes(pki.server_key.read_bytes())
    config = load_web_config(
        str(write(tmp_path, f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"))
    )
    assert config.tls is not None
    source = TlsContextSource(config.tls, config.path, check_every=0.0)
    first = source.current()
    assert source.current() is first  # unchanged files: the same context

    key.write_bytes(pki.client_key.read_bytes())  # half-way through a rotation: mismatched pair
    os.utime(key, ns=(1, 1))
    assert source.current() is first  # the old context stays in use

    cert.write_bytes(pki.client_cert.read_bytes())  # the rotation completes
    os.utime(cert, ns=(2, 2))
    rotated = source.current()
    assert rotated is not first


def test_the_readme_example_is_valid(tmp_path: Path, pki: Pki) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = next(
        part.split("```", 1)[0]
        for part in readme.split("```yaml\n")[1:]
        if part.startswith("# /etc/ns_exporter/web-config.yml")
    )
    for name, path in {
        "server.crt": pki.server_cert,
        "server.key": pki.server_key,
        "clients-ca.crt": pki.ca,
    }.items():
        block = block.replace(f"/etc/ns_exporter/tls/{name}", str(path))
    config = load_web_config(str(write(tmp_path, block)))
    assert config.tls is not None
    assert config.tls.client_auth_type is ClientAuth.REQUIRE_AND_VERIFY_CLIENT_CERT
    assert list(config.users) == ["prometheus"]
