"""Running as the systemd unit does: a non-root user with only CAP_SYS_PTRACE and
CAP_DAC_READ_SEARCH still sees root's and other users' namespaces; without them the exporter
starts, warns, and reports only what it can see.

The exporter runs as uid 65534 through setpriv. That user cannot read a Python installed under
/root (pyenv), so the test runs it with an interpreter it can execute and a world-readable copy of
the package and its dependencies.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import REPO, run_exporter

pytestmark = pytest.mark.root

EXPORTER_UID = 65534  # nobody
OTHER_UID = 65533  # a second unprivileged user, owner of a namespace of its own
CAP_DAC_READ_SEARCH = 2
CAP_SYS_PTRACE = 19
GRANTED = "+sys_ptrace,+dac_read_search"
AS_EXPORTER_USER = (
    f"--reuid={EXPORTER_UID}",
    f"--regid={EXPORTER_UID}",
    "--clear-groups",
)
WITH_CAPS = (
    *AS_EXPORTER_USER,
    f"--inh-caps=-all,{GRANTED}",
    f"--ambient-caps=-all,{GRANTED}",
    f"--bounding-set=-all,{GRANTED}",
)
WITHOUT_CAPS = (*AS_EXPORTER_USER, "--inh-caps=-all", "--bounding-set=-all")


@dataclass(frozen=True, slots=True)
class Runtime:
    setpriv: str
    python: str
    pythonpath: str
    workdir: str  # world-readable: the exporter's cwd and log directory


def _distributions(requirements: list[str]) -> set[str]:
    """The installed distributions these requirements pull in, transitively."""
    seen: set[str] = set()
    pending = list(requirements)
    while pending:
        requirement = Requirement(pending.pop())
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = importlib.metadata.distribution(requirement.name).metadata["Name"]
        if name not in seen:
            seen.add(name)
            pending.extend(importlib.metadata.requires(name) or [])
    return seen


def _readable_tree(root: Path) -> None:
    """ns_exporter from the repository plus its installed dependencies, world-readable."""
    shutil.copytree(
        Path(REPO) / "ns_exporter",
        root / "ns_exporter",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    project = tomllib.loads((Path(REPO) / "pyproject.toml").read_text())["project"]
    for name in _distributions(project["dependencies"]):
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            if ".." in file.parts or "__pycache__" in file.parts:
                continue
            target = root / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(dist.locate_file(file))), target)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _usable(setpriv: str, python: str, pythonpath: str) -> bool:
    result = subprocess.run(
        [setpriv, *AS_EXPORTER_USER, python, "-c", "import ns_exporter.cli"],
        env={**os.environ, "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv not installed (Debian package util-linux)")
    root = Path(tempfile.mkdtemp(prefix="ns-exporter-caps-"))
    try:
        root.chmod(0o755)
        _readable_tree(root / "site")
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        candidates = [sys.executable, shutil.which(version), f"/usr/bin/{version}"]
        for python in dict.fromkeys(c for c in candidates if c and os.path.exists(c)):
            if _usable(setpriv, python, str(root / "site")):
                yield Runtime(setpriv, python, str(root / "site"), str(root))
                return
        pytest.skip(f"no {version} that uid {EXPORTER_UID} can execute")
    finally:
        shutil.rmtree(root)


def _ns_inode(pid: int, ns_type: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns_type}").split("[")[1].rstrip("]")


@dataclass(frozen=True, slots=True)
class Namespaces:
    other_user_uts: str  # uts namespace whose only process belongs to OTHER_UID
    root_net: str  # net and ipc namespaces whose only process belongs to root
    root_ipc: str


@pytest.fixture(scope="module")
def namespaces(runtime: Runtime) -> Iterator[Namespaces]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare not installed (Debian package util-linux)")
    other = subprocess.Popen(
        [
            unshare,
            "--uts",
            "--",
            runtime.setpriv,
            f"--reuid={OTHER_UID}",
            f"--regid={OTHER_UID}",
            "--clear-groups",
            "sleep",
            "600",
        ]
    )
    by_root = subprocess.Popen([unshare, "--net", "--ipc", "--", "sleep", "600"])
    try:
        for process in (other, by_root):
            _wait_for_exec(process.pid)
        assert os.stat(f"/proc/{other.pid}").st_uid == OTHER_UID
        yield Namespaces(
            other_user_uts=_ns_inode(other.pid, "uts"),
            root_net=_ns_inode(by_root.pid, "net"),
            root_ipc=_ns_inode(by_root.pid, "ipc"),
        )
    finally:
        for process in (other, by_root):
            process.kill()
            process.wait(timeout=10)


def _wait_for_exec(pid: int) -> None:
    """Until unshare (and setpriv) have exec'd sleep, so its namespaces and uid are final."""
    for _ in range(600):
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "sleep":
                return
        subprocess.run(["sleep", "0.05"], check=True)
    raise TimeoutError(f"pid {pid} never became sleep")


