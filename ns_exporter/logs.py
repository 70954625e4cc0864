"""structlog set-up: console renderer on a TTY, logfmt or JSON otherwise. Configure once."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog

LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warn", "error")
LOG_FORMATS: tuple[str, ...] = ("logfmt", "json", "console")

_LEVEL_NUMBERS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}

_RENDERERS: dict[str, Callable[[], Any]] = {
    "logfmt": lambda: structlog.processors.LogfmtRenderer(
        key_order=["ts", "level", "event"], drop_missing=True
    ),
    "json": lambda: structlog.processors.JSONRenderer(sort_keys=False),
    "console": lambda: structlog.dev.ConsoleRenderer(colors=False),
}


def default_format(stream: TextIO) -> str:
    """Console on a terminal, logfmt otherwise."""
    return "console" if stream.isatty() else "logfmt"


def configure(level: str = "info", fmt: str | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog for the whole process."""
    out = stream if stream is not None else sys.stderr
    chosen = fmt or default_format(out)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            _RENDERERS[chosen](),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVEL_NUMBERS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A bound logger tagged with the module name."""
    return structlog.get_logger(module=name)
