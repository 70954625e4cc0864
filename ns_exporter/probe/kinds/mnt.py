"""mnt: a mount made inside a new mount namespace is invisible to the host.

The worker makes an empty directory; the child, in its own mount namespace with private
propagation, mounts a small tmpfs there and writes a marker file. While the child waits, the
host must see neither the mount nor the file. The child mounts nothing unless its mount
namespace is proven new, so a broken namespace never changes the host's mounts.
"""

from __future__ import annotations

import os
import re

from ns_exporter.probe import kernel
from ns_exporter.probe.spec import CLEANUP_CHECK, DISTINCT_NAMESPACE, ModuleSpec, Probe, setup_error

MARKER = "ns-exporter-probe-marker"
TMPFS_FLAGS = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC


_OCTAL = re.compile(r"\\([0-7]{3})")


def mountpoints(mountinfo: str = "/proc/self/mountinfo") -> set[str]:
    """Mount points of the reader's mount namespace (field 5 of mountinfo, octal-unescaped)."""
    with open(mountinfo, encoding="utf-8", errors="surrogateescape") as lines:
        return {
            _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), line.split(" ", 5)[4]) for line in lines
        }


def prepare(probe: Probe) -> None:
    base = os.environ.get("TMPDIR") or "/tmp"
    directory = os.path.join(base, "ns-exporter-probe-" + os.urandom(8).hex())
    os.mkdir(directory, 0o700)
    probe.scratch["dir"] = directory
    probe.log("debug", "mountpoint_created", path=directory)


def inside(probe: Probe) -> None:
    directory = str(probe.scratch["dir"])
    mounted = False
    if probe.isolated:
        try:
            kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
            kernel.mount("ns-probe", directory, "tmpfs", TMPFS_FLAGS, "size=16k,mode=0700")
        except OSError as err:
            raise setup_error(err, "mount a tmpfs inside") from err
        with open(os.path.join(directory, MARKER), "w") as marker:
            marker.write("made inside the probe's mount namespace\n")
        mounted = directory in mountpoints() and os.path.exists(os.path.join(directory, MARKER))
    else:
        probe.log("warn", "mount_skipped", why="mount namespace is the host's")
    probe.fact("inner_mount", mounted)
    probe.check(
        "mount_visible_inside",
        mounted,
        f"inside, a tmpfs on {directory} with a marker file"
        + ("" if mounted else " could not be made"),
    )


def outside(probe: Probe) -> None:
    directory = str(probe.scratch["dir"])
    made_inside = bool(probe.facts.get("inner_mount"))
    host_sees_mount = directory in mountpoints()
    host_sees_marker = os.path.exists(os.path.join(directory, MARKER))
    probe.check(
        "mount_hidden",
        made_inside and not host_sees_mount and not host_sees_marker,
        f"the host sees {'a' if host_sees_mount else 'no'} mount on {directory} and "
        f"{'the' if host_sees_marker else 'no'} marker file"
        + ("" if made_inside else " (nothing was mounted inside)"),
    )


def release(probe: Probe) -> list[str]:
    directory = probe.scratch.get("dir")
    if directory is None:
        return []
    problems = []
    if directory in mountpoints():
        problems.append(f"{directory} is still a mount point on the host")
        kernel.umount(directory)
    leftovers = os.listdir(directory)
    if leftovers:
        problems.append(f"{directory} is not empty: {leftovers[:5]}")
        for name in leftovers:
            os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    return problems


SPEC = ModuleSpec(
    name="mnt",
    link="mnt",
    flag=kernel.CLONE_NEWNS,
    for_children=False,
    checks=("mount_visible_inside", "mount_hidden", DISTINCT_NAMESPACE, CLEANUP_CHECK),
    summary="a tmpfs mounted inside (private propagation) is invisible to the host",
    prepare=prepare,
    inside=inside,
    outside=outside,
    release=release,
)
