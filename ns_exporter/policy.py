"""Policy: which namespaces are expected, and a baseline policy that expects what runs now.

A namespace is expected when any rule of `expected:` matches every field the rule names;
with no `expected:` section at all nothing is unexpected. Regex fields (command, unit) are
fully anchored. A rule field of a namespace without processes compares with what the scanner
knows of it: command "" and no owner for a namespace held only by a mount or an fd, except a
user namespace, whose owner the kernel keeps.
"""

from __future__ import annotations

import re
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from ns_exporter.config_file import RULE_FIELDS, ExpectedRule
from ns_exporter.model import NS_TYPES, Namespace, NsKey, NsType, Snapshot

# What each rule field compares against, for one namespace.
FIELD_VALUES: dict[str, Callable[[Namespace], object]] = {
    "ns_type": lambda ns: ns.key.ns_type,
    "command": lambda ns: ns.command,
    "owner": lambda ns: ns.owner,
    "owner_uid": lambda ns: ns.owner_uid,
    "container_runtime": lambda ns: ns.attribution.container_runtime,
    "unit": lambda ns: ns.attribution.unit,
    "holder": lambda ns: ns.holder,
}

assert FIELD_VALUES.keys() == RULE_FIELDS.keys(), "every rule field needs a value"

Check = Callable[[Namespace], bool]


def _check(field: str, wanted: object) -> Check:
    value_of = FIELD_VALUES[field]
    if isinstance(wanted, re.Pattern):
        pattern: re.Pattern[str] = wanted
        return lambda ns: pattern.fullmatch(str(value_of(ns))) is not None
    assert isinstance(wanted, frozenset), f"{field}: {wanted!r}"
    values: frozenset[object] = wanted
    return lambda ns: value_of(ns) in values


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    checks: tuple[Check, ...]

    def matches(self, ns: Namespace) -> bool:
        return all(check(ns) for check in self.checks)


def compile_rule(rule: ExpectedRule) -> CompiledRule:
    checks = tuple(
        _check(field, getattr(rule, field))
        for field in FIELD_VALUES
        if getattr(rule, field) is not None
    )
    return CompiledRule(rule.name, checks)


def _signature(ns: Namespace) -> tuple[object, ...]:
    return tuple(value_of(ns) for value_of in FIELD_VALUES.values())


class Policy:
    """Compiled `expected:` rules. `Policy(None)` (no section) expects everything."""

    _CACHE_LIMIT = 20000

    def __init__(self, rules: Sequence[ExpectedRule] | None) -> None:
        self.active = rules is not None
        self.rules = tuple(compile_rule(rule) for rule in rules or ())
        # Namespaces with the same field values get the same verdict (pods, workers, ...).
        self._verdicts: dict[tuple[object, ...], str | None] = {}

    def first_match(self, ns: Namespace) -> str | None:
        """The name of the first rule that expects this namespace, or None."""
        signature = _signature(ns)
        try:
            return self._verdicts[signature]
        except KeyError:
            pass
        verdict = next((rule.name for rule in self.rules if rule.matches(ns)), None)
        if len(self._verdicts) >= self._CACHE_LIMIT:
            self._verdicts.clear()
        self._verdicts[signature] = verdict
        return verdict

    def is_expected(self, ns: Namespace) -> bool:
        return not self.active or self.first_match(ns) is not None

    def unexpected(self, namespaces: Iterable[Namespace]) -> frozenset[NsKey]:
        if not self.active:
            return frozenset()
        return frozenset(ns.key for ns in namespaces if self.first_match(ns) is None)


NO_POLICY = Policy(None)


def unexpected(
    namespaces: Iterable[Namespace], rules: Sequence[ExpectedRule] | None
) -> frozenset[NsKey]:
    """The keys of the namespaces no rule expects (none when there is no `expected:`)."""
    return Policy(rules).unexpected(namespaces)


# --- baseline -------------------------------------------------------------------------------

_REGEX_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def _literal(text: str) -> str:
    """A regex matching exactly `text` (escapes only what is special, keeps `-`, `@`, `/`)."""
    return _REGEX_SPECIAL.sub(r"\\\1", text)


