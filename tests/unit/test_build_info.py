"""ns_exporter_build_info's revision: from a checkout, a worktree, or the environment."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ns_exporter.build import _git_revision, build_info


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("x")
    git(repo, "add", "f")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    return repo


def test_revision_of_checkout_and_worktree(repo: Path, tmp_path: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")[:12]
    assert _git_revision(repo) == head
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "other")
    assert _git_revision(tmp_path / "wt") == head
    git(repo, "pack-refs", "--all")
    assert _git_revision(repo) == head
    assert _git_revision(tmp_path) is None


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NS_EXPORTER_REVISION", "abc123")
    assert build_info().revision == "abc123"
