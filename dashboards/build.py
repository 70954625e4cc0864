"""Builds the Grafana dashboards in this folder (classic dashboard JSON).

The JSON files are committed; this script is the source they are generated from, so that every
panel shares the same data source, selectors, units and layout. After editing it run

    python3 dashboards/build.py

and commit both. tests/unit/test_dashboards.py fails when the JSON and this script disagree.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

Json = dict[str, Any]

DS: Json = {"type": "prometheus", "uid": "${datasource}"}
# Every exporter series: the job and instance chosen at the top of the dashboard.
SEL = 'job=~"$job", instance=~"$instance"'
# The same, limited to the chosen namespace types.
SEL_T = SEL + ', ns_type=~"$ns_type"'
# /probe is scraped as a job of its own (blackbox style), on the same instance address.
PSEL = 'job=~"$probe_job", instance=~"$instance"'
# How a per-namespace series joins its ns_namespace_info labels.
JOIN = "on (job, instance, ns_type, ns_inode) group_left"
HOST_URL = "/d/ns-exporter-host/ns-exporter-host"
OVERVIEW_URL = "/d/ns-exporter-overview/ns-exporter-overview"
INFO_LABELS = "pid, command, owner, holder, container_runtime, container_id, unit"

GREEN_RED_AT_1: Json = {
    "mode": "absolute",
    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
}
GREEN_ORANGE_AT_1: Json = {
    "mode": "absolute",
    "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 1}],
}
NEUTRAL: Json = {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}
RED_GREEN_AT_1: Json = {
    "mode": "absolute",
    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
}
OK_FAIL_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "FAIL", "color": "red", "index": 0},
            "1": {"text": "OK", "color": "green", "index": 1},
        },
    }
]
UP_DOWN_MAPPINGS: list[Json] = [
    {
        "type": "value",
        "options": {
            "0": {"text": "down", "color": "red", "index": 0},
            "1": {"text": "up", "color": "green", "index": 1},
        },
    }
]


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def target(
    expr: str,
    legend: str = "",
    *,
    ref: str = "A",
    instant: bool = False,
    fmt: str = "time_series",
) -> Json:
    return {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": fmt,
        "editorMode": "code",
    }


def targets(*items: tuple[str, str]) -> list[Json]:
    """Several range queries, refIds A, B, C..."""
    return [target(e, legend, ref=chr(ord("A") + i)) for i, (e, legend) in enumerate(items)]


def _panel(kind: str, title: str, description: str, tgts: list[Json], field: Json) -> Json:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": tgts,
        "fieldConfig": {"defaults": field, "overrides": []},
        "options": {},
    }


def timeseries(
    title: str,
    description: str,
    tgts: list[Json],
    unit: str,
    *,
    th: Json = NEUTRAL,
    stack: bool = False,
    threshold_line: bool = False,
    min_zero: bool = True,
    mappings: list[Json] | None = None,
) -> Json:
    custom: Json = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if threshold_line else "off"},
    }
    field: Json = {
        "unit": unit,
        "thresholds": th,
        "custom": custom,
        "color": {"mode": "palette-classic"},
    }
    if min_zero:
        field["min"] = 0
    if mappings:
        field["mappings"] = mappings
    p = _panel("timeseries", title, description, tgts, field)
    p["options"] = {
        "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return p


def stat(
    title: str,
    description: str,
    expr: str,
    unit: str,
    th: Json,
    *,
    legend: str = "",
    mappings: list[Json] | None = None,
    decimals: int | None = None,
    text_mode: str = "auto",
) -> Json:
    field: Json = {"unit": unit, "thresholds": th, "color": {"mode": "thresholds"}}
    if mappings:
        field["mappings"] = mappings
    if decimals is not None:
        field["decimals"] = decimals
    p = _panel("stat", title, description, [target(expr, legend, instant=True)], field)
    p["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background" if th is not NEUTRAL else "value",
        "graphMode": "none",
        "textMode": text_mode,
        "justifyMode": "auto",
        "orientation": "auto",
    }
    return p


def bargauge(
    title: str,
    description: str,
    expr: str,
    legend: str,
    unit: str,
    *,
    th: Json,
    max_value: float | None = None,
) -> Json:
    field: Json = {"unit": unit, "thresholds": th, "min": 0, "color": {"mode": "thresholds"}}
    if max_value is not None:
        field["max"] = max_value
    p = _panel("bargauge", title, description, [target(expr, legend, instant=True)], field)
    p["options"] = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "orientation": "horizontal",
        "displayMode": "gradient",
        "showUnfilled": True,
    }
    return p


def state_timeline(
    title: str, description: str, expr: str, legend: str, mappings: list[Json]
) -> Json:
    field: Json = {
        "unit": "bool",
        "thresholds": RED_GREEN_AT_1,
        "mappings": mappings,
        "color": {"mode": "thresholds"},
        "custom": {"fillOpacity": 80, "lineWidth": 0},
    }
    p = _panel("state-timeline", title, description, [target(expr, legend)], field)
    p["options"] = {
        "showValue": "auto",
        "mergeValues": True,
        "rowHeight": 0.8,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "tooltip": {"mode": "single"},
    }
    return p


def table(
    title: str,
    description: str,
    tgts: list[Json],
    *,
    value_name: str,
    unit: str,
    th: Json = NEUTRAL,
    order: Iterable[str] = (),
    hide: Iterable[str] = ("Time", "__name__", "job"),
    merge: bool = False,
    extra_renames: dict[str, str] | None = None,
    instance_link: bool = False,
    cell_color: bool = False,
    mappings: list[Json] | None = None,
    sort_by: str | None = None,
    column_units: dict[str, str] | None = None,
) -> Json:
    for t in tgts:
        t.update(instant=True, range=False, format="table")
    field: Json = {"unit": unit, "thresholds": th, "custom": {"align": "auto", "filterable": True}}
    if mappings:
        field["mappings"] = mappings
    p = _panel("table", title, description, tgts, field)
    renames = {"Value": value_name} if len(tgts) == 1 else {}
    renames.update(extra_renames or {})
    index = {name: i for i, name in enumerate(order)}
    transformations: list[Json] = []
    if merge:
        transformations.append({"id": "merge", "options": {}})
    transformations.append(
        {
            "id": "organize",
            "options": {
                "excludeByName": dict.fromkeys(hide, True),
                "indexByName": index,
                "renameByName": renames,
            },
        }
    )
    p["transformations"] = transformations
    overrides: list[Json] = [
        {"matcher": {"id": "byName", "options": column}, "properties": [{"id": "unit", "value": u}]}
        for column, u in (column_units or {}).items()
    ]
    if cell_color:
        overrides.append(
            {
                "matcher": {"id": "byName", "options": value_name},
                "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}],
            }
        )
    if instance_link:
        overrides.append(
            {
                "matcher": {"id": "byName", "options": "instance"},
                "properties": [
                    {
                        "id": "links",
                        "value": [
                            {
                                "title": "Host drill-down for ${__value.raw}",
                                "url": HOST_URL + "?${datasource:queryparam}&${job:queryparam}"
                                "&var-instance=${__value.raw}&${__url_time_range}",
                            }
                        ],
                    }
                ],
            }
        )
    p["fieldConfig"]["overrides"] = overrides
    p["options"] = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}}
    if sort_by:
        p["options"]["sortBy"] = [{"displayName": sort_by, "desc": True}]
    return p


def heatmap(title: str, description: str, expr: str) -> Json:
    field: Json = {"unit": "s", "custom": {"scaleDistribution": {"type": "linear"}}}
    tgt = target(expr, "{{le}}", fmt="heatmap")
    p = _panel("heatmap", title, description, [tgt], field)
    p["options"] = {
        "calculate": False,
        "yAxis": {"unit": "s", "axisPlacement": "left"},
        "cellGap": 1,
        "color": {"mode": "scheme", "scheme": "Oranges", "scale": "exponential", "exponent": 0.5},
        "rowsFrame": {"layout": "auto"},
        "tooltip": {"show": True, "yHistogram": False},
        "legend": {"show": True},
    }
    p["fieldConfig"]["defaults"]["thresholds"] = NEUTRAL
    return p


def row(title: str) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


# --- layout -------------------------------------------------------------------------------


class Grid:
    """Places panels left to right on Grafana's 24-column grid, wrapping at the edge."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self._put(row(title), 24, 1)
        self._newline()

    def add(self, panel: Json, w: int, h: int) -> None:
        if self._x + w > 24:
            self._newline()
        self._put(panel, w, h)

    def _put(self, panel: Json, w: int, h: int) -> None:
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
        self._x = 0
        self._row_h = 0


