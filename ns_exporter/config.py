"""Settings from command-line flags and NS_EXPORTER_* environment variables.

Flags are Prometheus-style (`--web.listen-address`); each one can also be given in the
environment as NS_EXPORTER_<FLAG> with dots and dashes as underscores
(`NS_EXPORTER_WEB_LISTEN_ADDRESS`). A flag on the command line wins over the environment.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ns_exporter.logs import LOG_FORMATS, LOG_LEVELS
from ns_exporter.scanner import OPTIONAL_COLLECTORS

ENV_PREFIX = "NS_EXPORTER_"
DEFAULT_PORT = 10199

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)?)+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)?")
_UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
    "": 1.0,
}


def parse_duration(text: str) -> float:
    """Prometheus-style durations (`15s`, `1m30s`, `500ms`) or plain seconds, as seconds."""
    value = text.strip()
    if not value or not _DURATION.match(value):
        raise ValueError(f"invalid duration {text!r} (examples: 15s, 1m, 500ms)")
    seconds = sum(
        float(number) * _UNIT_SECONDS[unit or ""] for number, unit in _DURATION_PART.findall(value)
    )
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def parse_bool(text: str) -> bool:
    table = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        return table[text.strip().lower()]
    except KeyError:
        raise ValueError(f"invalid boolean {text!r} (use true or false)") from None


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class ListenAddress:
    host: str  # "" for every interface
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """`:10199`, `127.0.0.1:10199`, `[::1]:10199` or `localhost:10199`."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"invalid listen address {text!r} (expected HOST:PORT or :PORT)")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return cls(host, int(port))


class _Named:
    """argparse destination and environment variable of a flag such as `web.listen-address`."""

    __slots__ = ()
    name: str

    @property
    def dest(self) -> str:
        return self.name.replace(".", "_").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()


@dataclass(frozen=True, slots=True)
class Flag(_Named):
    """One flag: its name, how to parse it, its default and help."""

    name: str
    parse: Callable[[str], object]
    default: object
    help: str
    metavar: str = "VALUE"


@dataclass(frozen=True, slots=True)
class Switch(_Named):
    """A --[no-]NAME flag."""

    name: str
    default: bool
    help: str


def _default_procfs() -> str:
    """/host/proc when it exists (the container convention), else /proc."""
    return "/host/proc" if os.path.isdir("/host/proc/self") else "/proc"


FLAGS: tuple[Flag, ...] = (
    Flag("web.listen-address", ListenAddress.parse, f":{DEFAULT_PORT}", "address to listen on"),
    Flag("web.telemetry-path", str, "/metrics", "path under which to expose metrics"),
    Flag("web.config.file", str, "", "exporter-toolkit web config file (TLS, basic auth)"),
    Flag("web.max-requests", parse_positive_int, 40, "maximum concurrent requests"),
    Flag(
        "web.read-timeout",
        parse_duration,
        10.0,
        "time a client gets to send its request (TLS handshake, head, body)",
        "DURATION",
    ),
    Flag("path.procfs", str, None, "procfs mount point (default /proc, /host/proc in a container)"),
    Flag("path.rootfs", str, "/", "host root file system (for /etc/passwd)"),
    Flag("scan.interval", parse_duration, 15.0, "time between scans (e.g. 15s)", "DURATION"),
    Flag("config.file", str, "", "YAML config file (expected namespaces, probe settings)"),
    Flag("namespaces.max-series", parse_positive_int, 10000, "max per-namespace series"),
    Flag("log.level", str, "info", f"log level: {', '.join(LOG_LEVELS)}"),
    Flag(
        "log.format", str, "", f"log format: {', '.join(LOG_FORMATS)} (default: console on a TTY)"
    ),
)

SWITCHES: tuple[Switch, ...] = (
    *(
        Switch(f"collector.{name}", on, f"the {name} collector (default {'on' if on else 'off'})")
        for name, on in OPTIONAL_COLLECTORS.items()
    ),
    Switch("probe.enabled", True, "serve /probe (isolation probe)"),
    Switch("events.enabled", True, "listen to process events between scans"),
)

_CHOICES: dict[str, tuple[str, ...]] = {"log_level": LOG_LEVELS, "log_format": ("", *LOG_FORMATS)}


def _arg_type(parse: Callable[[str], object]) -> Callable[[str], object]:
    """argparse shows only ArgumentTypeError messages: keep the reason of a bad value."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err

    return convert


def add_flags(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Add every flag to a parser, with defaults taken from the environment where set."""
    for flag in FLAGS:
        default = flag.default
        if flag.env in environ:
            try:
                default = flag.parse(environ[flag.env])
            except ValueError as err:
                parser.error(f"{flag.env}: {err}")
        parser.add_argument(
            f"--{flag.name}",
            dest=flag.dest,
            type=_arg_type(flag.parse),
            default=default,
            metavar=flag.metavar,
            help=f"{flag.help} [env {flag.env}]",
        )
    for switch in SWITCHES:
        on = switch.default
        if switch.env in environ:
            try:
                on = parse_bool(environ[switch.env])
            except ValueError as err:
                parser.error(f"{switch.env}: {err}")
        parser.add_argument(
            f"--{switch.name}",
            dest=switch.dest,
            action=argparse.BooleanOptionalAction,
            default=on,
            help=f"{switch.help} [env {switch.env}]",
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the flags decide, validated."""

    listen: ListenAddress = ListenAddress("", DEFAULT_PORT)
    telemetry_path: str = "/metrics"
    web_config_file: str = ""
    max_requests: int = 40
    read_timeout: float = 10.0
    procfs: str = "/proc"
    rootfs: str = "/"
    scan_interval: float = 15.0
    config_file: str = ""
    max_series: int = 10000
    collectors: frozenset[str] = frozenset(k for k, on in OPTIONAL_COLLECTORS.items() if on)
    probe_enabled: bool = True
    events_enabled: bool = True
    log_level: str = "info"
    log_format: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        values = vars(args)
        for dest, choices in _CHOICES.items():
            if values[dest] not in choices:
                raise ValueError(
                    f"--{dest.replace('_', '.')}: {values[dest]!r} not one of {choices}"
                )
        if not str(values["web_telemetry_path"]).startswith("/"):
            raise ValueError("--web.telemetry-path must start with /")
        collectors = frozenset(name for name in OPTIONAL_COLLECTORS if values[f"collector_{name}"])
        return cls(
            listen=values["web_listen_address"],
            telemetry_path=values["web_telemetry_path"],
            web_config_file=values["web_config_file"],
            max_requests=values["web_max_requests"],
            read_timeout=values["web_read_timeout"],
            procfs=values["path_procfs"] or _default_procfs(),
            rootfs=values["path_rootfs"],
            scan_interval=values["scan_interval"],
            config_file=values["config_file"],
            max_series=values["namespaces_max_series"],
            collectors=collectors,
            probe_enabled=values["probe_enabled"],
            events_enabled=values["events_enabled"],
            log_level=values["log_level"],
            log_format=values["log_format"],
        )
