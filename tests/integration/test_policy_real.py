"""Policy against real namespaces: unshare and `ip netns add` show up as unexpected."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.helpers import Exporter, ns_inode, run_exporter, spawned, wait_for

pytestmark = pytest.mark.root

NS_TYPES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")


def info_of(exporter: Exporter, ns_type: str, inode: int) -> dict[str, str] | None:
    for sample in exporter.samples("ns_namespace_info"):
        if sample.labels["ns_type"] == ns_type and sample.labels["ns_inode"] == str(inode):
            return dict(sample.labels)
    return None


def is_unexpected(exporter: Exporter, ns_type: str, inode: int) -> bool:
    return exporter.value("ns_namespace_unexpected", ns_type=ns_type, ns_inode=str(inode)) == 1


def host_policy(exporter: Exporter) -> str:
    """A policy that expects only the host's namespaces: those this test process lives in,
    by the command and owner of their lowest process (no inodes in policies)."""
    rules = []
    for ns_type in NS_TYPES:
        labels = wait_for(lambda t=ns_type: info_of(exporter, t, ns_inode(os.getpid(), t)))
        rules.append(
            {
                "name": f"host {ns_type}",
                "ns_type": ns_type,
                "command": re.escape(labels["command"]),
                "owner": labels["owner"],
                "holder": "process",
            }
        )
    return yaml.safe_dump({"expected": rules})


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    tmp = tmp_path_factory.mktemp("policy")
    config = tmp / "config.yml"
    config.write_text("expected:\n  - {name: placeholder, command: no-such-command}\n")
    with run_exporter("--scan.interval=0.5s", f"--config.file={config}", tmp_dir=str(tmp)) as exp:
        # Now that the exporter runs, learn the host's namespaces and expect only them
        # (reloaded with SIGHUP, as an operator would).
        before = exp.value("ns_exporter_config_last_reload_success_timestamp_seconds")
        config.write_text(host_policy(exp))
        exp.process.send_signal(signal.SIGHUP)
        wait_for(
            lambda: exp.value("ns_exporter_config_last_reload_success_timestamp_seconds") != before
        )
        assert exp.value("ns_exporter_config_last_reload_successful") == 1
        exp.wait_scans(2)
        for ns_type in NS_TYPES:
            assert not is_unexpected(exp, ns_type, ns_inode(os.getpid(), ns_type)), ns_type
        yield exp


@pytest.fixture
def unique_sleep(tmp_path: Path) -> str:
    """A copy of sleep with a name (comm) no other process on the machine has."""
    path = tmp_path / f"polsl{os.getpid() % 100000}"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", path)
    return str(path)


def test_unshare_namespace_is_unexpected_then_gone(exporter: Exporter, unique_sleep: str) -> None:
    comm = os.path.basename(unique_sleep)
    with spawned(["unshare", "--uts", "--ipc", unique_sleep, "300"]) as proc:
        pid = proc.pid  # unshare without --fork execs the command in place
        wait_for(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == comm)
        uts, ipc = ns_inode(pid, "uts"), ns_inode(pid, "ipc")
        # Within one scan interval: the second scan that completes from now started after
        # the namespaces existed.
        exporter.wait_scans(2)
        assert is_unexpected(exporter, "uts", uts)
        assert is_unexpected(exporter, "ipc", ipc)
        labels = info_of(exporter, "uts", uts)
        assert labels is not None
        assert labels["command"] == comm and labels["pid"] == str(pid)
        assert labels["owner"] == "root" and labels["holder"] == "process"
        assert (exporter.value("ns_unexpected_namespaces", ns_type="uts") or 0) >= 1
        # its net namespace is the host's, which the policy expects
        assert not is_unexpected(exporter, "net", ns_inode(pid, "net"))
    exporter.wait_scans(2)
    assert not any(s.labels["command"] == comm for s in exporter.samples("ns_namespace_info"))
    after = info_of(exporter, "uts", uts)
    if after is None:
        assert not is_unexpected(exporter, "uts", uts)
    else:  # the kernel recycled the inode for a namespace of some other test on the machine
        assert after["command"] != comm


@contextlib.contextmanager
def netns(name: str) -> Iterator[None]:
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=30)


def test_ip_netns_add_is_a_mount_held_unexpected_namespace(exporter: Exporter) -> None:
    name = f"nsexp-policy-{os.getpid()}"
    with netns(name):
        inode = os.stat(f"/run/netns/{name}").st_ino
        exporter.wait_scans(2)
        labels = info_of(exporter, "net", inode)
        assert labels is not None, "mount-held namespace missing"
        assert labels["holder"] == "mount" and labels["pid"] == "" and labels["command"] == ""
        assert exporter.value("ns_namespace_processes", ns_type="net", ns_inode=str(inode)) == 0
        assert is_unexpected(exporter, "net", inode)
    exporter.wait_scans(2)
    after = info_of(exporter, "net", inode)
    if after is not None:  # recycled by another namespace on the machine, not ours
        assert after["holder"] != "mount" or any(
            os.stat(path).st_ino == inode for path in glob.glob("/run/netns/*")
        )