# --- variables ----------------------------------------------------------------------------


def datasource_var() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "options": [],
        "skipUrlSync": False,
    }


def query_var(name: str, label: str, query: str, *, multi: bool, include_all: bool) -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-variable-query"},
        "definition": query,
        "current": {},
        "hide": 0,
        "refresh": 2,
        "regex": "",
        "sort": 1,
        "multi": multi,
        "includeAll": include_all,
        "options": [],
        "skipUrlSync": False,
    }


def variables(*, multi_instance: bool) -> list[Json]:
    return [
        datasource_var(),
        query_var(
            "job", "Job", "label_values(ns_exporter_build_info, job)", multi=True, include_all=True
        ),
        query_var(
            "instance",
            "Instance",
            'label_values(ns_exporter_build_info{job=~"$job"}, instance)',
            multi=multi_instance,
            include_all=multi_instance,
        ),
        query_var(
            "ns_type",
            "Namespace type",
            f"label_values(ns_namespaces{{{SEL}}}, ns_type)",
            multi=True,
            include_all=True,
        ),
        query_var(
            "probe_job",
            "Probe job",
            'label_values(probe_ns_check_success{instance=~"$instance"}, job)',
            multi=True,
            include_all=True,
        ),
    ]


def dashboard(
    uid: str,
    title: str,
    *,
    description: str,
    panels: list[Json],
    tmpl: list[Json],
    links: list[Json],
) -> Json:
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "id": None,
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ns_exporter", "namespaces", "linux"],
        "editable": True,
        "graphTooltip": 1,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "timezone": "",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": tmpl},
        "links": links,
        "panels": panels,
    }


