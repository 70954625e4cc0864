"""Every dashboard query against a real Prometheus that scrapes the real exporter.

The exporter runs as `python -m ns_exporter` with a 1 s scan interval; Prometheus scrapes
/metrics every second and /probe as a job of its own. While they run the test makes a little
namespace traffic (a bind-mounted netns, a user+pid namespace, a short-lived net namespace)
so that the inventory, lifecycle and leak panels have something to show, and a policy that
leaves the bind-mounted netns unexpected.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.dashboards import (
    DASHBOARD_FILES,
    PROBE_METRICS,
    Query,
    all_queries,
    label_values_selector,
    load,
    panels,
    series_names,
    substitute,
)
from tests.e2e.stack import (
    NOT_EXPOSED_YET,
    POLICY,
    Prometheus,
    bound_netns,
    leaf,
    run_prometheus,
)
from tests.helpers import (
    USER_OWNED_PID_NS,
    Exporter,
    ns_inode,
    run_exporter,
    spawned,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

JOB = "ns_exporter"
PROBE_JOB = "ns_exporter_probe"

# Panels whose queries may legitimately return nothing on a quiet, healthy host.
EMPTY_ON_QUIET_HOST: dict[str, str] = {
    "Probe failure reasons": "only failing probes have a reason",
    "Containers": "no container runtime on the test host",
    "Namespaces per systemd unit": "the test host need not run systemd",
}
# Families with samples only when something fails; the endpoint must still declare them.
ONLY_ON_FAILURE: dict[str, str] = {"probe_failure_info": "/probe?module=pid"}
# What Grafana would put in: one job, one instance, every type, a 1 s scrape interval.
RATE_INTERVAL = "10s"


def address(exporter: Exporter) -> str:
    """host:port, as Prometheus labels the instance."""
    return exporter.url.removeprefix("http://")


def grafana_values(exporter: Exporter) -> dict[str, str]:
    return {
        "__rate_interval": RATE_INTERVAL,
        "__interval": "2s",
        "__range": "1m",
        "__range_s": "60",
        "__range_ms": "60000",
        "__interval_ms": "2000",
        "datasource": "prometheus",
        "job": JOB,
        "instance": address(exporter).replace(".", "\\\\."),
        "ns_type": ".*",
        "probe_job": PROBE_JOB,
    }


def prometheus_config(address: str) -> str:
    return f"""
    global:
      scrape_interval: 1s
      scrape_timeout: 1s
      evaluation_interval: 1s
    scrape_configs:
      - job_name: {JOB}
        static_configs:
          - targets: ["{address}"]
      - job_name: {PROBE_JOB}
        metrics_path: /probe
        scrape_interval: 5s
        scrape_timeout: 4s
        static_configs:
          - targets: ["{address}"]
            labels: {{__param_module: pid}}
          - targets: ["{address}"]
            labels: {{__param_module: net}}
        relabel_configs:
          - source_labels: [__param_module]
            target_label: module
    """


@dataclass(frozen=True, slots=True)
class Stack:
    exporter: Exporter
    prometheus: Prometheus
    exposed: frozenset[str]  # series names in a real scrape of /metrics


def _namespaces(exporter: Exporter) -> list[dict[str, object]]:
    body = requests.get(f"{exporter.url}/api/namespaces", timeout=5).json()
    namespaces: list[dict[str, object]] = body["namespaces"]
    return namespaces


def _seen(exporter: Exporter, ns_type: str, inode: int) -> bool:
    return any(ns["ns_type"] == ns_type and ns["inode"] == inode for ns in _namespaces(exporter))


def _scrape_names(exporter: Exporter) -> frozenset[str]:
    text = requests.get(f"{exporter.url}/metrics", timeout=5).text
    return frozenset(
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = str(tmp_path_factory.mktemp("dashboards"))
    with contextlib.ExitStack() as stack:
        stack.enter_context(bound_netns(f"nsdash-{os.getpid()}"))
        nested = stack.enter_context(spawned(USER_OWNED_PID_NS))
        nested_pid = leaf(nested.pid, 1)
        policy = Path(tmp) / "policy.yml"
        policy.write_text(POLICY)
        exporter = stack.enter_context(
            run_exporter("--scan.interval=1s", f"--config.file={policy}", tmp_dir=tmp)
        )
        prometheus = stack.enter_context(run_prometheus(prometheus_config(address(exporter))))
        wait_for(lambda: _seen(exporter, "pid", ns_inode(nested_pid, "pid")), timeout=30)
        # Churn: a namespace that lives for a few scans, then goes.
        with spawned(["unshare", "--net", "--uts", "--fork", "sleep", "600"]) as brief:
            net = ns_inode(leaf(brief.pid, 1), "net")
            wait_for(lambda: _seen(exporter, "net", net), timeout=30)
            exporter.wait_scans(2)
        wait_for(lambda: not _seen(exporter, "net", net), timeout=30)

        def enough_samples() -> bool:
            data = prometheus.query(f'count_over_time(ns_exporter_scans_total{{job="{JOB}"}}[1m])')
            return bool(data["result"]) and float(data["result"][0]["value"][1]) >= 12

        wait_for(enough_samples, timeout=90)
        yield Stack(exporter, prometheus, _scrape_names(exporter))


def _families_used() -> list[str]:
    used: set[str] = set()
    for query in all_queries():
        used |= series_names(substitute(query.expr, _PARSE_VALUES))
    return sorted(used - {"up"})


_PARSE_VALUES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
    "datasource": "x",
    "job": "x",
    "instance": "x",
    "ns_type": "x",
    "probe_job": "x",
}


def _family_param(name: str) -> object:
    if name in NOT_EXPOSED_YET:
        reason = f"not exposed on this branch yet: {NOT_EXPOSED_YET[name]}"
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=reason))
    return name


@pytest.mark.parametrize("name", [_family_param(n) for n in _families_used()])
def test_dashboard_family_is_exposed(stack: Stack, name: str) -> None:
    if name in ONLY_ON_FAILURE:
        text = requests.get(f"{stack.exporter.url}{ONLY_ON_FAILURE[name]}", timeout=10).text
        assert f"# TYPE {name} gauge" in text, f"{ONLY_ON_FAILURE[name]} does not declare {name}"
    elif name in PROBE_METRICS:
        data = stack.prometheus.query(f'{name}{{job="{PROBE_JOB}"}}')
        assert data["result"], f"/probe exposes no {name}"
    else:
        assert name in stack.exposed, f"/metrics has no {name}"


def _query_param(query: Query) -> object:
    return pytest.param(query, id=query.name)


@pytest.mark.parametrize("query", [_query_param(q) for q in all_queries()])
def test_panel_query_returns_data(stack: Stack, query: Query) -> None:
    concrete = substitute(query.expr, grafana_values(stack.exporter))
    data = stack.prometheus.query(concrete)  # raises on a parse or evaluation error
    missing = series_names(substitute(query.expr, _PARSE_VALUES)) & set(NOT_EXPOSED_YET)
    if query.panel in EMPTY_ON_QUIET_HOST:
        return
    if missing:
        pytest.skip(f"uses {sorted(missing)}, not exposed on this branch yet")
    assert data["result"], f"{query.name} returned nothing:\n{concrete}"


def test_quiet_host_list_names_real_panels() -> None:
    titles = {p["title"] for name in DASHBOARD_FILES for p in panels(load(name))}
    assert set(EMPTY_ON_QUIET_HOST) <= titles


@pytest.mark.parametrize("dashboard", DASHBOARD_FILES)
def test_variable_queries_find_values(stack: Stack, dashboard: str) -> None:
    values = grafana_values(stack.exporter)
    expected = {"job": {JOB}, "instance": {address(stack.exporter)}}
    for var in load(dashboard)["templating"]["list"]:
        if var["type"] != "query":
            continue
        selector, label = label_values_selector(var["definition"])
        assert selector is not None
        found = {
            s[label] for s in stack.prometheus.series(substitute(selector, values)) if label in s
        }
        if var["name"] in expected:
            assert found == expected[var["name"]], var["name"]
        elif var["name"] == "ns_type":
            assert found == {"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"}
        elif var["name"] == "probe_job" and "probe_ns_check_success" in NOT_EXPOSED_YET:
            continue
        else:
            assert found, f"{dashboard}: variable {var['name']} finds no value"
