"""The one error type for bad configuration: it names the file, the key and the reason."""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration the exporter refuses, e.g. `cfg.yml: expected[2].command: bad regex ...`."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason
