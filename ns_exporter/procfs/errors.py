"""The one place that turns OS errors from procfs into typed outcomes.

A process can exit between listing /proc and reading its files (ENOENT, ESRCH), and a
process of another user may be unreadable without CAP_SYS_PTRACE (EACCES, EPERM).
"""

from __future__ import annotations

import errno

from ns_exporter.model import SkipReason

_ERRNO_REASONS: dict[int, SkipReason] = {
    errno.ENOENT: SkipReason.VANISHED,
    errno.ESRCH: SkipReason.VANISHED,
    errno.EACCES: SkipReason.PERMISSION_DENIED,
    errno.EPERM: SkipReason.PERMISSION_DENIED,
}


class ProcError(Exception):
    """A procfs read that failed for an expected reason."""

    def __init__(self, reason: SkipReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class ParseError(ValueError):
    """procfs content that does not have the expected shape."""


def skip_reason(err: OSError) -> SkipReason | None:
    """The skip reason for an OS error, or None when it is unexpected."""
    return _ERRNO_REASONS.get(err.errno) if err.errno is not None else None


def translate(err: OSError) -> Exception:
    """A typed ProcError for expected errors; the original error otherwise."""
    reason = skip_reason(err)
    return ProcError(reason, str(err)) if reason is not None else err
