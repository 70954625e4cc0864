"""Build facts for ns_exporter_build_info: the version and, from a git checkout, the revision."""

from __future__ import annotations

import os
from pathlib import Path

from ns_exporter.state import BuildInfo


def _git_dirs(repo: Path) -> tuple[Path, Path]:
    """The git dir and the common dir (they differ in a `git worktree`, where .git is a file)."""
    git = repo / ".git"
    if git.is_file():
        git = (repo / git.read_text().strip().removeprefix("gitdir: ")).resolve()
    common = git / "commondir"
    return git, (git / common.read_text().strip()).resolve() if common.exists() else git


def _git_revision(repo: Path) -> str | None:
    """The commit of a checkout's HEAD, read from .git without running git."""
    try:
        git, common = _git_dirs(repo)
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()[:12]
        for line in (common / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        return None
    return None


def build_info() -> BuildInfo:
    """NS_EXPORTER_REVISION wins (set by image builds); else the checkout's HEAD; else unknown."""
    revision = os.environ.get("NS_EXPORTER_REVISION") or _git_revision(
        Path(__file__).resolve().parent.parent
    )
    return BuildInfo(revision=revision or "unknown")
