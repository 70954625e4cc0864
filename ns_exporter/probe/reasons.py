"""The probe's failure reasons (stdlib enum only: the helper imports this)."""

from __future__ import annotations

import enum
from collections.abc import Mapping


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
