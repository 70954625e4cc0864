"""systemd units: `systemd-analyze verify`, exposure score, drop-ins, sysusers and env example."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_files import ENV_NAMES, SYSTEMD, os_tool, parse_command_line

INSTALLED_BINARY = "/opt/ns_exporter/bin/ns-exporter"
UNITS = ("ns_exporter.service", "ns_exporter-textfile.service", "ns_exporter-textfile.timer")
SERVICES = ("ns_exporter.service", "ns_exporter-textfile.service")
DROP_INS = ("ns_exporter-probe.conf", "ns_exporter-events.conf")
MAX_EXPOSURE = 2.5
_OVERALL = re.compile(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)")


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    tool = os_tool("systemd-analyze", "systemd")
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _executable(tmp_path: Path) -> str:
    """The installed ns-exporter console script, or a wrapper running this interpreter."""
    beside = Path(sys.executable).with_name("ns-exporter")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    wrapper = tmp_path / "ns-exporter"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m ns_exporter "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return str(wrapper)


def _install(tmp_path: Path, units: tuple[str, ...], drop_ins: tuple[str, ...] = ()) -> Path:
    """Copy units (and drop-ins for ns_exporter.service) with ExecStart pointing at a real binary.

    `systemd-analyze verify` checks that the ExecStart binary exists; the repository's units
    name the documented install location, which does not exist on a test machine.
    """
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    binary = _executable(tmp_path)
    for name in units:
        text = (SYSTEMD / name).read_text()
        if name.endswith(".service"):
            assert INSTALLED_BINARY in text, f"{name}: ExecStart does not use {INSTALLED_BINARY}"
        (unit_dir / name).write_text(text.replace(INSTALLED_BINARY, binary))
    if drop_ins:
        conf_dir = unit_dir / "ns_exporter.service.d"
        conf_dir.mkdir()
        for name in drop_ins:
            shutil.copy(SYSTEMD / name, conf_dir / name)
    return unit_dir


def _exposure(unit_dir: Path, unit: str) -> float:
    result = _analyze("security", "--offline=true", unit, cwd=unit_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    match = _OVERALL.search(result.stdout)
    assert match, result.stdout
    return float(match.group(1))


def _settings(unit_dir: Path, unit: str) -> dict[str, bool]:
    """security --json: setting name (e.g. RestrictNamespaces=~pid) → is it locked down."""
    result = _analyze("security", "--offline=true", "--json=short", unit, cwd=unit_dir)
    assert result.returncode == 0, result.stderr
    return {item["name"]: bool(item["set"]) for item in json.loads(result.stdout)}


def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    unit_dir = _install(tmp_path, UNITS)
    result = _analyze("verify", *UNITS, cwd=unit_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("drop_in", DROP_INS)
def test_drop_ins_verify_without_a_warning(tmp_path: Path, drop_in: str) -> None:
    unit_dir = _install(tmp_path, ("ns_exporter.service",), (drop_in,))
    result = _analyze("verify", "ns_exporter.service", cwd=unit_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.parametrize("unit", SERVICES)
def test_exposure_score_is_at_most_2_5(tmp_path: Path, unit: str) -> None:
    unit_dir = _install(tmp_path, SERVICES)
    assert _exposure(unit_dir, unit) <= MAX_EXPOSURE


def test_default_unit_has_only_ptrace_and_dac_read_search(tmp_path: Path) -> None:
    text = (SYSTEMD / "ns_exporter.service").read_text()
    caps = {"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        values = re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)
        assert [set(v.split()) for v in values] == [caps], key
    settings = _settings(_install(tmp_path, ("ns_exporter.service",)), "ns_exporter.service")
    locked = (
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "CapabilityBoundingSet=~CAP_NET_ADMIN",
        "RestrictNamespaces=~pid",
        "RestrictNamespaces=~user",
        "SystemCallFilter=~@mount",
        "RestrictAddressFamilies=~AF_NETLINK",
        "User=/DynamicUser=",
        "NoNewPrivileges=",
    )
    assert {name: settings[name] for name in locked} == dict.fromkeys(locked, True)
    # /proc must stay whole: hidepid or subset=pid would hide what the exporter reports on
    assert settings["ProtectProc="] is False
    assert settings["ProcSubset="] is False


def test_probe_drop_in_grants_what_the_probe_needs(tmp_path: Path) -> None:
    unit_dir = _install(tmp_path, ("ns_exporter.service",), ("ns_exporter-probe.conf",))
    settings = _settings(unit_dir, "ns_exporter.service")
    opened = (
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "RestrictNamespaces=~pid",
        "RestrictNamespaces=~mnt",
        "RestrictNamespaces=~user",
        "SystemCallFilter=~@mount",
        "ProtectHostname=",
    )
    assert {name: settings[name] for name in opened} == dict.fromkeys(opened, False)
    # what the probe does not need stays locked
    assert settings["CapabilityBoundingSet=~CAP_NET_ADMIN"] is True
    assert settings["User=/DynamicUser="] is True


def test_events_drop_in_grants_net_admin_and_netlink(tmp_path: Path) -> None:
    unit_dir = _install(tmp_path, ("ns_exporter.service",), ("ns_exporter-events.conf",))
    settings = _settings(unit_dir, "ns_exporter.service")
    assert settings["CapabilityBoundingSet=~CAP_NET_ADMIN"] is False
    assert settings["RestrictAddressFamilies=~AF_NETLINK"] is False
    assert settings["CapabilityBoundingSet=~CAP_SYS_ADMIN"] is True


@pytest.mark.parametrize(
    ("unit", "enabled"),
    [
        ("ns_exporter.service", {"NS_EXPORTER_PROBE_ENABLED", "NS_EXPORTER_EVENTS_ENABLED"}),
        ("ns_exporter-probe.conf", {"NS_EXPORTER_PROBE_ENABLED"}),
        ("ns_exporter-events.conf", {"NS_EXPORTER_EVENTS_ENABLED"}),
    ],
)
def test_environment_lines_name_real_switches(unit: str, enabled: set[str]) -> None:
    text = (SYSTEMD / unit).read_text()
    assigned = {
        name
        for line in re.findall(r"^Environment=(.*)$", text, re.MULTILINE)
        for name, _, _ in (item.partition("=") for item in shlex.split(line))
    }
    assert assigned == enabled
    assert assigned <= ENV_NAMES


@pytest.mark.parametrize("unit", SERVICES)
def test_exec_start_parses_with_the_real_cli(unit: str) -> None:
    text = (SYSTEMD / unit).read_text()
    (line,) = re.findall(r"^ExecStart=(.+)$", text, re.MULTILINE)
    argv = [arg for arg in shlex.split(line)[1:] if not arg.startswith("$")]
    parse_command_line(argv)


def test_env_example_names_real_flags_and_parses() -> None:
    environ: dict[str, str] = {}
    for line in (SYSTEMD / "ns_exporter.env").read_text().splitlines():
        match = re.match(r"^#?(NS_EXPORTER_[A-Z_]+)=(.*)$", line)
        if match and match.group(1) != "NS_EXPORTER_ARGS":
            environ[match.group(1)] = match.group(2)
    assert environ, "no NS_EXPORTER_* variable in the example"
    assert set(environ) <= ENV_NAMES, set(environ) - ENV_NAMES
    settings = parse_command_line(["serve"], environ)
    assert settings.listen.port == 10199


def test_sysusers_entry_creates_the_unit_user(tmp_path: Path) -> None:
    tool = os_tool("systemd-sysusers", "systemd")
    (tmp_path / "etc").mkdir()
    result = subprocess.run(
        [tool, f"--root={tmp_path}", "--dry-run", str(SYSTEMD / "ns_exporter.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Creating user 'ns_exporter'" in result.stdout + result.stderr
    for unit in SERVICES:
        assert "\nUser=ns_exporter\n" in (SYSTEMD / unit).read_text()