def link(title: str, url: str, tooltip: str, *, keep_vars: bool, icon: str = "dashboard") -> Json:
    return {
        "title": title,
        "type": "link",
        "url": url,
        "tooltip": tooltip,
        "icon": icon,
        "includeVars": keep_vars,
        "keepTime": keep_vars,
        "targetBlank": not keep_vars,
        "asDropdown": False,
        "tags": [],
    }


# --- shared panels ------------------------------------------------------------------------


def namespaces_per_type() -> Json:
    return timeseries(
        "Namespaces per type",
        "Namespaces present at each scan (ns_namespaces), summed over the selected hosts.",
        targets((f"sum by (ns_type) (ns_namespaces{{{SEL_T}}})", "{{ns_type}}")),
        "short",
    )


def processes_outside_main() -> Json:
    return timeseries(
        "Processes outside the main namespace, by type",
        "Per host and type: processes that do not live in the type's most populated namespace "
        "(normally the host's own), i.e. how many processes some isolation applies to.",
        targets(
            (
                f"sum by (ns_type) (sum by (job, instance, ns_type) "
                f"(ns_namespace_processes{{{SEL_T}}}) - max by (job, instance, ns_type) "
                f"(ns_namespace_processes{{{SEL_T}}}))",
                "{{ns_type}}",
            )
        ),
        "short",
    )


def avg_processes_per_namespace() -> Json:
    return timeseries(
        "Average processes per namespace, by type",
        "Processes in namespaces of a type divided by the namespaces of that type. "
        "Namespaces held only by a bind mount or an open file count with 0 processes.",
        targets(
            (
                f"sum by (ns_type) (ns_namespace_processes{{{SEL_T}}}) / "
                f"sum by (ns_type) (ns_namespaces{{{SEL_T}}} > 0)",
                "{{ns_type}}",
            )
        ),
        "short",
    )


def top_namespaces(limit: int, *, instance_link: bool) -> Json:
    return table(
        f"Top {limit} namespaces by process count",
        "The most populated namespaces with their lowest pid, its command and owner "
        "(as lsns shows them) and the attribution from its cgroup.",
        [
            target(
                f"topk({limit}, ns_namespace_processes{{{SEL_T}}}) * {JOIN} ({INFO_LABELS}) "
                f"ns_namespace_info{{{SEL}}}"
            )
        ],
        value_name="processes",
        unit="short",
        order=(
            "instance",
            "ns_type",
            "ns_inode",
            "Value",
            "pid",
            "command",
            "owner",
            "holder",
            "container_runtime",
            "container_id",
            "unit",
        ),
        instance_link=instance_link,
        sort_by="processes",
    )