# Volatile parts of unit names, generalised so the baseline survives the next login or run.
# Each row: what to find in the literal (escaped) unit regex, what to put instead.
_UNIT_GENERALISATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # session-3.scope, a login session (logind numbers them)
    (re.compile(r"^session-[0-9]+\\\.scope$"), r"session-[0-9]+\\.scope"),
    # systemd-run transient units: run-u123.service, run-r<hex>.scope, run-p12-i34.scope
    (re.compile(r"^run-[a-z0-9-]+\\\.(service|scope)$"), r"run-[a-z0-9-]+\\.\1"),
    # socket-activated per-connection instances: sshd@7-10.0.0.1:22-10.0.0.2:51234.service
    (re.compile(r"^([\w:-]+)@[0-9]+-.*\\\.service$"), r"\1@[0-9]+-.*\\.service"),
    # container ids in unit names (conmon scopes and the like)
    (re.compile(r"[0-9a-f]{64}"), r"[0-9a-f]{64}"),
)


def generalise_unit(unit: str) -> str:
    """The unit regex a baseline rule uses for this unit."""
    pattern = _literal(unit)
    for find, replace in _UNIT_GENERALISATIONS:
        pattern = find.sub(replace, pattern)
    return pattern


@dataclass(frozen=True, slots=True, order=True)
class _Group:
    """What a baseline rule is generalised by (everything but the namespace type)."""

    container_runtime: str
    unit: str  # a regex, already generalised
    command: str
    owner: str
    owner_uid: int | None
    holder: str


def _group(ns: Namespace) -> _Group:
    by_name = bool(ns.owner) and not ns.owner.isdigit()
    return _Group(
        container_runtime=ns.attribution.container_runtime,
        unit=generalise_unit(ns.attribution.unit) if ns.attribution.unit else "",
        command=ns.command,
        owner=ns.owner if by_name else "",
        owner_uid=None if by_name else ns.owner_uid,
        holder=ns.holder.value,
    )


def _rule_name(group: _Group) -> str:
    command = group.command or f"no process, held by {group.holder}"
    owner = group.owner or ("" if group.owner_uid is None else f"uid {group.owner_uid}")
    where = group.container_runtime or group.unit.replace("\\", "")
    return " ".join(
        part for part in (command, owner and f"as {owner}", where and f"in {where}") if part
    )


def _rule(name: str, group: _Group, types: Iterable[NsType]) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": name, "ns_type": [t.value for t in NS_TYPES if t in types]}
    if group.command:
        rule["command"] = _literal(group.command)
    if group.owner:
        rule["owner"] = group.owner
    elif group.owner_uid is not None:
        rule["owner_uid"] = group.owner_uid
    rule["container_runtime"] = group.container_runtime
    if group.unit:
        rule["unit"] = group.unit
    rule["holder"] = group.holder
    return rule


_HEADER = """\
# ns_exporter policy written by `ns-exporter baseline` on {host} at {when}.
# Every namespace present then is expected. A rule matches a namespace when every field it
# names matches: command and unit are regexes (fully anchored), container_runtime "" means
# "not in a container". Generalise further by hand (drop a field, widen a regex), then check
# it with `ns-exporter check-config FILE`.
"""


def baseline_rules(namespaces: Iterable[Namespace]) -> list[dict[str, Any]]:
    """Rules, as plain data, that expect every given namespace; no inode appears in them."""
    types: dict[_Group, set[NsType]] = defaultdict(set)
    for ns in namespaces:
        types[_group(ns)].add(ns.key.ns_type)
    rules: list[dict[str, Any]] = []
    used: dict[str, int] = {}
    for group in sorted(types, key=lambda g: (g.container_runtime, g.holder != "process", g)):
        base = _rule_name(group)
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base} #{used[base]}"
        rules.append(_rule(name, group, types[group]))
    return rules


def baseline(snapshot: Snapshot, host: str | None = None) -> str:
    """A policy file (YAML text) that expects every namespace of the snapshot."""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(snapshot.stats.started))
    header = _HEADER.format(host=host or socket.gethostname(), when=when)
    rules = baseline_rules(snapshot.namespaces.values())
    body = yaml.safe_dump(
        {"expected": rules},
        sort_keys=False,
        default_flow_style=None,
        allow_unicode=False,
        width=100,
    )
    return header + body
