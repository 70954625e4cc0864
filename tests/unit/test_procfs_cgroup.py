"""Which path of /proc/PID/cgroup attribution uses: v2, hybrid and v1 layouts."""

from __future__ import annotations

import pytest

from ns_exporter.attribution import attribute
from ns_exporter.procfs.cgroup import cgroup_path

DOCKER_ID = "abddff03dfd7710c79a750ce3e730365cbb2c8247a974170c1062683bc3e9152"

V2_SERVICE = "0::/system.slice/nginx.service\n"

V1_SYSTEMD_HOST = """\
11:cpuacct,cpu:/system.slice
10:perf_event:/
9:pids:/system.slice/kubelet.service
8:devices:/system.slice/kubelet.service
7:blkio:/system.slice
6:memory:/system.slice
5:cpuset:/
4:net_prio,net_cls:/
3:hugetlb:/
2:freezer:/
1:name=systemd:/system.slice/kubelet.service
"""

# LXD on Ubuntu 20.04 (hybrid): every hierarchy including the unified one agrees.
HYBRID_LXD = """\
12:freezer:/lxc.payload.buster
11:memory:/lxc.payload.buster/system.slice/networking.service
10:devices:/lxc.payload.buster/system.slice/networking.service
9:rdma:/lxc.payload.buster
8:hugetlb:/lxc.payload.buster
7:blkio:/lxc.payload.buster
6:cpu,cpuacct:/lxc.payload.buster
5:perf_event:/lxc.payload.buster
4:net_cls,net_prio:/lxc.payload.buster
3:cpuset:/lxc.payload.buster
2:pids:/lxc.payload.buster/system.slice/networking.service
1:name=systemd:/lxc.payload.buster/system.slice/networking.service
0::/lxc.payload.buster/system.slice/networking.service
"""

# Docker's cgroupfs driver on a hybrid host: the container is in every v1 hierarchy, while the
# unified hierarchy still shows where the shim was started.
HYBRID_DOCKER_CGROUPFS = f"""\
12:pids:/docker/{DOCKER_ID}
11:memory:/docker/{DOCKER_ID}
3:cpu,cpuacct:/docker/{DOCKER_ID}
1:name=systemd:/docker/{DOCKER_ID}
0::/system.slice/containerd.service
"""

# Alpine/OpenRC with v1 controllers only: no name=systemd, some controllers untouched.
V1_NO_SYSTEMD = f"""\
6:cpuset:/
5:memory:/docker/{DOCKER_ID}
4:cpu,cpuacct:/docker/{DOCKER_ID}
3:misc:/
"""


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (V2_SERVICE, "/system.slice/nginx.service"),
        (V1_SYSTEMD_HOST, "/system.slice/kubelet.service"),
        (HYBRID_LXD, "/lxc.payload.buster/system.slice/networking.service"),
        (HYBRID_DOCKER_CGROUPFS, f"/docker/{DOCKER_ID}"),
        (V1_NO_SYSTEMD, f"/docker/{DOCKER_ID}"),
        ("0::/\n", "/"),
        (
            "0::/user.slice/user-1000.slice/session-2.scope (deleted)\n",
            "/user.slice/user-1000.slice/session-2.scope",
        ),
        ("", ""),
        ("garbage without colons\n0::/init.scope\n", "/init.scope"),
        ("1:name=systemd:/\n0::/init.scope\n", "/init.scope"),
    ],
    ids=[
        "v2",
        "v1-systemd",
        "hybrid-lxd",
        "hybrid-docker-cgroupfs",
        "v1-no-systemd",
        "v2-root",
        "deleted",
        "empty",
        "garbage",
        "hybrid-root-v1",
    ],
)
def test_cgroup_path(content: str, path: str) -> None:
    assert cgroup_path(content) == path
    assert cgroup_path(content.encode()) == path


def test_bytes_that_are_not_utf8_do_not_raise() -> None:
    assert cgroup_path(b"0::/system.slice/we\xffird.service\n").startswith("/system.slice/we")


def test_attribution_from_file_content() -> None:
    assert attribute(cgroup_path(HYBRID_DOCKER_CGROUPFS)).container_runtime == "docker"
    assert attribute(cgroup_path(HYBRID_LXD)).container_id == "buster"