def created_destroyed() -> list[Json]:
    rate = "sum by (ns_type) (rate({m}{{{sel}}}[$__rate_interval]))"
    return [
        timeseries(
            "Namespaces created",
            "Namespaces that appeared since the previous scan, per second "
            "(ns_namespaces_created_total; the namespaces present at start-up are the baseline).",
            targets((rate.format(m="ns_namespaces_created_total", sel=SEL_T), "{{ns_type}}")),
            "cps",
        ),
        timeseries(
            "Namespaces destroyed",
            "Namespaces that disappeared, per second (ns_namespaces_destroyed_total).",
            targets((rate.format(m="ns_namespaces_destroyed_total", sel=SEL_T), "{{ns_type}}")),
            "cps",
        ),
    ]


def lifetime_quantiles() -> Json:
    buckets = f"rate(ns_namespace_lifetime_seconds_bucket{{{SEL_T}}}[$__rate_interval])"
    return timeseries(
        "Lifetime of destroyed namespaces",
        "Quantiles of how long the namespaces destroyed in each interval had lived "
        "(ns_namespace_lifetime_seconds). Empty gaps mean nothing was destroyed.",
        targets(
            (f"histogram_quantile(0.5, sum by (le) ({buckets}))", "p50"),
            (f"histogram_quantile(0.9, sum by (le) ({buckets}))", "p90"),
            (f"histogram_quantile(0.99, sum by (le) ({buckets}))", "p99"),
        ),
        "s",
    )


def average_lifetime() -> Json:
    rate = "sum by (ns_type) (rate(ns_namespace_lifetime_seconds_{s}{{{sel}}}[$__rate_interval]))"
    return timeseries(
        "Average lifetime by type",
        "Mean lifetime of the namespaces destroyed in each interval, per type.",
        targets(
            (
                rate.format(s="sum", sel=SEL_T) + " / " + rate.format(s="count", sel=SEL_T),
                "{{ns_type}}",
            )
        ),
        "s",
    )


def lifetime_heatmap() -> Json:
    return heatmap(
        "Lifetime distribution",
        "Destroyed namespaces per lifetime bucket and interval.",
        "sum by (le) "
        f"(increase(ns_namespace_lifetime_seconds_bucket{{{SEL_T}}}[$__rate_interval]))",
    )


def unexpected_by_type() -> Json:
    return timeseries(
        "Unexpected namespaces by type",
        "Namespaces that no `expected:` rule of the exporter's policy file matches "
        "(ns_unexpected_namespaces). Always 0 without a policy.",
        targets((f"sum by (ns_type) (ns_unexpected_namespaces{{{SEL_T}}})", "{{ns_type}}")),
        "short",
        th=GREEN_RED_AT_1,
        threshold_line=True,
    )


def without_processes_by_type() -> Json:
    return timeseries(
        "Namespaces without processes, by type",
        "Namespaces kept alive only by a bind mount (e.g. /run/netns/NAME) or an open file "
        "descriptor. Ones that stay are often leaked.",
        targets((f"sum by (ns_type) (ns_namespace_processes{{{SEL_T}}} == bool 0)", "{{ns_type}}")),
        "short",
        th=GREEN_ORANGE_AT_1,
    )


def unexpected_table(*, instance_link: bool) -> Json:
    return table(
        "Unexpected namespaces",
        "Each namespace that no expected rule matches, with what the exporter knows of it.",
        [
            target(
                f"ns_namespace_unexpected{{{SEL_T}}} * {JOIN} ({INFO_LABELS}) "
                f"ns_namespace_info{{{SEL}}}"
            )
        ],
        value_name="unexpected",
        unit="short",
        hide=("Time", "__name__", "job", "Value"),
        order=("instance", "ns_type", "ns_inode", "pid", "command", "owner", "holder"),
        instance_link=instance_link,
    )


def leaks_table(*, instance_link: bool) -> Json:
    return table(
        "Namespaces without processes (possible leaks)",
        "Held by a bind mount or an open file descriptor only; age since the exporter first saw "
        "the namespace.",
        [
            target(
                f"(time() - ns_namespace_created_timestamp_seconds{{{SEL_T}}}) * {JOIN} "
                f'(holder, owner, userns_inode) ns_namespace_info{{{SEL}, holder!="process"}}'
            )
        ],
        value_name="age",
        unit="s",
        th=thresholds(("green", None), ("orange", 3600), ("red", 86400)),
        order=("instance", "ns_type", "ns_inode", "holder", "owner", "userns_inode", "Value"),
        instance_link=instance_link,
        cell_color=True,
        sort_by="age",
    )


