"""The real exporter behind --web.config.file (TLS, mTLS, basic auth) and --web.max-requests."""

from __future__ import annotations

import contextlib
import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.helpers import Exporter, run_exporter, stop_process, wait_for
from tests.pki import Pki, make_pki

PASSWORD = "correct horse"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(6)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def web_config(directory: Path, text: str) -> Path:
    path = directory / "web-config.yml"
    path.write_text(textwrap.dedent(text))
    return path


def ready(client: requests.Session, url: str) -> bool:
    return client.get(f"{url}/-/ready", timeout=5).status_code == 200


@contextlib.contextmanager
def session() -> Iterator[requests.Session]:
    """A session that ignores REQUESTS_CA_BUNDLE and proxies from the environment."""
    with requests.Session() as client:
        client.trust_env = False
        yield client


@contextlib.contextmanager
def exporter_with(config: Path, *args: str) -> Iterator[Exporter]:
    """The exporter behind a web config; readiness is for the test to wait for (TLS, auth)."""
    with run_exporter(
        f"--web.config.file={config}",
        "--scan.interval=30s",
        *args,
        tmp_dir=str(config.parent),
        ready=False,
    ) as running:
        yield running


def port_of(running: Exporter) -> int:
    return int(running.url.rpartition(":")[2])


def run_to_exit(tmp_path: Path, *args: str) -> tuple[int, list[dict[str, str]]]:
    """Run the exporter expecting it to exit on its own: (exit status, JSON log records)."""
    with run_exporter(*args, "--log.format=json", tmp_dir=str(tmp_path), ready=False) as running:
        try:
            status = running.process.wait(timeout=60)
        finally:
            stop_process(running.process)
        records = []
        for line in running.log().splitlines():
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
        return status, records


def test_tls_with_the_right_ca_only(tmp_path: Path, pki: Pki) -> None:
    config = web_config(
        tmp_path,
        f"""
        tls_server_config:
          cert_file: {pki.server_cert}
          key_file: {pki.server_key}
        """,
    )
    with exporter_with(config) as running, session() as client:
        url = f"https://127.0.0.1:{port_of(running)}"
        client.verify = str(pki.ca)
        wait_for(lambda: ready(client, url), timeout=30)
        metrics = client.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "ns_namespaces{" in metrics.text
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/metrics", timeout=10)  # the system CAs do not know ours
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/metrics", verify=str(pki.rogue_ca), timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(
                f"http://127.0.0.1:{port_of(running)}/metrics", timeout=10
            )  # no plain HTTP
        assert client.get(f"{url}/metrics", timeout=10).status_code == 200  # still serving


def test_mutual_tls_requires_a_client_certificate_from_the_client_ca(
    tmp_path: Path, pki: Pki
) -> None:
    config = web_config(
        tmp_path,
        f"""
        tls_server_config:
          cert_file: {pki.server_cert}
          key_file: {pki.server_key}
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: {pki.ca}
          min_version: TLS12
        """,
    )
    with exporter_with(config) as running, session() as client:
        url = f"https://127.0.0.1:{port_of(running)}"
        client.verify = str(pki.ca)
        client.cert = (str(pki.client_cert), str(pki.client_key))
        wait_for(lambda: ready(client, url), timeout=30)
        assert client.get(f"{url}/metrics", timeout=10).status_code == 200
        for cert in (None, (str(pki.rogue_client_cert), str(pki.rogue_client_key))):
            with pytest.raises(requests.exceptions.ConnectionError):
                requests.get(f"{url}/-/healthy", verify=str(pki.ca), cert=cert, timeout=10)
        assert client.get(f"{url}/metrics", timeout=10).status_code == 200


