"""A live scrape of the real exporter passes `promtool check metrics` with no findings."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.helpers import run_exporter, spawned

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing (Debian package prometheus)"
)


@pytest.mark.root
def test_live_scrape_passes_promtool(tmp_path: pytest.TempPathFactory) -> None:
    # a namespace with a hostile command name and a mount-held one make the scrape realistic
    with (
        spawned(["unshare", "--uts", "--ipc", "sleep", "60"]),
        run_exporter("--scan.interval=0.5s", tmp_dir=str(tmp_path)) as exporter,
    ):
        exporter.wait_scans(1)
        text = exporter.metrics_text()
        assert "ns_namespace_info{" in text
        result = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_scrape_as_any_user_passes_promtool(tmp_path: pytest.TempPathFactory) -> None:
    """Also without root (fewer namespaces visible, the same valid exposition)."""
    with run_exporter("--scan.interval=1s", tmp_dir=str(tmp_path)) as exporter:
        text = exporter.metrics_text()
        result = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip()
        gz = exporter.get("/metrics", headers={"Accept-Encoding": "gzip"})
        assert gz.headers.get("Content-Encoding") == "gzip" and gz.ok
