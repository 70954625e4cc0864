"""Reading the Grafana dashboards in dashboards/: panels, their queries and Grafana's variables.

Shared by the unit test (syntax, names, layout) and the end-to-end test (queries against a real
Prometheus scraping the real exporter).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser

REPO = Path(__file__).resolve().parent.parent
DASHBOARD_DIR = REPO / "dashboards"
DASHBOARD_FILES = ("ns-exporter-overview.json", "ns-exporter-host.json")

# Grafana's built-in variables that may appear in a query, with a value that a real Prometheus
# accepts. The end-to-end test passes its own values for the short-lived Prometheus it runs.
GRAFANA_BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "15000",
}

# The metric families the exporter exposes, as fixed by SPEC.md (inventory, lifecycle, policy,
# exporter and probe sections). The end-to-end test checks the dashboards against a real scrape.
EXPORTER_METRICS = frozenset(
    {
        # inventory
        "ns_namespaces",
        "ns_namespace_processes",
        "ns_namespace_info",
        "ns_namespace_created_timestamp_seconds",
        "ns_namespace_limit",
        # lifecycle
        "ns_namespaces_created_total",
        "ns_namespaces_destroyed_total",
        "ns_namespace_lifetime_seconds",
        # policy
        "ns_unexpected_namespaces",
        "ns_namespace_unexpected",
        # the exporter itself
        "ns_exporter_build_info",
        "ns_exporter_scan_duration_seconds",
        "ns_exporter_scans_total",
        "ns_exporter_last_scan_timestamp_seconds",
        "ns_exporter_processes_scanned",
        "ns_exporter_scan_skipped_processes_total",
        "ns_exporter_scan_errors_total",
        "ns_scrape_collector_success",
        "ns_scrape_collector_duration_seconds",
        "ns_exporter_event_listener_up",
        "ns_exporter_events_total",
        "ns_exporter_events_lost_total",
        "ns_exporter_namespaces_dropped",
        "ns_exporter_config_last_reload_successful",
        # periodic probe results on /metrics
        "ns_probe_success",
        "ns_probe_last_run_timestamp_seconds",
    }
)
HISTOGRAMS = frozenset({"ns_namespace_lifetime_seconds"})
# /probe?module=NAME, scraped by Prometheus as a job of its own.
PROBE_METRICS = frozenset(
    {"probe_success", "probe_duration_seconds", "probe_ns_check_success", "probe_failure_info"}
)
# prometheus_client's process collector, registered by `ns-exporter serve`.
PROCESS_METRICS = frozenset({"process_cpu_seconds_total", "process_resident_memory_bytes"})
# Series Prometheus itself writes for every target.
PROMETHEUS_SERIES = frozenset({"up"})

SERIES_NAMES = (
    EXPORTER_METRICS
    | {f"{h}_{suffix}" for h in HISTOGRAMS for suffix in ("bucket", "sum", "count")}
    | PROBE_METRICS
    | PROCESS_METRICS
    | PROMETHEUS_SERIES
) - HISTOGRAMS

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\s*\)\s*$")


@dataclass(frozen=True, slots=True)
class Query:
    """One target of one panel."""

    dashboard: str  # file name
    panel: str  # panel title
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.panel} [{self.ref_id}]"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8"))
    return data


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows, rows themselves too."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(name: str) -> list[Query]:
    return [
        Query(name, panel["title"], target["refId"], target["expr"])
        for panel in panels(load(name))
        for target in panel.get("targets", [])
    ]


def all_queries() -> list[Query]:
    return [q for name in DASHBOARD_FILES for q in queries(name)]


def variable_names(expr: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(expr)}


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replaces $var, ${var}, ${var:format} and [[var]] as Grafana would for a single value."""

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(one, expr)


def label_values_selector(query: str) -> tuple[str | None, str]:
    """Splits Grafana's label_values(SELECTOR, LABEL) into its selector and label."""
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"not a label_values() query: {query!r}")
    return match["selector"], match["label"]


def series_names(expr: str) -> set[str]:
    """The metric names an expression selects (by name or by a __name__ matcher)."""
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    names.add(matcher.value)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names