def limit_usage() -> Json:
    return bargauge(
        "Namespace limit usage",
        "Namespaces present divided by /proc/sys/user/max_TYPE_namespaces (highest host). "
        "The kernel applies the limit per user namespace and user, so this is an upper bound "
        "of the usage of the initial user namespace's limit. "
        "Disabled types (limit 0) are left out.",
        f"max by (ns_type) (ns_namespaces{{{SEL_T}}} / on (job, instance, ns_type) "
        f"(ns_namespace_limit{{{SEL_T}}} > 0))",
        "{{ns_type}}",
        "percentunit",
        th=thresholds(("green", None), ("orange", 0.7), ("red", 0.9)),
        max_value=1,
    )


def limit_headroom() -> Json:
    return timeseries(
        "Headroom until the limit",
        "How many more namespaces of each type the tightest host can create before "
        "max_TYPE_namespaces refuses them.",
        targets(
            (
                f"min by (ns_type) ((ns_namespace_limit{{{SEL_T}}} > 0) "
                f"- on (job, instance, ns_type) ns_namespaces{{{SEL_T}}})",
                "{{ns_type}}",
            )
        ),
        "short",
        th=thresholds(("red", None), ("orange", 100), ("green", 1000)),
        threshold_line=True,
    )


def probe_panels() -> list[tuple[Json, int, int]]:
    return [
        (
            state_timeline(
                "Periodic probe per module",
                "Result of the exporter's own periodic probe runs (ns_probe_success on /metrics).",
                f"min by (module) (ns_probe_success{{{SEL}}})",
                "{{module}}",
                OK_FAIL_MAPPINGS,
            ),
            12,
            7,
        ),
        (
            bargauge(
                "Time since the last periodic probe",
                "Seconds since each module last ran (ns_probe_last_run_timestamp_seconds).",
                f"time() - max by (module) (ns_probe_last_run_timestamp_seconds{{{SEL}}})",
                "{{module}}",
                "s",
                th=thresholds(("green", None), ("orange", 600), ("red", 1800)),
            ),
            12,
            7,
        ),
        (
            state_timeline(
                "Probe result per module (/probe)",
                "probe_success from the Prometheus job that scrapes /probe?module=NAME "
                "(the module label comes from relabelling __param_module).",
                f"min by (module) (probe_success{{{PSEL}}})",
                "{{module}}",
                OK_FAIL_MAPPINGS,
            ),
            12,
            7,
        ),
        (
            timeseries(
                "Probe duration per module",
                "How long a /probe request took (probe_duration_seconds).",
                targets((f"max by (module) (probe_duration_seconds{{{PSEL}}})", "{{module}}")),
                "s",
                th=thresholds(("green", None), ("orange", 1), ("red", 5)),
                threshold_line=True,
            ),
            12,
            7,
        ),
        (
            table(
                "Probe checks",
                "Each isolation check of the last /probe per module: 1 passed, 0 failed.",
                [target(f"min by (instance, module, check) (probe_ns_check_success{{{PSEL}}})")],
                value_name="result",
                unit="short",
                th=RED_GREEN_AT_1,
                mappings=OK_FAIL_MAPPINGS,
                order=("instance", "module", "check", "Value"),
                cell_color=True,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Probe failure reasons",
                "Why a probe failed (probe_failure_info{reason}). Empty while every probe passes.",
                targets(
                    (
                        f"sum by (module, reason) (probe_failure_info{{{PSEL}}})",
                        "{{module}}: {{reason}}",
                    )
                ),
                "short",
                th=GREEN_RED_AT_1,
            ),
            12,
            8,
        ),
    ]


