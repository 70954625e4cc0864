"""The Grafana dashboards: valid classic JSON, queries that parse and name real metrics."""

from __future__ import annotations

import importlib.util
import re
from itertools import combinations
from typing import Any

import promql_parser
import pytest

from tests.dashboards import (
    DASHBOARD_DIR,
    DASHBOARD_FILES,
    EXPORTER_METRICS,
    GRAFANA_BUILTINS,
    HISTOGRAMS,
    PROBE_METRICS,
    SERIES_NAMES,
    Query,
    all_queries,
    label_values_selector,
    load,
    panels,
    queries,
    series_names,
    substitute,
    variable_names,
)

UIDS = {
    "ns-exporter-overview.json": "ns-exporter-overview",
    "ns-exporter-host.json": "ns-exporter-host",
}
# Values that make every dashboard variable concrete (Grafana formats a multi-value selection
# as a regex alternation; one value is the simplest case of that).
VARIABLE_VALUES = {
    **GRAFANA_BUILTINS,
    "datasource": "prometheus",
    "job": "ns_exporter",
    "instance": "host1:10199",
    "ns_type": "(net|pid)",
    "probe_job": "ns_exporter_probe",
}
# Range selectors must follow the dashboard's time picker, never a fixed window.
ALLOWED_RANGES = frozenset({"[$__rate_interval]", "[$__range]", "[$__interval]"})
PANELS_WITHOUT_QUERIES = frozenset({"row", "text"})

ALL_QUERIES = all_queries()


@pytest.fixture(params=DASHBOARD_FILES)
def dashboard(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name: str = request.param
    return name, load(name)


def _load_builder() -> Any:
    spec = importlib.util.spec_from_file_location("dashboard_build", DASHBOARD_DIR / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_what_build_py_generates() -> None:
    builder = _load_builder()
    assert set(builder.DASHBOARDS) == set(DASHBOARD_FILES)
    for name, build in builder.DASHBOARDS.items():
        committed = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert committed == builder.render(build), f"{name} is stale: run dashboards/build.py"


def test_classic_dashboard_identity(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, data = dashboard
    assert data["id"] is None
    assert data["uid"] == UIDS[name]
    assert len(data["uid"]) <= 40
    assert data["title"].startswith("ns_exporter / ")
    assert isinstance(data["schemaVersion"], int)
    assert "ns_exporter" in data["tags"]


def test_variables(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, data = dashboard
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        selector, label = label_values_selector(variables[name]["definition"])
        assert label == name
        assert selector is not None
        assert series_names(selector) == {"ns_exporter_build_info"}
    for var in variables.values():
        if var["type"] != "query":
            continue
        assert var["definition"] == var["query"]["query"]
        selector, _ = label_values_selector(var["definition"])
        if selector is not None:
            concrete = substitute(selector, VARIABLE_VALUES)
            assert series_names(concrete) <= SERIES_NAMES, var["name"]


def test_every_panel_uses_the_datasource_variable(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, data = dashboard
    for panel in panels(data):
        if panel["type"] in PANELS_WITHOUT_QUERIES:
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_panels_have_units_thresholds_and_descriptions(
    dashboard: tuple[str, dict[str, Any]],
) -> None:
    _, data = dashboard
    for panel in panels(data):
        if panel["type"] in PANELS_WITHOUT_QUERIES:
            continue
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{panel['title']}: no unit"
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None, f"{panel['title']}: thresholds need a base step"
        values = [s["value"] for s in steps[1:]]
        assert values == sorted(values), f"{panel['title']}: thresholds out of order"
        assert panel["description"], f"{panel['title']}: no description"


def test_layout_fits_the_grid_without_overlaps(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, data = dashboard
    all_panels = list(panels(data))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    boxes = []
    for p in all_panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0
        assert pos["w"] > 0
        assert pos["x"] + pos["w"] <= 24, p["title"]
        boxes.append((p["title"], pos))
    for (a_title, a), (b_title, b) in combinations(boxes, 2):
        apart = (
            a["x"] + a["w"] <= b["x"]
            or b["x"] + b["w"] <= a["x"]
            or a["y"] + a["h"] <= b["y"]
            or b["y"] + b["h"] <= a["y"]
        )
        assert apart, f"{a_title!r} overlaps {b_title!r}"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_parses_and_names_only_exposed_metrics(query: Query) -> None:
    concrete = substitute(query.expr, VARIABLE_VALUES)
    assert "$" not in concrete
    try:
        names = series_names(concrete)
    except ValueError as err:
        pytest.fail(f"{query.name} does not parse: {err}\n{concrete}")
    assert names, f"{query.name} selects no metric"
    assert names <= SERIES_NAMES, f"{query.name} names unknown series {names - SERIES_NAMES}"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_ranges_follow_the_time_picker(query: Query) -> None:
    ranges = set(re.findall(r"\[[^\]]*\]", query.expr))
    assert ranges <= ALLOWED_RANGES, f"{query.name}: fixed range {ranges - ALLOWED_RANGES}"
    if re.search(r"\b(rate|irate)\(", query.expr):
        assert "[$__rate_interval]" in query.expr, query.name


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_variables_are_defined(query: Query) -> None:
    defined = {v["name"] for v in load(query.dashboard)["templating"]["list"]}
    unknown = variable_names(query.expr) - defined - set(GRAFANA_BUILTINS)
    assert not unknown, f"{query.name} uses undefined variables {unknown}"


def test_queries_on_the_exporter_select_job_and_instance() -> None:
    for query in ALL_QUERIES:
        for selector in re.findall(r"\b(?:ns_|probe_|process_|up\b)\w*\{[^}]*\}", query.expr):
            assert 'instance=~"$instance"' in selector, f"{query.name}: {selector}"
            assert re.search(r'job=~"\$(probe_)?job"', selector), f"{query.name}: {selector}"


def test_overview_shows_every_exposed_family() -> None:
    used = set().union(
        *(series_names(substitute(q.expr, VARIABLE_VALUES)) for q in queries(DASHBOARD_FILES[0]))
    )
    families = {next((h for h in HISTOGRAMS if name.startswith(h + "_")), name) for name in used}
    missing = (EXPORTER_METRICS | PROBE_METRICS) - families
    assert not missing, f"the overview shows nothing of {sorted(missing)}"


def test_series_names_sees_every_selector() -> None:
    # The helper the checks above rely on must not miss names in nested expressions.
    expr = 'sum(rate(a_total[1m])) / on () group_left topk(3, b * on (x) c) + {__name__="d"}'
    assert series_names(expr) == {"a_total", "b", "c", "d"}
    with pytest.raises(ValueError, match="parenthesis"):
        promql_parser.parse("sum(rate(x[1m])")
