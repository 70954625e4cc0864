"""Probe settings: the `probe:` section of the config file, validated into ProbeSettings.

```yaml
probe:
  timeout: 5s            # cap for every module (a scrape's own timeout may be shorter)
  max_concurrent: 4      # probes running at once; more get HTTP 503
  max_per_second: 10     # probes started per second; more get HTTP 429
  modules:               # per-module overrides (all eight modules are enabled by default)
    pid: {timeout: 2s}
    time: {enabled: false}
  periodic:              # optional: probe in the background, results on /metrics
    interval: 60s
    modules: [pid, net]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ns_exporter.config import parse_duration
from ns_exporter.config_error import ConfigError
from ns_exporter.probe.modules import MODULE_NAMES

DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 60.0
SECTION = "probe"


def _all_timeouts(seconds: float) -> Mapping[str, float]:
    return MappingProxyType(dict.fromkeys(MODULE_NAMES, seconds))


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How /probe, `ns-exporter probe` and periodic probing behave."""

    timeouts: Mapping[str, float] = field(default_factory=lambda: _all_timeouts(DEFAULT_TIMEOUT))
    enabled_modules: frozenset[str] = frozenset(MODULE_NAMES)
    max_concurrent: int = 4
    max_per_second: float = 10.0
    periodic_interval: float | None = None  # seconds; None: no periodic probing
    periodic_modules: tuple[str, ...] = ()

    def timeout_for(self, module: str) -> float:
        return self.timeouts.get(module, DEFAULT_TIMEOUT)


DEFAULT_PROBE_SETTINGS = ProbeSettings()


class _Reader:
    """Validates one mapping of the section, naming the full key in every error."""

    def __init__(self, file: str, prefix: str, value: object) -> None:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(file, prefix, f"must be a mapping, not {type(value).__name__}")
        self.file, self.prefix, self.value = file, prefix, value

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def only(self, *allowed: str) -> None:
        for name in self.value:
            if name not in allowed:
                raise ConfigError(
                    self.file,
                    self.key(str(name)),
                    f"unknown key (allowed: {', '.join(allowed)})",
                )

    def duration(self, name: str, default: float) -> float:
        raw = self.value.get(name)
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise ConfigError(self.file, self.key(name), "must be a duration such as 5s or 500ms")
        try:
            seconds = parse_duration(str(raw))
        except ValueError as err:
            raise ConfigError(self.file, self.key(name), str(err)) from None
        if seconds > MAX_TIMEOUT:
            raise ConfigError(self.file, self.key(name), f"must be at most {MAX_TIMEOUT:g}s")
        return seconds

    def number(self, name: str, default: float, integer: bool) -> float:
        raw = self.value.get(name)
        if raw is None:
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(raw, bool) or not isinstance(raw, kinds) or raw <= 0:
            what = "a positive integer" if integer else "a positive number"
            raise ConfigError(self.file, self.key(name), f"must be {what}, not {raw!r}")
        return float(raw)

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.value.get(name)
        if raw is None:
            return default
        if not isinstance(raw, bool):
            raise ConfigError(self.file, self.key(name), f"must be true or false, not {raw!r}")
        return raw

    def module_list(self, name: str) -> tuple[str, ...]:
        raw = self.value.get(name)
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            raise ConfigError(self.file, self.key(name), "must be a non-empty list of modules")
        for item in raw:
            if item not in MODULE_NAMES:
                raise ConfigError(
                    self.file,
                    self.key(name),
                    f"unknown module {item!r} (modules: {', '.join(MODULE_NAMES)})",
                )
        return tuple(dict.fromkeys(str(item) for item in raw))


def parse_probe_section(value: object, file: str) -> ProbeSettings:
    """The `probe:` section → ProbeSettings; ConfigError(file, key, reason) for bad input."""
    top = _Reader(file, SECTION, value)
    top.only("timeout", "max_concurrent", "max_per_second", "modules", "periodic")
    default_timeout = top.duration("timeout", DEFAULT_TIMEOUT)
    timeouts = dict.fromkeys(MODULE_NAMES, default_timeout)
    enabled = set(MODULE_NAMES)

    modules = _Reader(file, top.key("modules"), top.value.get("modules"))
    for name in modules.value:
        if name not in MODULE_NAMES:
            raise ConfigError(
                file,
                modules.key(str(name)),
                f"unknown module (modules: {', '.join(MODULE_NAMES)})",
            )
        module = _Reader(file, modules.key(name), modules.value[name])
        module.only("timeout", "enabled")
        timeouts[name] = module.duration("timeout", default_timeout)
        if not module.boolean("enabled", True):
            enabled.discard(name)

    periodic = _Reader(file, top.key("periodic"), top.value.get("periodic"))
    periodic.only("interval", "modules")
    interval: float | None = None
    periodic_modules: tuple[str, ...] = ()
    if periodic.value:
        if "interval" not in periodic.value:
            raise ConfigError(file, periodic.key("interval"), "required when periodic is set")
        interval = parse_interval(file, periodic)
        periodic_modules = periodic.module_list("modules") or ("pid",)
        for name in periodic_modules:
            if name not in enabled:
                raise ConfigError(
                    file, periodic.key("modules"), f"module {name!r} is disabled in probe.modules"
                )

    return ProbeSettings(
        timeouts=MappingProxyType(timeouts),
        enabled_modules=frozenset(enabled),
        max_concurrent=int(top.number("max_concurrent", 4, integer=True)),
        max_per_second=top.number("max_per_second", 10.0, integer=False),
        periodic_interval=interval,
        periodic_modules=periodic_modules,
    )


def parse_interval(file: str, periodic: _Reader) -> float:
    raw = periodic.value.get("interval")
    try:
        seconds = parse_duration(str(raw)) if not isinstance(raw, bool) else 0.0
    except ValueError as err:
        raise ConfigError(file, periodic.key("interval"), str(err)) from None
    if seconds < 1.0:
        raise ConfigError(file, periodic.key("interval"), "must be at least 1s")
    return seconds


def probe_settings_of(settings: object) -> ProbeSettings:
    """The probe settings an object carries as `.probe`, or the defaults.

    The config file's `probe:` section is parsed by parse_probe_section into
    `ConfigFile.probe` (ns_exporter.config_file); a file without it gives the defaults.
    """
    found = getattr(settings, "probe", None)
    return found if isinstance(found, ProbeSettings) else DEFAULT_PROBE_SETTINGS
