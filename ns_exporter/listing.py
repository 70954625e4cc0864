"""The lsns-like views of a scan: a table, JSON (also served as /api/namespaces) and a tree."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ns_exporter.model import Namespace, NsKey, NsType
from ns_exporter.state import State

COLUMNS: tuple[str, ...] = ("NS", "TYPE", "NPROCS", "PID", "USER", "HOLDER", "PARENT", "COMMAND")
_CONTROL = {i: f"\\x{i:02x}" for i in range(32)} | {
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    127: "\\x7f",
}


def printable(text: str) -> str:
    """A command name safe for a terminal line: control characters escaped."""
    return text.translate(_CONTROL)


def _text(value: int | None) -> str:
    return "" if value is None else str(value)


def namespace_json(ns: Namespace, unexpected: bool) -> dict[str, Any]:
    return {
        "ns_type": ns.key.ns_type.value,
        "inode": ns.key.inode,
        "ns_id": ns.ns_id,
        "processes": ns.processes,
        "holder": ns.holder.value,
        "pid": ns.pid,
        "command": ns.command,
        "owner_uid": ns.owner_uid,
        "owner": ns.owner,
        "parent_inode": ns.parent_inode,
        "userns_inode": ns.userns_inode,
        "created": ns.created,
        "container_runtime": ns.attribution.container_runtime,
        "container_id": ns.attribution.container_id,
        "unit": ns.attribution.unit,
        "mountpoint": ns.mountpoint,
        "unexpected": unexpected,
    }


def selected(state: State, ns_type: NsType | None = None) -> list[Namespace]:
    return [
        ns
        for ns in state.snapshot.namespaces.values()
        if ns_type is None or ns.key.ns_type is ns_type
    ]


def to_json(state: State, ns_type: NsType | None = None) -> dict[str, Any]:
    """The document of `ns-exporter list --json` and /api/namespaces."""
    stats = state.snapshot.stats
    return {
        "scan": {
            "timestamp": stats.started,
            "duration_seconds": stats.duration,
            "processes_scanned": stats.processes_scanned,
        },
        "namespaces": [
            namespace_json(ns, ns.key in state.unexpected) for ns in selected(state, ns_type)
        ],
    }


def _row(ns: Namespace) -> tuple[str, ...]:
    return (
        str(ns.key.inode),
        ns.key.ns_type.value,
        str(ns.processes),
        _text(ns.pid),
        ns.owner,
        ns.holder.value,
        _text(ns.parent_inode),
        printable(ns.command) or ns.mountpoint,
    )


def table(namespaces: Iterable[Namespace], prefixes: Iterable[str] | None = None) -> str:
    """Aligned columns as lsns prints them; COMMAND last (it may hold spaces)."""
    rows = [_row(ns) for ns in namespaces]
    if prefixes is not None:
        rows = [(*row[:-1], prefix + row[-1]) for row, prefix in zip(rows, prefixes, strict=True)]
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(COLUMNS)]
    right = {0, 2, 3}  # numbers are right-aligned

    def fmt(cells: tuple[str, ...]) -> str:
        parts = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells[:-1])
        ]
        return " ".join([*parts, cells[-1]])

    return "\n".join(fmt(r).rstrip() for r in [COLUMNS, *rows]) + "\n"


def tree_order(namespaces: list[Namespace]) -> Iterator[tuple[Namespace, int]]:
    """Depth-first order with depths: user namespaces own the others; pid namespaces nest
    under their parent pid namespace where it is present."""
    present = {ns.key: ns for ns in namespaces}
    children: dict[NsKey | None, list[Namespace]] = {}

    def parent_of(ns: Namespace) -> NsKey | None:
        hierarchy_parent = (
            NsKey(ns.key.ns_type, ns.parent_inode) if ns.parent_inode is not None else None
        )
        if hierarchy_parent in present:
            return hierarchy_parent
        owner = NsKey(NsType.USER, ns.userns_inode) if ns.userns_inode is not None else None
        if owner in present and owner != ns.key:
            return owner
        return None

    for ns in namespaces:
        children.setdefault(parent_of(ns), []).append(ns)
    seen: set[NsKey] = set()

    def visit(parent: NsKey | None, depth: int) -> Iterator[tuple[Namespace, int]]:
        # user namespaces first, then by type and inode
        for ns in sorted(
            children.get(parent, []), key=lambda n: (n.key.ns_type is not NsType.USER, n.key)
        ):
            if ns.key in seen:
                continue
            seen.add(ns.key)
            yield ns, depth
            yield from visit(ns.key, depth + 1)

    yield from visit(None, 0)
    for ns in namespaces:  # anything in a parent cycle (cannot happen, but never lose a row)
        if ns.key not in seen:
            yield ns, 0


def tree(namespaces: list[Namespace]) -> str:
    ordered = list(tree_order(namespaces))
    prefixes = ["  " * (depth - 1) + "└─" if depth else "" for _, depth in ordered]
    return table([ns for ns, _ in ordered], prefixes)