def exporter_panels(by: str) -> list[tuple[Json, int, int]]:
    legend = "{{" + by + "}}"
    return [
        (
            timeseries(
                "Scan duration",
                "How long the last walk of procfs took (ns_exporter_scan_duration_seconds).",
                targets((f"max by ({by}) (ns_exporter_scan_duration_seconds{{{SEL}}})", legend)),
                "s",
                th=thresholds(("green", None), ("orange", 1), ("red", 5)),
                threshold_line=True,
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Scans per second",
                "Scans per second: the interval plus scans triggered by process events.",
                targets(
                    (
                        f"sum by ({by}) (rate(ns_exporter_scans_total{{{SEL}}}[$__rate_interval]))",
                        legend,
                    )
                ),
                "cps",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Processes scanned",
                "Processes seen by the last scan (ns_exporter_processes_scanned).",
                targets((f"sum by ({by}) (ns_exporter_processes_scanned{{{SEL}}})", legend)),
                "short",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Skipped processes",
                "Processes left out of a scan per second: `vanished` (exited while being read) is "
                "normal churn, `permission_denied` means the exporter lacks privileges.",
                targets(
                    (
                        f"sum by (reason) (rate(ns_exporter_scan_skipped_processes_total{{{SEL}}}"
                        "[$__rate_interval]))",
                        "{{reason}}",
                    )
                ),
                "cps",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Scan errors",
                "Unexpected errors during scans per second (ns_exporter_scan_errors_total). "
                "Must stay 0; see the exporter's log.",
                targets(
                    (
                        f"sum by ({by}) "
                        f"(rate(ns_exporter_scan_errors_total{{{SEL}}}[$__rate_interval]))",
                        legend,
                    )
                ),
                "cps",
                th=thresholds(("green", None), ("red", 0.0001)),
                threshold_line=True,
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Exporter CPU",
                "CPU time the exporter uses, in cores (1 = one full core).",
                targets(
                    (
                        f"sum by ({by}) "
                        f"(rate(process_cpu_seconds_total{{{SEL}}}[$__rate_interval]))",
                        legend,
                    )
                ),
                "percentunit",
                th=thresholds(("green", None), ("orange", 0.25), ("red", 0.5)),
                threshold_line=True,
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Exporter memory",
                "Resident memory of the exporter process.",
                targets((f"sum by ({by}) (process_resident_memory_bytes{{{SEL}}})", legend)),
                "bytes",
            ),
            8,
            7,
        ),
        (
            state_timeline(
                "Collector success",
                "ns_scrape_collector_success per collector (as node_exporter).",
                f"min by (collector) (ns_scrape_collector_success{{{SEL}}})",
                "{{collector}}",
                OK_FAIL_MAPPINGS,
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Collector duration",
                "ns_scrape_collector_duration_seconds per collector (slowest host).",
                targets(
                    (
                        f"max by (collector) (ns_scrape_collector_duration_seconds{{{SEL}}})",
                        "{{collector}}",
                    )
                ),
                "s",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Process events",
                "Fork/exec/exit events from the proc connector per second, and events lost.",
                targets(
                    (
                        "sum by (event) "
                        f"(rate(ns_exporter_events_total{{{SEL}}}[$__rate_interval]))",
                        "{{event}}",
                    ),
                    (
                        f"sum(rate(ns_exporter_events_lost_total{{{SEL}}}[$__rate_interval]))",
                        "lost",
                    ),
                ),
                "cps",
            ),
            8,
            7,
        ),
        (
            state_timeline(
                "Event listener",
                "ns_exporter_event_listener_up: 0 means the exporter only scans on its interval.",
                f"min by ({by}) (ns_exporter_event_listener_up{{{SEL}}})",
                legend,
                UP_DOWN_MAPPINGS,
            ),
            8,
            7,
        ),
        (
            state_timeline(
                "Configuration reload",
                "ns_exporter_config_last_reload_successful: 0 means the last reload of the policy "
                "file failed and the previous configuration is still in force.",
                f"min by ({by}) (ns_exporter_config_last_reload_successful{{{SEL}}})",
                legend,
                OK_FAIL_MAPPINGS,
            ),
            8,
            7,
        ),
    ]


# --- the dashboards -----------------------------------------------------------------------


def add_common_rows(g: Grid, instance_link: bool) -> None:
    """The rows both dashboards share: lifecycle, unexpected/leaked, limits, probe, exporter."""
    g.row("Lifecycle")
    for p in created_destroyed():
        g.add(p, 8, 8)
    g.add(lifetime_quantiles(), 8, 8)
    g.add(lifetime_heatmap(), 12, 8)
    g.add(average_lifetime(), 12, 8)

    g.row("Unexpected and leaked namespaces")
    g.add(unexpected_by_type(), 12, 7)
    g.add(without_processes_by_type(), 12, 7)
    g.add(unexpected_table(instance_link=instance_link), 12, 8)
    g.add(leaks_table(instance_link=instance_link), 12, 8)

    g.row("Limits")
    g.add(limit_usage(), 12, 7)
    g.add(limit_headroom(), 12, 7)

    g.row("Probe")
    for p, w, h in probe_panels():
        g.add(p, w, h)

    g.row("Exporter")
    for p, w, h in exporter_panels("instance"):
        g.add(p, w, h)


