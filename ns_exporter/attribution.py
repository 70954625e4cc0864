"""Attribution: which container runtime, container and systemd unit a cgroup path belongs to.

A table of patterns, one row per runtime and cgroup layout (cgroupfs driver paths like
`/docker/ID`, systemd driver scopes like `docker-ID.scope`, cgroup v1 and v2 alike). Every
row is searched in the whole path; when several match (kind runs kubepods inside a docker
container; nspawn machines run their own systemd), the innermost container wins, and among
rows matching up to the same point the longest match (kubepods with its pod before the bare
`cri-containerd-ID.scope`).

The unit is the outermost systemd unit (service, scope, socket, mount or swap) that is not a
container's own scope: `nginx.service`, `user@1000.service` for everything in a user's
session manager, `session-3.scope` for a login, `init.scope` for PID 1, `nginx.service`
inside an nspawn machine or an LXC container that runs systemd.

Pure: a string in, an Attribution out; nothing here reads files.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ns_exporter.model import NO_ATTRIBUTION, Attribution

_ID64 = r"[0-9a-f]{64}"
_END = r"(?=/|$)"
_START = r"(?:^|(?<=/))"


@dataclass(frozen=True, slots=True)
class Pattern:
    """One row: a runtime name and a regex with an `id` and optionally a `pod` group."""

    runtime: str
    regex: re.Pattern[str]
    example: str  # a real-world path this row is for (documentation; the tests use more)


def _row(runtime: str, regex: str, example: str) -> Pattern:
    return Pattern(runtime, re.compile(_START + regex + _END), example)


# The runtimes a policy may name (container_runtime: ...), in the order of the table.
PATTERNS: tuple[Pattern, ...] = (
    # Kubernetes, cgroupfs driver (v1 and v2; containerd, cri-o or dockershim underneath):
    # /kubepods/burstable/pod<uid>/<id>, /kubepods/pod<uid>/<id> (guaranteed QoS),
    # /kubepods/besteffort/pod<uid>/crio-<id>.
    _row(
        "kubepods",
        r"kubepods(?:/besteffort|/burstable)?/pod(?P<pod>[0-9a-f][0-9a-f_-]*)"
        rf"(?:/(?:crio-|cri-containerd-|docker-)?(?P<id>{_ID64}))?",
        "/kubepods/burstable/pod0c7d2e1e-8f4b-4d8e-9c1a-2f0e5b9c7a11/<64 hex>",
    ),
    # Kubernetes, systemd driver: kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope
    _row(
        "kubepods",
        r"kubepods(?:-besteffort|-burstable)?-pod(?P<pod>[0-9a-f][0-9a-f_]*)\.slice"
        rf"(?:/(?:crio|cri-containerd|docker)-(?P<id>{_ID64})\.scope)?",
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/"
        "cri-containerd-<64 hex>.scope",
    ),
    # Docker: /docker/<id> (cgroupfs), /system.slice/docker-<id>.scope (systemd), rootless
    # /user.slice/user-1000.slice/user@1000.service/user.slice/docker-<id>.scope.
    _row(
        "docker", rf"docker[-/](?P<id>{_ID64})(?:\.scope)?", "/system.slice/docker-<64 hex>.scope"
    ),
    # containerd without Kubernetes: CRI scopes, nerdctl (systemd driver), nerdctl/ctr's
    # cgroupfs default /default/<id>.
    _row(
        "containerd",
        rf"(?:cri-containerd-|nerdctl-)(?P<id>{_ID64})\.scope",
        "/system.slice/nerdctl-<64 hex>.scope",
    ),
    _row("containerd", rf"default/(?P<id>{_ID64})", "/default/<64 hex>"),
    # CRI-O outside a kubepods hierarchy (systemd and cgroupfs forms).
    _row("cri-o", rf"crio-(?P<id>{_ID64})(?:\.scope)?", "/system.slice/crio-<64 hex>.scope"),
    # Podman: /machine.slice/libpod-<id>.scope, rootless under user@UID.service,
    # cgroupfs /libpod_parent/libpod-<id>. Not libpod-conmon-<id>.scope (the monitor).
    _row("podman", rf"libpod-(?P<id>{_ID64})(?:\.scope)?", "/machine.slice/libpod-<64 hex>.scope"),
    # Rootless podman's pause process, which holds the user's rootless user namespace.
    _row(
        "podman",
        r"podman-[0-9]+\.scope",
        "/user.slice/user-1000.slice/user@1000.service/user.slice/podman-6696.scope",
    ),
    # LXC 4+, LXD, Incus: /lxc.payload.NAME (not lxc.monitor.NAME); LXC 3.1-3.2
    # /lxc.payload/NAME; LXC 3.0 and older: /lxc/NAME.
    _row("lxc", r"lxc\.payload[./](?P<id>[^/]+)", "/lxc.payload.web1"),
    _row("lxc", r"lxc/(?P<id>[^/]+)", "/lxc/web1"),
    # libvirt's machines registered with systemd-machined (before the nspawn row: same form).
    _row(
        "libvirt",
        r"machine-(?P<id>(?:qemu|lxc)\\x2d[^/]*)\.scope",
        r"/machine.slice/machine-qemu\x2d1\x2dvm1.scope",
    ),
    # systemd-nspawn (and other machined machines): /machine.slice/machine-NAME.scope,
    # NAME escaped by systemd (`-` as \x2d).
    _row("systemd-nspawn", r"machine-(?P<id>[^/]+)\.scope", "/machine.slice/machine-debian.scope"),
    # `machinectl start NAME` runs nspawn --keep-unit in systemd-nspawn@NAME.service.
    _row(
        "systemd-nspawn",
        r"systemd-nspawn@(?P<id>[^/]+)\.service",
        "/machine.slice/systemd-nspawn@debian.service/payload",
    ),
)

# The runtime names a policy rule may use.
RUNTIMES: tuple[str, ...] = tuple(dict.fromkeys(p.runtime for p in PATTERNS))

# Process-holding systemd unit kinds (slices never hold processes directly).
_UNIT = re.compile(r"[^/]+\.(?:service|scope|socket|mount|swap)")

_UNESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


def _unescape(name: str) -> str:
    """A systemd-escaped name (`debian\\x2dtest`) as the user wrote it (`debian-test`)."""
    return _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


@dataclass(frozen=True, slots=True)
class _Match:
    pattern: Pattern
    start: int
    end: int
    container_id: str
    pod_uid: str


def _matches(path: str) -> list[_Match]:
    found: list[_Match] = []
    for pattern in PATTERNS:
        for m in pattern.regex.finditer(path):
            groups = m.groupdict()
            pod = (groups.get("pod") or "").replace("_", "-")
            found.append(_Match(pattern, m.start(), m.end(), groups.get("id") or "", pod))
    return found


def _unit(path: str, spans: list[tuple[int, int]]) -> str:
    """The outermost process-holding unit whose segment lies outside every container match."""
    for m in _UNIT.finditer(path):
        starts_segment = m.start() == 0 or path[m.start() - 1] == "/"
        ends_segment = m.end() == len(path) or path[m.end()] == "/"
        inside = any(start <= m.start() < end for start, end in spans)
        if starts_segment and ends_segment and not inside:
            return m.group(0)
    return ""


@functools.lru_cache(maxsize=4096)
def attribute(cgroup_path: str) -> Attribution:
    """Container runtime, container id (pod uid for kubepods) and systemd unit of a cgroup path.

    Empty fields when unknown; `attribute("")` is NO_ATTRIBUTION.
    """
    if not cgroup_path or cgroup_path == "/":
        return NO_ATTRIBUTION
    found = _matches(cgroup_path)
    unit = _unit(cgroup_path, [(m.start, m.end) for m in found])
    if not found:
        return Attribution(unit=unit) if unit else NO_ATTRIBUTION
    # Innermost: furthest end; then the longest match; then table order (stable sort).
    best = max(found, key=lambda m: (m.end, m.end - m.start))
    container_id = best.container_id
    if best.pattern.runtime in ("systemd-nspawn", "libvirt"):
        container_id = _unescape(container_id)
    return Attribution(
        container_runtime=best.pattern.runtime,
        container_id=container_id,
        unit=unit,
        pod_uid=best.pod_uid,
    )
