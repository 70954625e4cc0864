"""The C references the benchmarks measure against compile cleanly and measure something.

The benchmarks themselves assert no time (machines here are shared); this only makes sure a
reference that a figure in the README is set against still builds and still sees events.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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
    """The C floor of the event listener receives the events of processes we start, and in
    `links` mode reads the links of each new or exec'ing one."""
    with tempfile.TemporaryDirectory(prefix="ns-bench-cc-") as tmp:
        binary = compile_c(REPO / "bench" / "c" / "connector_floor.c", Path(tmp))
        floor = subprocess.Popen(
            [str(binary), "--mode", mode, "/proc"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert floor.stderr is not None
            assert floor.stderr.readline().strip() == "ready"
            for _ in range(20):
                subprocess.run(["true"], check=True)  # a fork and an exec each
            floor.send_signal(signal.SIGTERM)
            out, err = floor.communicate(timeout=15)
        finally:
            if floor.poll() is None:
                floor.kill()
                floor.wait()
    assert floor.returncode == 0, err
    name, shown_mode, events, reads, user, system = out.split()
    assert (name, shown_mode) == ("floor", mode)
    assert int(events) >= 60  # fork, exec and exit of each of the 20
    assert (int(reads) >= 40) if mode == "links" else (int(reads) == 0)
    assert float(user) >= 0 and float(system) >= 0
