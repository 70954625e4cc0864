"""The probe without privileges: as uid 65534 (setpriv) it must succeed through an
unprivileged user namespace where the kernel allows one, and fail with permission_denied
(or limit_reached when user.max_user_namespaces is 0) where it does not — never crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import ns_exporter
from ns_exporter.probe.modules import MODULE_NAMES, MODULES
from ns_exporter.probe.result import FailureReason, ProbeResult

pytestmark = pytest.mark.root

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]
BOOT = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from ns_exporter.probe.forkserver import main; sys.exit(main(sys.argv[2:]))"
)


def _as_nobody(*argv: str, cwd: str = "/") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, *argv], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def package_copy() -> Iterator[str]:
    """The probe helper (stdlib only) where uid 65534 can read it: the checkout may be in a
    home directory it cannot enter."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    root = tempfile.mkdtemp(prefix="ns-exporter-rootless-")
    try:
        source = Path(ns_exporter.__file__).parent
        target = Path(root) / "ns_exporter"
        target.mkdir()
        shutil.copy(source / "__init__.py", target / "__init__.py")
        shutil.copytree(source / "probe", target / "probe", ignore=shutil.ignore_patterns("*.pyc"))
        for path in [Path(root), *Path(root).rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield root
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def python_for_nobody() -> str:
    """An interpreter uid 65534 can run (pyenv interpreters under /root are not)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        if (
            os.path.exists(candidate)
            and _as_nobody(candidate, "-I", "-S", "-c", "pass").returncode == 0
        ):
            return candidate
    pytest.skip("no Python interpreter that uid 65534 may run")


def kernel_allows_unprivileged_userns() -> bool:
    return _as_nobody("unshare", "--user", "--map-root-user", "true").returncode == 0


def test_rootless_probe_of_every_module(package_copy: str, python_for_nobody: str) -> None:
    done = _as_nobody(
        python_for_nobody, "-I", "-S", "-c", BOOT, package_copy, "--once", *MODULE_NAMES
    )
    assert done.stderr == "", done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["module"] for line in lines] == list(MODULE_NAMES)
    allowed = kernel_allows_unprivileged_userns()
    for line in lines:
        result = ProbeResult.from_helper(line["module"], 0.0, line["result"], line["log"])
        log = "\n".join(result.log)
        assert result.mode == "userns", log
        if allowed:
            assert result.success, log
            assert list(result.checks) == list(MODULES[result.module].checks)
        else:
            assert result.failure_reason in (
                FailureReason.PERMISSION_DENIED,
                FailureReason.LIMIT_REACHED,
            ), log
    assert done.returncode == (0 if allowed else 1)
    if allowed:
        user = next(line for line in lines if line["module"] == "user")
        assert user["result"]["facts"]["uid_map"] == "0 65534 1"


def _results(stdout: str) -> dict[str, ProbeResult]:
    found = {}
    for line in stdout.splitlines():
        data = json.loads(line)
        found[data["module"]] = ProbeResult.from_helper(
            data["module"], 0.0, data["result"], data["log"]
        )
    return found


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_limit_reached_when_the_kernel_limit_is_zero(
    package_copy: str, python_for_nobody: str, module: str
) -> None:
    """The limits are per user namespace: set this kind's to 0 in a throw-away one."""
    kind = MODULES[module].link
    script = (
        f"echo 0 > /proc/sys/user/max_{kind}_namespaces && "
        f'exec "$0" -I -S -c "$1" "$2" --once {module}'
    )
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            script,
            python_for_nobody,
            BOOT,
            package_copy,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        check=False,
    )
    assert done.returncode == 1, done.stderr
    result = _results(done.stdout)[module]
    assert result.failure_reason is FailureReason.LIMIT_REACHED, "\n".join(result.log)
    assert f"max_{kind}_namespaces=0" in "\n".join(result.log)


def test_permission_denied_where_user_namespaces_are_refused(
    package_copy: str, python_for_nobody: str
) -> None:
    """The kernel refuses unshare(CLONE_NEWUSER) to a chrooted process (EPERM), as seccomp
    or a sysctl would: without CAP_SYS_ADMIN every module must fail with permission_denied."""
    root = tempfile.mkdtemp(prefix="ns-exporter-chroot-")
    try:
        inner = " ".join(
            [
                *NOBODY,
                python_for_nobody,
                "-I",
                "-S",
                "-c",
                f"'{BOOT}'",
                package_copy,
                "--once",
                *list(MODULE_NAMES),
            ]
        )
        done = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount --rbind / {root} && exec chroot {root} {inner}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
            check=False,
        )
    finally:
        os.rmdir(root)
    assert done.returncode == 1, done.stderr
    results = _results(done.stdout)
    assert list(results) == list(MODULE_NAMES)
    for module, result in results.items():
        assert result.mode == "userns", module
        assert result.failure_reason is FailureReason.PERMISSION_DENIED, "\n".join(result.log)
