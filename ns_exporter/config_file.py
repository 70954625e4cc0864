"""The YAML config file (--config.file): loading and validation.

The file is a mapping of sections; each section has a parser in SECTIONS that turns the raw
YAML value into typed, validated data and raises ConfigError naming the file, the key (as a
path such as `expected[2].command`) and the reason. Adding a section is adding a row to
SECTIONS and a field of the same name to ConfigFile.

    expected:                       # namespaces that are supposed to exist
      - name: host services         # each rule is named; it matches when all fields it names do
        ns_type: [net, mnt]         # one value or a list: cgroup ipc mnt net pid time user uts
        command: "(sshd|nginx)"     # regex on the lowest member's comm, fully anchored
        owner: root                 # user name (one or a list), or owner_uid: 0
        container_runtime: ""       # "" = not in a container; docker, kubepods, ...
        unit: "nginx\\.service"     # regex on the systemd unit, fully anchored
        holder: process             # process, mount or fd
    probe:                          # see ns_exporter.probe.settings
      timeout: 5s
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from ns_exporter.attribution import RUNTIMES
from ns_exporter.config_error import ConfigError
from ns_exporter.model import NS_TYPES, Holder, NsType
from ns_exporter.probe.settings import ProbeSettings, parse_probe_section
from ns_exporter.yaml_load import expect_string, load_yaml, type_name

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ExpectedRule:
    """One rule of `expected:`; None for a field the rule does not name (matches anything)."""

    name: str
    ns_type: frozenset[NsType] | None = None
    command: re.Pattern[str] | None = None
    owner: frozenset[str] | None = None
    owner_uid: frozenset[int] | None = None
    container_runtime: frozenset[str] | None = None
    unit: re.Pattern[str] | None = None
    holder: frozenset[Holder] | None = None


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A validated config file; a section the file does not have is None."""

    path: str = ""
    expected: tuple[ExpectedRule, ...] | None = None
    probe: ProbeSettings | None = None  # None: the probe's defaults


# --- field parsers: (raw value, file, key) -> typed value, or ConfigError ------------------

FieldParser = Callable[[object, str, str], object]


def _regex(value: object, file: str, key: str) -> re.Pattern[str]:
    text = expect_string(value, file, key)
    try:
        return re.compile(text)
    except re.error as err:
        where = f" at position {err.pos}" if err.pos is not None else ""
        raise ConfigError(file, key, f"bad regex {text!r}: {err.msg}{where}") from None
    except (OverflowError, RecursionError) as err:  # a{99999999999}, thousands of nested groups
        raise ConfigError(file, key, f"bad regex {text[:80]!r}: {err}") from None


def _choice(kind: str, choices: Mapping[str, T]) -> Callable[[object, str, str], T]:
    def parse(value: object, file: str, key: str) -> T:
        text = expect_string(value, file, key)
        if text not in choices:
            known = ", ".join(repr(c) for c in choices)
            raise ConfigError(file, key, f"unknown {kind} {text!r}; one of {known}")
        return choices[text]

    return parse