def overview() -> Json:
    g = Grid()
    g.row("Summary")
    stats = [
        stat(
            "Targets down",
            "Scrape targets of the selected jobs whose last scrape failed (Prometheus' up).",
            f"count(up{{{SEL}}} == 0) or vector(0)",
            "short",
            GREEN_RED_AT_1,
        ),
        stat(
            "Namespaces",
            "Namespaces on the selected hosts.",
            f"sum(ns_namespaces{{{SEL}}})",
            "short",
            NEUTRAL,
        ),
        stat(
            "Processes",
            "Processes seen by the last scan, all hosts.",
            f"sum(ns_exporter_processes_scanned{{{SEL}}})",
            "short",
            NEUTRAL,
        ),
        stat(
            "Unexpected namespaces",
            "Namespaces no expected rule matches.",
            f"sum(ns_unexpected_namespaces{{{SEL}}})",
            "short",
            GREEN_RED_AT_1,
        ),
        stat(
            "Scan errors",
            "Unexpected scan errors in the time range.",
            f"sum(increase(ns_exporter_scan_errors_total{{{SEL}}}[$__range]))",
            "short",
            GREEN_RED_AT_1,
            decimals=0,
        ),
        stat(
            "Oldest scan",
            "Age of the oldest last scan among the selected hosts.",
            f"time() - min(ns_exporter_last_scan_timestamp_seconds{{{SEL}}})",
            "s",
            thresholds(("green", None), ("orange", 120), ("red", 600)),
        ),
        stat(
            "Failing probe modules",
            "Module/host pairs whose last periodic probe failed.",
            f"count(ns_probe_success{{{SEL}}} == 0) or vector(0)",
            "short",
            GREEN_RED_AT_1,
        ),
        stat(
            "Dropped series",
            "Namespaces beyond --namespaces.max-series that got no per-namespace series.",
            f"sum(ns_exporter_namespaces_dropped{{{SEL}}})",
            "short",
            GREEN_ORANGE_AT_1,
        ),
    ]
    for p in stats:
        g.add(p, 3, 4)

    g.row("Inventory")
    g.add(namespaces_per_type(), 12, 8)
    g.add(processes_outside_main(), 12, 8)
    g.add(top_namespaces(20, instance_link=True), 16, 10)
    g.add(avg_processes_per_namespace(), 8, 10)

    add_common_rows(g, instance_link=True)
    g.add(build_info_table(), 24, 5)

    return dashboard(
        "ns-exporter-overview",
        "ns_exporter / Overview",
        description="Linux namespaces across hosts: inventory, lifecycle, policy, limits, probes "
        "and the exporter's health.",
        panels=g.panels,
        tmpl=variables(multi_instance=True),
        links=[
            link(
                "Host drill-down",
                HOST_URL,
                "One host in detail",
                keep_vars=True,
            )
        ],
    )


def build_info_table() -> Json:
    return table(
        "Exporter versions",
        "ns_exporter_build_info per host.",
        [target(f"ns_exporter_build_info{{{SEL}}}")],
        value_name="info",
        unit="short",
        hide=("Time", "__name__", "Value"),
        order=("job", "instance", "version", "revision", "pythonversion"),
    )


