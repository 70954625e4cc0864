"""The C references the benchmarks measure against compile cleanly and measure something.

The benchmarks themselves assert no time (machines here are shared); this only makes sure a
reference that a figure in the README is set against still builds and still sees events.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import lifecycle_capture  # noqa: E402  (a script of bench/, not a package)

C_SOURCES = sorted((REPO / "bench" / "c").glob("*.c"))
CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (apt-get install gcc)")


def compile_c(source: Path, out_dir: Path) -> Path:
    assert CC is not None
    binary = out_dir / source.stem
    result = subprocess.run(
        [CC, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return binary


@needs_cc
@pytest.mark.parametrize("source", C_SOURCES, ids=[s.name for s in C_SOURCES])
def test_bench_reference_compiles_without_warnings(source: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ns-bench-cc-") as tmp:
        assert compile_c(source, Path(tmp)).exists()


@needs_cc
@pytest.mark.root
@pytest.mark.parametrize("mode", ["recv", "links"])
def test_connector_floor_sees_forks_and_execs(mode: str) -> None:
    """The C floor of the event listener, run as bench/lifecycle_capture.py runs it, receives
    the events of processes we start, and in `links` mode reads the links of each new or
    exec'ing one."""

    def load() -> None:
        for _ in range(20):
            subprocess.run(["true"], check=True)  # a fork and an exec each

    with tempfile.TemporaryDirectory(prefix="ns-bench-cc-") as tmp:
        binary = compile_c(REPO / "bench" / "c" / "connector_floor.c", Path(tmp))
        floor = lifecycle_capture.measure_floor(binary, mode, load)
    assert floor.mode == mode
    assert floor.events >= 60  # fork, exec and exit of each of the 20
    assert (floor.reads >= 40) if mode == "links" else (floor.reads == 0)
    assert floor.cpu_seconds >= 0
