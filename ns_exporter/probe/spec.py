"""What a probe module is (ModuleSpec) and the state one probe carries (Probe). Stdlib only.

A module runs in two processes: the *worker* (a fresh single-threaded helper that stays in
the exporter's namespaces and watches from the host side) and its *child*, which enters the
new namespace and looks from the inside. The child is a fork of the worker, so it starts with
a copy of the worker's Probe; it sends back only what it adds (checks, details, facts, log).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

from ns_exporter.probe import kernel
from ns_exporter.probe.reasons import CLEANUP_CHECK, FailureReason

# The helper keeps its imports to what starts fast and forks cheap: no typing, dataclasses.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Fact = int | float | str | bool

DISTINCT_NAMESPACE = "distinct_namespace"
__all__ = ["CLEANUP_CHECK", "DISTINCT_NAMESPACE", "ModuleSpec", "Probe", "ProbeError"]

# Why creating a namespace (unshare, uid maps, the probe's own mounts) failed, by errno.
SETUP_ERRNO_REASONS: dict[int, FailureReason] = {
    errno.EPERM: FailureReason.PERMISSION_DENIED,
    errno.EACCES: FailureReason.PERMISSION_DENIED,
    errno.ENOSPC: FailureReason.LIMIT_REACHED,
    errno.EUSERS: FailureReason.LIMIT_REACHED,
    errno.EINVAL: FailureReason.UNSUPPORTED,
    errno.ENOSYS: FailureReason.UNSUPPORTED,
}


class ProbeError(Exception):
    """A probe that cannot go on, with the failure reason to report."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _logfmt_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class Probe:
    """One probe's working state (worker side; the child holds a copy)."""

    def __init__(
        self,
        module: str,
        exporter_pid: int,
        skip_unshare: bool = False,
        hang: str = "",
    ) -> None:
        self.module = module
        self.exporter_pid = exporter_pid
        self.worker_pid = os.getpid()
        self.started = time.monotonic()
        self.flushed = 0  # how many of `lines` the worker has already sent to the exporter
        self.skip_unshare = skip_unshare  # test seam: create no namespace at all
        self.hang = hang  # test seam: "inside" or "worker" never finishes
        self.mode = ""  # "root" or "userns"
        self.outer_uid = os.geteuid()
        self.outer_gid = os.getegid()
        self.host_inodes: dict[str, int] = {}  # the exporter's namespaces, by /proc/PID/ns link
        self.host_inode = 0  # the exporter's namespace of this kind
        self.inner_inode = 0  # the new namespace, as the child reads it
        self.isolated = False  # child: its namespace differs from the exporter's
        self.child_pid = 0  # the child, as the host sees it
        self.checks: dict[str, bool] = {}
        self.details: dict[str, str] = {}
        self.facts: dict[str, Fact] = {}
        self.lines: list[str] = []
        self.scratch: dict[str, Any] = {}  # what prepare() made, for the other steps

    # --- recording ------------------------------------------------------------------------

    def log(self, level: str, event: str, **data: object) -> None:
        elapsed = (time.monotonic() - self.started) * 1000
        parts = [f"elapsed_ms={elapsed:.2f}", f"level={level}", f"event={event}"]
        parts += [f"{key}={_logfmt_value(value)}" for key, value in data.items()]
        self.lines.append(" ".join(parts))

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks[name] = ok
        self.details[name] = detail
        self.log("info" if ok else "error", "check", check=name, ok=ok, detail=detail)

    def fact(self, name: str, value: Fact) -> None:
        self.facts[name] = value

    def in_host_namespace(self, link: str) -> bool:
        """True when this process is (still) in the exporter's namespace of that kind."""
        return kernel.ns_inode("self", link) == self.host_inodes.get(link)

    # --- the child's side of the conversation ------------------------------------------------

    def start_child_record(self) -> None:
        """In the child: forget the worker's records, keep only what the child adds."""
        self.checks, self.details, self.facts, self.lines = {}, {}, {}, []

    def child_report(self) -> dict[str, Any]:
        return {
            "inner_inode": self.inner_inode,
            "isolated": self.isolated,
            "checks": self.checks,
            "details": self.details,
            "facts": self.facts,
            "log": self.lines,
        }

    def merge_child_report(self, report: dict[str, Any]) -> None:
        self.inner_inode = int(report.get("inner_inode", 0))
        self.isolated = bool(report.get("isolated", False))
        for name, ok in report.get("checks", {}).items():
            self.checks[name] = bool(ok)
        self.details.update(report.get("details", {}))
        self.facts.update(report.get("facts", {}))
        self.lines.extend(f"{line} process=child" for line in report.get("log", []))

    # --- namespace creation ------------------------------------------------------------------

    def create(self, flags: int, what: str) -> None:
        """unshare(flags), or nothing under the test seam; errors become ProbeError."""
        if self.skip_unshare:
            self.log("warn", "unshare_skipped", what=what, why="test seam: no new namespace")
            return
        try:
            kernel.unshare(flags)
        except OSError as err:
            kinds = tuple(kind for flag, kind in kernel.FLAG_KINDS.items() if flags & flag)
            raise setup_error(err, what, kinds) from err
        self.log("debug", "unshare", what=what)