def _effective_caps(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise AssertionError("no CapEff line")


@dataclass(frozen=True, slots=True)
class Run:
    """What one exporter run showed."""

    uid: int
    effective_caps: int
    own: set[tuple[str, str]]  # the exporter's own namespaces
    info: dict[tuple[str, str], dict[str, str]]  # (ns_type, ns_inode) → ns_namespace_info labels
    permission_denied: float
    log: str


def _run(runtime: Runtime, setpriv_args: tuple[str, ...]) -> Run:
    with run_exporter(
        "--no-probe.enabled",
        "--no-events.enabled",
        tmp_dir=runtime.workdir,
        env={"PYTHONDONTWRITEBYTECODE": "1"},
        preexec=(runtime.setpriv, *setpriv_args, "--"),
        python=runtime.python,
        pythonpath=runtime.pythonpath,
    ) as exporter:
        pid = exporter.process.pid
        uid = os.stat(f"/proc/{pid}").st_uid
        caps = _effective_caps(pid)
        own = {(t, _ns_inode(pid, t)) for t in ("mnt", "net", "pid", "uts", "ipc")}
        body = exporter.metrics_text()
        log = exporter.log()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    info = {
        (s.labels["ns_type"], s.labels["ns_inode"]): s.labels
        for s in families["ns_namespace_info"].samples
    }
    (denied,) = [
        s.value
        for s in families["ns_exporter_scan_skipped_processes"].samples
        if s.name.endswith("_total") and s.labels["reason"] == "permission_denied"
    ]
    return Run(uid, caps, own, info, denied, log)


@pytest.fixture(scope="module")
def with_caps(runtime: Runtime, namespaces: Namespaces) -> Run:
    return _run(runtime, WITH_CAPS)


@pytest.fixture(scope="module")
def without_caps(runtime: Runtime, namespaces: Namespaces) -> Run:
    return _run(runtime, WITHOUT_CAPS)


def test_runs_unprivileged_with_exactly_the_two_capabilities(
    with_caps: Run, without_caps: Run
) -> None:
    assert with_caps.uid == without_caps.uid == EXPORTER_UID
    assert with_caps.effective_caps == (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH)
    assert without_caps.effective_caps == 0


def test_with_the_capabilities_it_sees_root_and_other_users_namespaces(
    with_caps: Run, namespaces: Namespaces
) -> None:
    assert with_caps.info[("uts", namespaces.other_user_uts)]["owner_uid"] == str(OTHER_UID)
    assert with_caps.info[("net", namespaces.root_net)]["owner_uid"] == "0"
    assert with_caps.info[("ipc", namespaces.root_ipc)]["owner_uid"] == "0"
    assert with_caps.own <= with_caps.info.keys()
    assert "insufficient_privilege" not in with_caps.log


def test_without_capabilities_it_starts_warns_and_reports_what_it_can_see(
    without_caps: Run, namespaces: Namespaces
) -> None:
    assert "insufficient_privilege" in without_caps.log
    assert ("uts", namespaces.other_user_uts) not in without_caps.info
    assert ("net", namespaces.root_net) not in without_caps.info
    assert ("ipc", namespaces.root_ipc) not in without_caps.info
    assert without_caps.own <= without_caps.info.keys()


def test_processes_it_cannot_read_are_counted_not_hidden(with_caps: Run, without_caps: Run) -> None:
    """Without the capabilities at least root's and the other user's sleeps are denied; with
    them only processes outside this test's reach (if any: a sandbox's own supervisor) are."""
    assert without_caps.permission_denied >= 2
    assert with_caps.permission_denied < without_caps.permission_denied
