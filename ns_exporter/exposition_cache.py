"""Rendering /metrics again cheaply: the per-namespace lines of a namespace that did not change
since the previous render are reused. Opens no files.

The scanner hands back the very same `Namespace` object for a namespace that did not change,
so most lines of a scan (ns_namespace_processes, ns_namespace_info,
ns_namespace_created_timestamp_seconds, ns_namespace_unexpected) are found by identity. The
other families are few and rendered by prometheus_client as before. The text is byte for byte
what `exposition.render` (prometheus_client's generate_latest, format 0.0.4) gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ns_exporter.exposition import (
    INFO_LABELS,
    Exposition,
    Families,
    created_family,
    flagged_family,
    info_family,
    info_labels,
    processes_family,
    select_series,
)
from ns_exporter.model import Namespace, NsKey
from ns_exporter.state import State

go_float: Callable[[float], str] = floatToGoString  # prometheus_client's number format


def escape_label_value(value: str) -> str:
    """As prometheus_client escapes a label value in the text format."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _header(family: Metric) -> bytes:
    """The HELP and TYPE lines of a family, as prometheus_client writes them."""
    return generate_latest(Families([family]))


PROCESSES_HEADER = _header(processes_family())
INFO_HEADER = _header(info_family())
CREATED_HEADER = _header(created_family())
FLAGGED_HEADER = _header(flagged_family())

# prometheus_client writes labels sorted by name: (name, index in INFO_LABELS).
_INFO_ORDER: tuple[tuple[str, int], ...] = tuple(
    sorted((name, index) for index, name in enumerate(INFO_LABELS))
)


@dataclass(frozen=True, slots=True)
class NamespaceLines:
    """The exposition lines of one namespace, for the Namespace object they were made from."""

    namespace: Namespace
    processes: bytes
    info: bytes
    created: bytes
    flagged: bytes  # written only while the namespace is unexpected


def namespace_lines(ns: Namespace) -> NamespaceLines:
    key = f'{{ns_inode="{ns.key.inode}",ns_type="{escape_label_value(ns.key.ns_type.value)}"}}'
    values = info_labels(ns)
    info = ",".join(f'{name}="{escape_label_value(values[i])}"' for name, i in _INFO_ORDER)
    return NamespaceLines(
        namespace=ns,
        processes=f"ns_namespace_processes{key} {go_float(ns.processes)}\n".encode(),
        info=f"ns_namespace_info{{{info}}} 1.0\n".encode(),
        created=(
            f"ns_namespace_created_timestamp_seconds{key} {go_float(round(ns.created, 3))}\n"
        ).encode(),
        flagged=f"ns_namespace_unexpected{key} 1.0\n".encode(),
    )


class CachedRenderer:
    """Renders States like `exposition.render`, keeping the lines of the namespaces of the
    last render. The cache holds only those: a namespace gone from the State is dropped.

    Not for concurrent renders of one instance (the agent renders under its publish lock);
    were two to race, the output would still be right, only cache entries would be lost.
    """

    def __init__(self, exposition: Exposition, extra: Iterable[Collector] = ()) -> None:
        self._exposition = exposition
        self._extra = tuple(extra)
        self._lines: Mapping[NsKey, NamespaceLines] = {}

    @property
    def cached(self) -> int:
        """How many namespaces' lines are kept."""
        return len(self._lines)

    def render(self, state: State) -> bytes:
        exposition = self._exposition
        kept, dropped = select_series(state, exposition.max_series)
        previous = self._lines
        unexpected = state.unexpected
        current: dict[NsKey, NamespaceLines] = {}
        processes: list[bytes] = [PROCESSES_HEADER]
        info: list[bytes] = [INFO_HEADER]
        created: list[bytes] = [CREATED_HEADER]
        flagged: list[bytes] = [FLAGGED_HEADER]
        for ns in kept:
            lines = previous.get(ns.key)
            if lines is None or (lines.namespace is not ns and lines.namespace != ns):
                lines = namespace_lines(ns)
            current[ns.key] = lines
            processes.append(lines.processes)
            info.append(lines.info)
            created.append(lines.created)
            if ns.key in unexpected:
                flagged.append(lines.flagged)
        self._lines = current

        tail = CollectorRegistry(auto_describe=False)
        tail.register(Families(list(exposition.tail(state, dropped))))
        for collector in self._extra:
            tail.register(collector)
        return b"".join(
            (
                generate_latest(Families(list(exposition.head(state)))),
                *processes,
                *info,
                *created,
                generate_latest(Families(list(exposition.between(state)))),
                *flagged,
                generate_latest(tail),
            )
        )
