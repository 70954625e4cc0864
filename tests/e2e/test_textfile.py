"""`ns-exporter textfile`: a real scan written for node_exporter's textfile collector."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ns_exporter.model import NS_TYPES

REPO = Path(__file__).resolve().parents[2]


def _textfile(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NS_EXPORTER_LOG_FORMAT": "logfmt"}
    return subprocess.run(
        [sys.executable, "-m", "ns_exporter", "textfile", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_writes_one_parseable_scan(tmp_path: Path) -> None:
    output = tmp_path / "ns_exporter.prom"
    result = _textfile("--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "textfile_written" in result.stderr

    families = {f.name: f for f in text_string_to_metric_families(output.read_text())}
    namespaces = families["ns_namespaces"]
    assert sorted(s.labels["ns_type"] for s in namespaces.samples) == sorted(
        t.value for t in NS_TYPES
    )
    # this very process lives in at least one namespace of every type
    assert all(s.value >= 1 for s in namespaces.samples)
    assert families["ns_namespace_info"].samples
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns_exporter.prom"]


def test_output_passes_promtool_check_metrics(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    output = tmp_path / "ns_exporter.prom"
    assert _textfile("--output", str(output)).returncode == 0
    check = subprocess.run(
        [promtool, "check", "metrics"],
        input=output.read_bytes(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr.decode()
    assert check.stdout.decode() + check.stderr.decode() == ""


def test_unwritable_output_is_a_one_line_error(tmp_path: Path) -> None:
    result = _textfile("--output", str(tmp_path / "missing" / "ns_exporter.prom"))
    assert result.returncode == 1
    assert "cannot write" in result.stderr
    assert "No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_is_required() -> None:
    result = _textfile()
    assert result.returncode == 2
    assert "--output" in result.stderr
