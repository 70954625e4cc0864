"""What a probe found: the failure reasons and the ProbeResult value (stdlib only)."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

Fact = int | float | str | bool


class FailureReason(enum.StrEnum):
    """The fixed set of `probe_failure_info{reason}` values."""

    PERMISSION_DENIED = "permission_denied"  # no CAP_SYS_ADMIN and no user namespace allowed
    LIMIT_REACHED = "limit_reached"  # /proc/sys/user/max_*_namespaces exhausted
    UNSUPPORTED = "unsupported"  # the kernel lacks this namespace kind
    TIMEOUT = "timeout"  # the probe did not finish within its timeout
    ISOLATION_BREACH = "isolation_breach"  # a check of what the namespace isolates failed
    CLEANUP_FAILED = "cleanup_failed"  # something the probe created outlived it
    INTERNAL_ERROR = "internal_error"  # anything else (see the probe's log)


FAILURE_REASONS: tuple[FailureReason, ...] = tuple(FailureReason)

# The check whose failure means cleanup_failed rather than isolation_breach.
CLEANUP_CHECK = "cleanup"


def reason_for_checks(checks: Mapping[str, bool]) -> FailureReason | None:
    """isolation_breach when an isolation check failed, else cleanup_failed, else None."""
    failed = [name for name, ok in checks.items() if not ok]
    if any(name != CLEANUP_CHECK for name in failed):
        return FailureReason.ISOLATION_BREACH
    return FailureReason.CLEANUP_FAILED if failed else None


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: its verdict, the checks it ran, why it failed, its log and what it saw."""

    module: str
    success: bool
    duration: float  # seconds, as measured by the exporter
    checks: Mapping[str, bool] = field(default_factory=_frozen)  # in the module's order
    details: Mapping[str, str] = field(default_factory=_frozen)  # check → one-line explanation
    failure_reason: FailureReason | None = None
    log: tuple[str, ...] = ()
    facts: Mapping[str, Fact] = field(default_factory=_frozen)
    # "root" (CAP_SYS_ADMIN, namespaces created directly), "userns" (through an unprivileged
    # user namespace) or "" when the helper never said.
    mode: str = ""

    @classmethod
    def failed(
        cls,
        module: str,
        duration: float,
        reason: FailureReason,
        log: Sequence[str] = (),
        facts: Mapping[str, Fact] | None = None,
    ) -> ProbeResult:
        return cls(
            module, False, duration, failure_reason=reason, log=tuple(log), facts=_frozen(facts)
        )

    @classmethod
    def from_helper(
        cls, module: str, duration: float, result: Mapping[str, Any], log: Sequence[str]
    ) -> ProbeResult:
        """Build from the helper's `result` message (plain JSON data)."""
        checks = {str(k): bool(v) for k, v in dict(result.get("checks", {})).items()}
        reason_text = result.get("reason")
        reason = FailureReason(reason_text) if reason_text else reason_for_checks(checks)
        return cls(
            module=module,
            success=reason is None and bool(checks),
            duration=duration,
            checks=_frozen(checks),
            details=_frozen({str(k): str(v) for k, v in dict(result.get("details", {})).items()}),
            failure_reason=reason if reason is not None or checks else FailureReason.INTERNAL_ERROR,
            log=tuple(log),
            facts=_frozen(dict(result.get("facts", {}))),
            mode=str(result.get("mode", "")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "success": self.success,
            "duration_seconds": round(self.duration, 6),
            "failure_reason": self.failure_reason.value if self.failure_reason else None,
            "mode": self.mode,
            "checks": dict(self.checks),
            "details": dict(self.details),
            "facts": dict(self.facts),
            "log": list(self.log),
        }