def host() -> Json:
    g = Grid()
    g.row("Summary")
    stats = [
        stat(
            "Version",
            "ns_exporter_build_info.",
            f"ns_exporter_build_info{{{SEL}}}",
            "none",
            NEUTRAL,
            legend="{{version}}",
            text_mode="name",
        ),
        stat(
            "Namespaces",
            "All namespaces of the host.",
            f"sum(ns_namespaces{{{SEL}}})",
            "short",
            NEUTRAL,
        ),
        stat(
            "Processes",
            "Processes seen by the last scan.",
            f"sum(ns_exporter_processes_scanned{{{SEL}}})",
            "short",
            NEUTRAL,
        ),
        stat(
            "Unexpected",
            "Namespaces no expected rule matches.",
            f"sum(ns_unexpected_namespaces{{{SEL}}})",
            "short",
            GREEN_RED_AT_1,
        ),
        stat(
            "Last scan",
            "Seconds since the last scan finished.",
            f"time() - max(ns_exporter_last_scan_timestamp_seconds{{{SEL}}})",
            "s",
            thresholds(("green", None), ("orange", 120), ("red", 600)),
        ),
        stat(
            "Scan duration",
            "Duration of the last scan.",
            f"max(ns_exporter_scan_duration_seconds{{{SEL}}})",
            "s",
            thresholds(("green", None), ("orange", 1), ("red", 5)),
        ),
        stat(
            "Event listener",
            "Whether process events trigger scans between intervals.",
            f"min(ns_exporter_event_listener_up{{{SEL}}})",
            "none",
            RED_GREEN_AT_1,
            mappings=UP_DOWN_MAPPINGS,
        ),
        stat(
            "Periodic probe",
            "Worst result of the periodic probe over all modules.",
            f"min(ns_probe_success{{{SEL}}})",
            "none",
            RED_GREEN_AT_1,
            mappings=OK_FAIL_MAPPINGS,
        ),
    ]
    for p in stats:
        g.add(p, 3, 4)

    g.row("Namespaces")
    g.add(namespaces_per_type(), 12, 8)
    g.add(processes_outside_main(), 12, 8)
    g.add(
        table(
            "All namespaces",
            "Every namespace of the last scan (up to --namespaces.max-series) with its process "
            "count, owner, relations and attribution. Filter a column with its funnel icon.",
            [
                target(
                    f"ns_namespace_processes{{{SEL_T}}} * {JOIN} ({INFO_LABELS}, parent_inode, "
                    f"userns_inode) ns_namespace_info{{{SEL}}}",
                    ref="A",
                ),
                target(
                    f"time() - ns_namespace_created_timestamp_seconds{{{SEL_T}}}",
                    ref="B",
                ),
            ],
            value_name="processes",
            unit="short",
            merge=True,
            hide=("Time", "__name__", "job", "instance"),
            extra_renames={"Value #A": "processes", "Value #B": "age"},
            column_units={"age": "s"},
            order=(
                "ns_type",
                "ns_inode",
                "Value #A",
                "pid",
                "command",
                "owner",
                "holder",
                "parent_inode",
                "userns_inode",
                "container_runtime",
                "container_id",
                "unit",
                "Value #B",
            ),
            sort_by="processes",
        ),
        24,
        12,
    )
    g.add(
        table(
            "Most recently created namespaces",
            "The newest namespaces by estimated creation time.",
            [
                target(
                    f"(topk(15, ns_namespace_created_timestamp_seconds{{{SEL_T}}}) * 1000) "
                    f"* {JOIN} ({INFO_LABELS}) ns_namespace_info{{{SEL}}}"
                )
            ],
            value_name="created",
            unit="dateTimeFromNow",
            hide=("Time", "__name__", "job", "instance"),
            order=("ns_type", "ns_inode", "Value", "pid", "command", "owner", "holder"),
            sort_by="created",
        ),
        12,
        9,
    )
    g.add(
        bargauge(
            "Namespaces per owner",
            "Namespaces by the user owning their lowest process "
            "(user namespaces: the kernel's owner).",
            f"count by (owner) (ns_namespace_info{{{SEL_T}}})",
            "{{owner}}",
            "short",
            th=NEUTRAL,
        ),
        6,
        9,
    )
    g.add(
        bargauge(
            "Namespaces per systemd unit",
            "Namespaces whose lowest process runs in a systemd unit, by unit.",
            f'count by (unit) (ns_namespace_info{{{SEL_T}, unit!=""}})',
            "{{unit}}",
            "short",
            th=NEUTRAL,
        ),
        6,
        9,
    )
    g.add(
        table(
            "Containers",
            "Namespaces attributed to a container runtime, per container.",
            [
                target(
                    "count by (container_runtime, container_id, ns_type) "
                    f'(ns_namespace_info{{{SEL_T}, container_id!=""}})'
                )
            ],
            value_name="namespaces",
            unit="short",
            order=("container_runtime", "container_id", "ns_type", "Value"),
        ),
        24,
        8,
    )

    add_common_rows(g, instance_link=False)

    return dashboard(
        "ns-exporter-host",
        "ns_exporter / Host",
        description="One host's Linux namespaces in detail.",
        panels=g.panels,
        tmpl=variables(multi_instance=False),
        links=[
            link(
                "Overview",
                OVERVIEW_URL,
                "All hosts",
                keep_vars=True,
            ),
            link(
                "Namespace explorer",
                "http://${instance}/explorer",
                "The exporter's own page with the namespace tree (assumes plain HTTP)",
                keep_vars=False,
                icon="external link",
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[], Json]] = {
    "ns-exporter-overview.json": overview,
    "ns-exporter-host.json": host,
}


def render(build: Callable[[], Json]) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else HERE
    for name, build in DASHBOARDS.items():
        (out / name).write_text(render(build), encoding="utf-8")
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
