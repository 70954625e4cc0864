"""Attribution of real-world cgroup paths (cgroup v1 and v2, cgroupfs and systemd drivers)."""

from __future__ import annotations

import pytest

from ns_exporter.attribution import PATTERNS, RUNTIMES, attribute
from ns_exporter.model import NO_ATTRIBUTION, Attribution

DOCKER_ID = "3f4a8b9d2c1e0f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"
CTR_ID = "09d185410c4e25236cc24717f881589bb0978b24eafd101624e627a4dd8d3439"
CRIO_ID = "0ba8ac17e4e7a31fb82279503552fe94e64bab4745bf6fd2ff231e7c8ca8bed0"
POD_ID = "a3f0c8e2b1d94e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
KIND_NODE = "d6701ec289c56e4391acb11d07474b3139466857a305490575508a8b7a9fcf22"
POD_UID = "03f3f104-3215-44f2-9686-d4dd1f05a7ed"
POD_UID_SYSTEMD = POD_UID.replace("-", "_")
STATIC_POD_UID = "187bff14cccb94f179e943eacce55bb3"  # static (mirror) pods: a 32-hex hash


def A(runtime: str = "", cid: str = "", unit: str = "", pod: str = "") -> Attribution:  # noqa: N802
    return Attribution(container_runtime=runtime, container_id=cid, unit=unit, pod_uid=pod)