def _owner(value: object, file: str, key: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ConfigError(file, key, f"must be a user name; for a uid write owner_uid: {value}")
    return expect_string(value, file, key)


def _uid(value: object, file: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(file, key, f"must be a uid (a number), got {type_name(value)}")
    if not 0 <= value < 2**32:
        raise ConfigError(file, key, f"uid {value} out of range 0..4294967295")
    return value


def _one_or_many(parse: Callable[[object, str, str], T]) -> Callable[[object, str, str], object]:
    """A single value or a non-empty list of them, as a frozenset."""

    def parse_set(value: object, file: str, key: str) -> frozenset[T]:
        if not isinstance(value, list):
            return frozenset((parse(value, file, key),))
        if not value:
            raise ConfigError(file, key, "must not be an empty list")
        return frozenset(parse(item, file, f"{key}[{i}]") for i, item in enumerate(value))

    return parse_set


_NS_TYPES: dict[str, NsType] = {t.value: t for t in NS_TYPES}
_HOLDERS: dict[str, Holder] = {h.value: h for h in Holder}
_RUNTIMES: dict[str, str] = {"": "", **{r: r for r in RUNTIMES}}

# The fields of an expected rule besides `name`, in the order they are documented.
RULE_FIELDS: dict[str, FieldParser] = {
    "ns_type": _one_or_many(_choice("namespace type", _NS_TYPES)),
    "command": _regex,
    "owner": _one_or_many(_owner),
    "owner_uid": _one_or_many(_uid),
    "container_runtime": _one_or_many(_choice("container runtime", _RUNTIMES)),
    "unit": _regex,
    "holder": _one_or_many(_choice("holder", _HOLDERS)),
}


def _unknown_key(file: str, key: str, name: str, known: Iterable[str]) -> ConfigError:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return ConfigError(file, key, f"unknown key ({hint})")


def _parse_rule(raw: object, file: str, key: str, seen: dict[str, str]) -> ExpectedRule:
    if not isinstance(raw, dict):
        raise ConfigError(file, key, f"must be a mapping (a rule), got {type_name(raw)}")
    for name in raw:
        if name != "name" and name not in RULE_FIELDS:
            raise _unknown_key(file, f"{key}.{name}", str(name), ["name", *RULE_FIELDS])
    if "name" not in raw:
        raise ConfigError(file, f"{key}.name", "missing: every rule needs a name")
    name = expect_string(raw["name"], file, f"{key}.name")
    if not name.strip():
        raise ConfigError(file, f"{key}.name", "must not be empty")
    if name in seen:
        raise ConfigError(file, f"{key}.name", f"duplicate rule name {name!r} (also {seen[name]})")
    seen[name] = key
    values: dict[str, Any] = {
        f: parse(raw[f], file, f"{key}.{f}") for f, parse in RULE_FIELDS.items() if f in raw
    }
    if not values:
        raise ConfigError(
            file, key, f"rule {name!r} names no field to match ({', '.join(RULE_FIELDS)})"
        )
    return ExpectedRule(name=name, **values)


def parse_expected(value: object, file: str) -> tuple[ExpectedRule, ...] | None:
    """The `expected:` section: a list of rules. Null (an empty section) means no policy."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ConfigError(file, "expected", f"must be a list of rules, got {type_name(value)}")
    seen: dict[str, str] = {}
    return tuple(_parse_rule(raw, file, f"expected[{i}]", seen) for i, raw in enumerate(value))


# Top-level sections: key -> parser(raw value, file). The ConfigFile field has the same name.
SECTIONS: dict[str, Callable[[object, str], object]] = {
    "expected": parse_expected,
    "probe": parse_probe_section,  # module overrides, limits, periodic probing
}

assert set(SECTIONS) <= {f.name for f in fields(ConfigFile)}, "a section without a field"


def parse_config(text: str, file: str) -> ConfigFile:
    """Validate the text of a config file; `file` is only used in error messages."""
    data = load_yaml(text, file)
    if data is None:
        return ConfigFile(path=file)
    if not isinstance(data, dict):
        raise ConfigError(
            file, "(top level)", f"must be a mapping of sections, got {type_name(data)}"
        )
    for key in data:
        if key not in SECTIONS:
            raise _unknown_key(file, str(key), str(key), SECTIONS)
    sections: dict[str, Any] = {
        key: parse(data[key], file) for key, parse in SECTIONS.items() if key in data
    }
    return ConfigFile(path=file, **sections)


def load_config_file(path: str) -> ConfigFile:
    """Read and validate a config file; ConfigError (naming file, key, reason) if it is bad."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as err:
        raise ConfigError(path, "open", err.strerror or str(err)) from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, "encoding", f"not UTF-8 text ({err.reason})") from None
    return parse_config(text, path)
