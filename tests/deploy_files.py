"""Shared helpers for the tests of the deployment artefacts (systemd/, Dockerfile, deploy/)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from ns_exporter import cli
from ns_exporter.config import FLAGS, SWITCHES, Settings

REPO = Path(__file__).resolve().parent.parent
SYSTEMD = REPO / "systemd"
KUBERNETES = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"

# Every NS_EXPORTER_* variable the exporter reads.
ENV_NAMES: frozenset[str] = frozenset(f.env for f in FLAGS) | frozenset(s.env for s in SWITCHES)


def require_tool(name: str, hint: str) -> str:
    """Path of a tool the test extra installs: its absence is a set-up error, not a skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: {hint}")
    return path


def os_tool(name: str, package: str) -> str:
    """Path of an operating-system tool; skip when this machine does not have it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package})")
    return path


def parse_command_line(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    """Parse an ns-exporter command line with the real CLI parser; argparse errors fail."""
    parser = cli.build_parser(environ or {})
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f"ns-exporter rejects {shlex.join(argv)!r} (exit {exit_.code})")
    return Settings.from_args(args)
