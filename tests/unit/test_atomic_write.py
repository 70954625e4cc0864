"""write_atomically: a concurrent reader sees the old content or the new, never a part of one."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ns_exporter.atomic_write import write_atomically

Writer = Callable[[str, bytes], None]

# Two payloads large enough that writing one takes many page copies.
PAYLOADS = (b"a 1\n" * 400_000, b"bb 22\n" * 300_000)
ROUNDS = 150


def _naive_write(path: str, data: bytes) -> None:
    """What write_atomically must not be: truncate in place, then write."""
    with open(path, "wb") as f:
        f.write(data)


def _race(path: Path, writer: Writer, rounds: int, stop_at_first_torn: bool) -> tuple[int, int]:
    """Rewrite path `rounds` times while another thread keeps reading it.

    Returns (reads, torn reads); a torn read is content that is neither payload.
    """
    write_atomically(str(path), PAYLOADS[0])
    done = threading.Event()
    counts = {"reads": 0, "torn": 0}

    def reader() -> None:
        while not done.is_set():
            data = path.read_bytes()
            counts["reads"] += 1
            if data not in PAYLOADS:
                counts["torn"] += 1
                if stop_at_first_torn:
                    done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(rounds):
            if done.is_set():
                break
            writer(str(path), PAYLOADS[i % 2])
    finally:
        done.set()
        thread.join(timeout=60)
    return counts["reads"], counts["torn"]


def test_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    reads, torn = _race(tmp_path / "ns.prom", write_atomically, ROUNDS, stop_at_first_torn=False)
    assert reads > 0
    assert torn == 0


def test_the_race_detects_a_non_atomic_writer(tmp_path: Path) -> None:
    """Control: the same reader catches a truncate-and-write writer, so the test above can fail."""
    reads, torn = _race(tmp_path / "ns.prom", _naive_write, 20 * ROUNDS, stop_at_first_torn=True)
    assert reads > 0
    assert torn > 0


def test_file_is_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomically(str(tmp_path / "ns.prom"), b"x 1\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ns.prom").stat().st_mode) == 0o644


def test_replaces_content_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "ns.prom"
    target.write_bytes(b"old 1\n")
    write_atomically(str(target), b"new 2\n")
    assert target.read_bytes() == b"new 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns.prom"]


def test_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "ns.prom"
    target.mkdir()  # rename of a file over a directory fails
    with pytest.raises(IsADirectoryError):
        write_atomically(str(target), b"x 1\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ns.prom"]
    assert target.is_dir()


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(str(tmp_path / "missing" / "ns.prom"), b"x 1\n")