def setup_error(err: OSError, what: str, kinds: tuple[str, ...] = ()) -> ProbeError:
    """The ProbeError for a failed namespace set-up step, with the limits when it is one."""
    reason = SETUP_ERRNO_REASONS.get(err.errno or 0, FailureReason.INTERNAL_ERROR)
    message = f"{what}: {err.strerror or err}"
    if reason is FailureReason.LIMIT_REACHED and kinds:
        message += f" ({limits_text(kinds)})"
    return ProbeError(reason, message)


def limits_text(kinds: tuple[str, ...]) -> str:
    """`/proc/sys/user/max_KIND_namespaces=N` for the kinds a failed unshare() asked for."""
    parts = []
    for kind in kinds:
        path = f"/proc/sys/user/max_{kind}_namespaces"
        try:
            with open(path) as limit:
                parts.append(f"{path}={limit.read().strip()}")
        except FileNotFoundError:
            parts.append(f"{path} missing")
    return ", ".join(parts)


def _nothing(probe: Probe) -> None:
    """A step a module does not need."""


def _no_problems(probe: Probe) -> list[str]:
    return []


class ModuleSpec:
    """A probe module: which namespace it creates and the steps that check it. Immutable.

    Order of the steps: prepare (worker) → [user namespace when unprivileged] → before_fork
    (worker; unshare for kinds that apply to children) → fork → enter + inside (child) →
    outside (worker, child still alive) → the child exits and is reaped → release (worker,
    always; returns problems that fail the `cleanup` check).

    (A plain class rather than a frozen dataclass: the helper does not import dataclasses.)
    """

    __slots__ = (
        "before_fork",
        "checks",
        "enter",
        "flag",
        "for_children",
        "inside",
        "link",
        "name",
        "needs_userns_when_unprivileged",
        "outside",
        "prepare",
        "release",
        "summary",
    )

    def __init__(
        self,
        *,
        name: str,
        link: str,
        flag: int,
        for_children: bool,
        checks: tuple[str, ...],
        summary: str,
        prepare: Callable[[Probe], None] = _nothing,
        before_fork: Callable[[Probe], None] | None = None,
        enter: Callable[[Probe], None] | None = None,
        inside: Callable[[Probe], None] = _nothing,
        outside: Callable[[Probe], None] = _nothing,
        release: Callable[[Probe], list[str]] = _no_problems,
        needs_userns_when_unprivileged: bool = True,
    ) -> None:
        self.name = name
        self.link = link  # the entry in /proc/PID/ns
        self.flag = flag  # CLONE_NEW*
        # unshare() of this kind moves only the caller's future children (pid, time): the
        # worker unshares, then forks; for every other kind the child unshares itself.
        self.for_children = for_children
        self.checks = checks  # every check the module reports, in order (incl. generic ones)
        self.summary = summary  # one line for docs and the CLI
        self.prepare = prepare
        self.before_fork = before_fork  # default: unshare(flag) if for_children
        self.enter = enter  # default: unshare(flag) unless for_children
        self.inside = inside
        self.outside = outside
        self.release = release
        # The user module makes its own user namespace even when unprivileged.
        self.needs_userns_when_unprivileged = needs_userns_when_unprivileged

    def __repr__(self) -> str:
        return f"ModuleSpec(name={self.name!r})"

    def run_before_fork(self, probe: Probe) -> None:
        if self.before_fork is not None:
            self.before_fork(probe)
        elif self.for_children:
            probe.create(self.flag, f"{self.link} namespace")

    def run_enter(self, probe: Probe) -> None:
        if self.enter is not None:
            self.enter(probe)
        elif not self.for_children:
            probe.create(self.flag, f"{self.link} namespace")
