"""HTTP surface: landing page, health, readiness, 404/405, gzip, flags from the environment."""

from __future__ import annotations

import gzip

import pytest
import requests

from tests.helpers import run_exporter


def test_http_endpoints(tmp_path: pytest.TempPathFactory) -> None:
    with run_exporter("--scan.interval=1s", tmp_dir=str(tmp_path)) as exporter:
        landing = exporter.get("/")
        assert landing.status_code == 200 and "ns_exporter" in landing.text
        assert 'href="metrics"' in landing.text and "Last scan" in landing.text
        assert exporter.get("/-/healthy").status_code == 200
        assert exporter.get("/-/ready").status_code == 200
        missing = exporter.get("/nope")
        assert missing.status_code == 404 and missing.text.count("\n") == 1
        post = requests.post(exporter.url + "/metrics", timeout=10)
        assert post.status_code == 405 and "GET" in post.headers["Allow"]
        raw = requests.get(
            exporter.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10, stream=True
        )
        assert raw.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(raw.raw.read()).startswith(b"# HELP")
        plain = requests.get(
            exporter.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=10
        )
        assert "Content-Encoding" not in plain.headers and plain.text.startswith("# HELP")
        assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_flags_from_environment(tmp_path: pytest.TempPathFactory) -> None:
    env = {"NS_EXPORTER_WEB_TELEMETRY_PATH": "/custom", "NS_EXPORTER_COLLECTOR_MOUNTS": "false"}
    with run_exporter("--scan.interval=1s", tmp_dir=str(tmp_path), env=env) as exporter:
        assert exporter.get("/metrics").status_code == 404
        text = exporter.get("/custom").text
        assert 'ns_scrape_collector_success{collector="processes"} 1.0' in text
        assert 'collector="mounts"' not in text
