"""net: a new network namespace has only a loopback interface, down, and no host sockets.

The worker lists the host's interfaces and listens on an abstract unix socket (abstract
socket names are per network namespace). Inside, only `lo` may exist, it must be down, no
host interface may be visible and connecting to the worker's socket must be refused.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe

LOOPBACK = "lo"


def interfaces() -> list[str]:
    return sorted(name for _, name in socket.if_nameindex())


def interface_flags(name: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", name.encode(), 0)
        answer = fcntl.ioctl(sock.fileno(), kernel.SIOCGIFFLAGS, request)
    flags: int = struct.unpack_from("16sH", answer)[1]
    return flags


def prepare(probe: Probe) -> None:
    probe.scratch["host_interfaces"] = interfaces()
    name = b"\0ns-exporter-probe-" + os.urandom(8).hex().encode()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(name)
    listener.listen(1)
    probe.scratch["listener"] = listener
    probe.scratch["socket_name"] = name
    probe.fact("host_interfaces", len(probe.scratch["host_interfaces"]))


def inside(probe: Probe) -> None:
    seen = interfaces()
    probe.fact("inner_interfaces", " ".join(seen))
    probe.check("only_loopback", seen == [LOOPBACK], f"interfaces inside: {seen}")

    if LOOPBACK in seen:
        up = bool(interface_flags(LOOPBACK) & kernel.IFF_UP)
        probe.check("loopback_down", not up, f"lo inside is {'UP' if up else 'down'}")
    else:
        probe.check("loopback_down", False, "no lo inside")

    host = [name for name in probe.scratch["host_interfaces"] if name != LOOPBACK]
    leaked = sorted(set(host) & set(seen))
    probe.check(
        "host_interfaces_hidden",
        not leaked,
        f"{len(host)} host interface(s) besides lo, visible inside: {leaked or 'none'}",
    )

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        try:
            client.connect(probe.scratch["socket_name"])
            outcome = "connected"
        except ConnectionRefusedError:
            outcome = "refused"
        except OSError as err:
            outcome = f"error {err.strerror}"
    probe.check(
        "host_socket_unreachable",
        outcome == "refused",
        f"connecting to the host's abstract unix socket from inside: {outcome}",
    )


def release(probe: Probe) -> list[str]:
    listener = probe.scratch.pop("listener", None)
    if listener is not None:
        listener.close()
    return []


SPEC = ModuleSpec(
    name="net",
    link="net",
    flag=kernel.CLONE_NEWNET,
    for_children=False,
    checks=(
        "only_loopback",
        "loopback_down",
        "host_interfaces_hidden",
        "host_socket_unreachable",
        DISTINCT_NAMESPACE,
        CLEANUP_CHECK,
    ),
    summary="only lo exists and is down, host interfaces and sockets are out of reach",
    prepare=prepare,
    inside=inside,
    release=release,
)