CASES: list[tuple[str, str, Attribution]] = [
    # --- host processes: systemd units only -------------------------------------------
    ("pid 1 (v2)", "/init.scope", A(unit="init.scope")),
    ("system service", "/system.slice/nginx.service", A(unit="nginx.service")),
    (
        "templated service",
        "/system.slice/system-getty.slice/getty@tty1.service",
        A(unit="getty@tty1.service"),
    ),
    (
        "service sub-cgroup (v2 delegation)",
        "/system.slice/containerd.service/sub",
        A(unit="containerd.service"),
    ),
    ("login session", "/user.slice/user-1000.slice/session-3.scope", A(unit="session-3.scope")),
    (
        "user manager",
        "/user.slice/user-1000.slice/user@1000.service/init.scope",
        A(unit="user@1000.service"),
    ),
    (
        "app in user manager",
        "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
        "vte-spawn-f22f14d2-3d44-4304-9879-3fdd0df7b08e.scope",
        A(unit="user@1000.service"),
    ),
    ("kernel thread / root cgroup", "/", NO_ATTRIBUTION),
    ("unknown", "", NO_ATTRIBUTION),
    ("v1 slice only (kubelet escaping its unit)", "/system.slice", NO_ATTRIBUTION),
    ("non-systemd host, custom cgroup", "/mygroup/worker", NO_ATTRIBUTION),
    # --- docker -------------------------------------------------------------------------
    ("docker cgroupfs (v1 and v2)", f"/docker/{DOCKER_ID}", A("docker", DOCKER_ID)),
    ("docker systemd driver", f"/system.slice/docker-{DOCKER_ID}.scope", A("docker", DOCKER_ID)),
    (
        "docker container running systemd",
        f"/system.slice/docker-{DOCKER_ID}.scope/system.slice/nginx.service",
        A("docker", DOCKER_ID, "nginx.service"),
    ),
    (
        "rootless docker",
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/docker-{DOCKER_ID}.scope",
        A("docker", DOCKER_ID, "user@1000.service"),
    ),
    ("dockerd itself", "/system.slice/docker.service", A(unit="docker.service")),
    # --- containerd without kubernetes ---------------------------------------------------
    ("nerdctl systemd driver", f"/system.slice/nerdctl-{CTR_ID}.scope", A("containerd", CTR_ID)),
    ("nerdctl/ctr cgroupfs default namespace", f"/default/{CTR_ID}", A("containerd", CTR_ID)),
    ("containerd shim", "/system.slice/containerd.service", A(unit="containerd.service")),
    # --- kubernetes -----------------------------------------------------------------------
    (
        "kubepods systemd containerd (v2)",
        "/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{CTR_ID}.scope",
        A("kubepods", CTR_ID, pod=POD_UID),
    ),
    (
        "kubepods systemd besteffort cri-o",
        "/kubepods.slice/kubepods-besteffort.slice/"
        f"kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/crio-{CRIO_ID}.scope",
        A("kubepods", CRIO_ID, pod=POD_UID),
    ),
    (
        "kubepods systemd guaranteed (no QoS slice)",
        f"/kubepods.slice/kubepods-pod{POD_UID_SYSTEMD}.slice/cri-containerd-{CTR_ID}.scope",
        A("kubepods", CTR_ID, pod=POD_UID),
    ),
    (
        "kubepods systemd static pod",
        "/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{STATIC_POD_UID}.slice/cri-containerd-{CTR_ID}.scope",
        A("kubepods", CTR_ID, pod=STATIC_POD_UID),
    ),
    (
        "kubepods systemd dockershim",
        "/kubepods.slice/kubepods-besteffort.slice/"
        f"kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/docker-{DOCKER_ID}.scope",
        A("kubepods", DOCKER_ID, pod=POD_UID),
    ),
    (
        "kubepods cri-o conmon (pod known, not a container)",
        "/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{POD_UID_SYSTEMD}.slice/crio-conmon-{CRIO_ID}.scope",
        A("kubepods", "", f"crio-conmon-{CRIO_ID}.scope", pod=POD_UID),
    ),
    (
        "kubepods cgroupfs burstable (v1, k3s, v2 cgroupfs)",
        f"/kubepods/burstable/pod{POD_UID}/{CTR_ID}",
        A("kubepods", CTR_ID, pod=POD_UID),
    ),
    (
        "kubepods cgroupfs guaranteed",
        f"/kubepods/pod{POD_UID}/{CTR_ID}",
        A("kubepods", CTR_ID, pod=POD_UID),
    ),
    (
        "kubepods cgroupfs cri-o",
        f"/kubepods/besteffort/pod{POD_UID}/crio-{CRIO_ID}",
        A("kubepods", CRIO_ID, pod=POD_UID),
    ),
    (
        "kind/minikube: kubepods in a docker container",
        f"/docker/{KIND_NODE}/kubepods.slice/kubepods-besteffort.slice/"
        f"kubepods-besteffort-pod{POD_UID_SYSTEMD}.slice/crio-{CRIO_ID}.scope",
        A("kubepods", CRIO_ID, pod=POD_UID),
    ),
    (
        "kind node systemd driver",
        f"/system.slice/docker-{KIND_NODE}.scope/kubepods/besteffort/pod{POD_UID}/{CTR_ID}",
        A("kubepods", CTR_ID, pod=POD_UID),
    ),
    (
        "kind node's own kubelet",
        f"/system.slice/docker-{KIND_NODE}.scope/system.slice/kubelet.service",
        A("docker", KIND_NODE, "kubelet.service"),
    ),
    ("cri-o outside kubepods", f"/system.slice/crio-{CRIO_ID}.scope", A("cri-o", CRIO_ID)),
    # --- podman ---------------------------------------------------------------------------
    ("podman root systemd", f"/machine.slice/libpod-{POD_ID}.scope", A("podman", POD_ID)),
    (
        "podman v2 split cgroup",
        f"/machine.slice/libpod-{POD_ID}.scope/container",
        A("podman", POD_ID),
    ),
    (
        "podman rootless",
        f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{POD_ID}.scope/container",
        A("podman", POD_ID, "user@1000.service"),
    ),
    ("podman cgroupfs", f"/libpod_parent/libpod-{POD_ID}", A("podman", POD_ID)),
    (
        "podman pod member",
        f"/machine.slice/machine-libpod_pod_{CTR_ID}.slice/libpod-{POD_ID}.scope",
        A("podman", POD_ID),
    ),
    (
        "podman conmon is not the container",
        f"/machine.slice/libpod-conmon-{POD_ID}.scope",
        A(unit=f"libpod-conmon-{POD_ID}.scope"),
    ),
    (
        "podman rootless pause process",
        "/user.slice/user-1000.slice/user@1000.service/user.slice/podman-6696.scope",
        A("podman", "", "user@1000.service"),
    ),
    # --- lxc / lxd / incus ------------------------------------------------------------------
    ("lxc 4+ payload", "/lxc.payload.buster", A("lxc", "buster")),
    (
        "lxd container running systemd",
        "/lxc.payload.buster/system.slice/networking.service",
        A("lxc", "buster", "networking.service"),
    ),
    ("lxc 3.1 payload directory", "/lxc.payload/web-1", A("lxc", "web-1")),
    (
        "lxc 3.0 and older (v1)",
        "/lxc/deloittedigi/system.slice/php7.1-fpm.service",
        A("lxc", "deloittedigi", "php7.1-fpm.service"),
    ),
    ("lxc monitor is not the container", "/lxc.monitor.buster", NO_ATTRIBUTION),
    # --- systemd-nspawn / machined -----------------------------------------------------------
    (
        "nspawn registered machine",
        "/machine.slice/machine-debian.scope",
        A("systemd-nspawn", "debian"),
    ),
    (
        "nspawn escaped name (v2 payload)",
        r"/machine.slice/machine-debian\x2dtest.scope/payload/system.slice/nginx.service",
        A("systemd-nspawn", "debian-test", "nginx.service"),
    ),
    (
        "machinectl start (keep-unit service)",
        "/machine.slice/systemd-nspawn@fedora.service/payload/init.scope",
        A("systemd-nspawn", "fedora", "init.scope"),
    ),
    (
        "libvirt qemu guest",
        r"/machine.slice/machine-qemu\x2d1\x2dvm1.scope/libvirt/emulator",
        A("libvirt", "qemu-1-vm1"),
    ),
    # --- cgroup namespace view: the path relative to the reader's cgroup root ---------------
    (
        "path from inside a cgroup namespace",
        f"/../../docker-{DOCKER_ID}.scope",
        A("docker", DOCKER_ID),
    ),
]


@pytest.mark.parametrize(
    ("path", "expected"), [(p, e) for _, p, e in CASES], ids=[name for name, _, _ in CASES]
)
def test_attribute(path: str, expected: Attribution) -> None:
    assert attribute(path) == expected


def test_every_runtime_has_a_case() -> None:
    covered = {e.container_runtime for _, _, e in CASES}
    assert set(RUNTIMES) <= covered


def test_every_pattern_example_is_attributed_to_its_runtime() -> None:
    """The example in each row matches that row (with placeholders made real)."""
    for row in PATTERNS:
        example = (
            row.example.replace("<64 hex>", CTR_ID)
            .replace("<uid>", POD_UID_SYSTEMD)
            .replace("pod0c7d2e1e-8f4b-4d8e-9c1a-2f0e5b9c7a11", f"pod{POD_UID}")
        )
        assert attribute(example).container_runtime == row.runtime, row.example


def test_pure_and_cached() -> None:
    path = f"/system.slice/docker-{DOCKER_ID}.scope"
    assert attribute(path) is attribute(path)
