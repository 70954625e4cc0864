"""Build facts for ns_exporter_build_info: the version and, from a git checkout, the revision."""

from __future__ import annotations

import os
from pathlib import Path

from ns_exporter.state import BuildInfo


def _git_revision(repo: Path) -> str | None:
    """The commit of a checkout's HEAD, read from .git without running git."""
    git = repo / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return ref_file.read_text().strip()[:12]
        for line in (git / "packed-refs").read_text().splitlines():
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