def test_basic_auth_over_tls(tmp_path: Path, pki: Pki) -> None:
    config = web_config(
        tmp_path,
        f"""
        tls_server_config:
          cert_file: {pki.server_cert}
          key_file: {pki.server_key}
        basic_auth_users:
          prometheus: {HASH}
        """,
    )
    with exporter_with(config) as running, session() as client:
        url = f"https://127.0.0.1:{port_of(running)}"
        client.verify = str(pki.ca)
        wait_for(lambda: ready(client, url), timeout=30)  # open without credentials
        protected = ("/metrics", "/", "/no-such-path", "/probe?module=pid", "/explorer")
        for path in (*protected, "/api/namespaces"):
            response = client.get(f"{url}{path}", timeout=10)
            assert response.status_code == 401, path
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            wrong = client.get(f"{url}{path}", auth=("prometheus", "wrong"), timeout=10)
            assert wrong.status_code == 401, path
            nobody = client.get(f"{url}{path}", auth=("nobody", PASSWORD), timeout=10)
            assert nobody.status_code == 401, path
        right = client.get(f"{url}/metrics", auth=("prometheus", PASSWORD), timeout=10)
        assert right.status_code == 200
        assert "ns_exporter_scans_total" in right.text
        for path in ("/", "/explorer", "/api/namespaces", "/probe?module=uts"):
            answer = client.get(f"{url}{path}", auth=("prometheus", PASSWORD), timeout=30)
            assert answer.status_code == 200, path
        assert client.post(f"{url}/-/reload", timeout=10).status_code == 401
        assert client.get(f"{url}/-/healthy", timeout=10).status_code == 200


def test_basic_auth_with_an_htpasswd_hash_over_plain_http(tmp_path: Path) -> None:
    htpasswd = "$2y$" + HASH[4:]
    config = web_config(tmp_path, f"basic_auth_users:\n  prometheus: '{htpasswd}'\n")
    with exporter_with(config) as running, session() as client:
        url = f"http://127.0.0.1:{port_of(running)}"
        wait_for(lambda: ready(client, url), timeout=30)
        assert client.get(f"{url}/metrics", timeout=10).status_code == 401
        auth = ("prometheus", PASSWORD)
        assert client.get(f"{url}/metrics", auth=auth, timeout=10).status_code == 200


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /x.key\n", "cannot read"),
        ("basic_auth_users:\n  prometheus: plaintext\n", "not a bcrypt hash"),
        ("http_server_config:\n  http2: true\n", "not supported"),
        ("tls_server_config: [\n", "invalid YAML"),
    ],
)
def test_a_malformed_web_config_exits_2_before_listening(
    tmp_path: Path, text: str, reason: str
) -> None:
    config = web_config(tmp_path, text)
    status, records = run_to_exit(tmp_path, f"--web.config.file={config}")
    assert status == 2
    errors = [r for r in records if r.get("event") == "config_invalid"]
    assert len(errors) == 1
    assert errors[0]["file"] == str(config)
    assert reason in errors[0]["reason"]
    assert not [r for r in records if r.get("event") == "listening"]


def test_a_missing_web_config_exits_2(tmp_path: Path) -> None:
    status, records = run_to_exit(tmp_path, f"--web.config.file={tmp_path / 'absent.yml'}")
    assert status == 2
    assert [r["key"] for r in records if r.get("event") == "config_invalid"] == ["open"]


def _status(port: int) -> int:
    return requests.get(f"http://127.0.0.1:{port}/-/healthy", timeout=10).status_code


def test_over_the_limit_gets_503_and_the_exporter_recovers(tmp_path: Path) -> None:
    # a read timeout far beyond the test, so the held requests stay held however busy the host
    with run_exporter(
        "--web.max-requests=2",
        "--web.read-timeout=5m",
        "--scan.interval=30s",
        tmp_dir=str(tmp_path),
    ) as running:
        port = port_of(running)
        held: list[socket.socket] = []
        try:
            for _ in range(2):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # a request that is never finished
                held.append(sock)
            wait_for(lambda: _status(port) == 503)
            response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            assert response.status_code == 503
            assert "too many concurrent requests" in response.text
        finally:
            for sock in held:
                sock.close()
        wait_for(lambda: _status(port) == 200)
        assert all(_status(port) == 200 for _ in range(10))
        assert running.process.poll() is None
