"""What a probe found: the ProbeResult value (exporter side)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ns_exporter.probe.reasons import (
    CLEANUP_CHECK,
    FAILURE_REASONS,
    FailureReason,
    reason_for_checks,
)

__all__ = ["CLEANUP_CHECK", "FAILURE_REASONS", "FailureReason", "ProbeResult", "reason_for_checks"]

Fact = int | float | str | bool


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
