"""Kubernetes manifests: strict schema validation offline, and the properties the issue asks for.

Built-in kinds are validated by kubernetes-validate --strict (unknown fields are errors) against
the oldest Kubernetes version the manifests claim (1.30: pod-level appArmorProfile) and the newest
the tool knows. kubernetes-validate has no schema for custom resources and only warns about them,
so the Prometheus Operator kinds (PodMonitor, PrometheusRule) are validated against the models
that cloudcoil-models-prometheus-operator generates from the Operator's CRD schemas (types,
enums, patterns); a model drops unknown fields, so a resource that does not survive a
validate/dump round trip unchanged has a field the CRD does not know.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ns_exporter.config import DEFAULT_PORT
from tests.deploy_files import KUBERNETES, REPO, os_tool, parse_command_line, require_tool

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
OPERATOR_GROUP = "monitoring.coreos.com"
RULES = REPO / "rules" / "ns_exporter.rules.yml"
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _resources() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in _documents(path)]


def _is_custom(doc: dict[str, Any]) -> bool:
    return str(doc["apiVersion"]).split("/")[0] == OPERATOR_GROUP


def _one(kind: str) -> dict[str, Any]:
    (doc,) = [doc for _, doc in _resources() if doc["kind"] == kind]
    return doc


def _container() -> dict[str, Any]:
    (container,) = _one("DaemonSet")["spec"]["template"]["spec"]["containers"]
    return container


def _renderer() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "render_prometheusrule", REPO / "scripts" / "render_prometheusrule.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- schema validation -------------------------------------------------------------------------


def test_every_manifest_is_a_kind_we_can_validate() -> None:
    kinds = {doc["kind"] for _, doc in _resources()}
    assert kinds == {
        "ServiceAccount",
        "DaemonSet",
        "Service",
        "PodMonitor",
        "PrometheusRule",
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_kinds_validate_strictly(version: str) -> None:
    tool = require_tool("kubernetes-validate", "pip install -e '.[test]' (kubernetes-validate)")
    files = sorted({str(path) for path, doc in _resources() if not _is_custom(doc)})
    result = subprocess.run(
        [tool, "--strict", "--kubernetes-version", version, *files],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if not line.startswith("INFO ")] == []
    assert len(lines) == sum(1 for _, doc in _resources() if not _is_custom(doc))


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path: Path) -> None:
    """Control: strict mode really rejects what the cluster would reject."""
    tool = require_tool("kubernetes-validate", "pip install -e '.[test]' (kubernetes-validate)")
    daemonset = _one("DaemonSet")
    daemonset["spec"]["template"]["spec"]["hostPId"] = True
    bad = tmp_path / "daemonset.yaml"
    bad.write_text(yaml.safe_dump(daemonset))
    result = subprocess.run(
        [tool, "--strict", str(bad)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode != 0
    assert "hostPId" in result.stdout


def _operator_model(kind: str) -> Any:
    from cloudcoil.models.prometheus_operator import v1

    return getattr(v1, kind)


def _round_trip(doc: dict[str, Any]) -> dict[str, Any]:
    model = _operator_model(doc["kind"]).model_validate(doc)
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return dumped


@pytest.mark.parametrize("kind", ["PodMonitor", "PrometheusRule"])
def test_operator_resources_validate_against_their_crd(kind: str) -> None:
    doc = _one(kind)
    assert doc["apiVersion"] == f"{OPERATOR_GROUP}/v1"
    assert _round_trip(doc) == doc


def test_crd_validation_rejects_an_unknown_field_and_a_bad_value() -> None:
    """Control: the round trip catches a misspelt field; the model catches a bad duration."""
    from pydantic import ValidationError

    doc = _one("PodMonitor")
    doc["spec"]["podMetricsEndpoints"][0]["intervall"] = "30s"
    assert _round_trip(doc) != doc
    doc = _one("PodMonitor")
    doc["spec"]["podMetricsEndpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(ValidationError):
        _round_trip(doc)


# --- PrometheusRule and the rule file ------------------------------------------------------------


def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    promtool = os_tool("promtool", "prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(_one("PrometheusRule")["spec"]))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_wraps_the_rule_file() -> None:
    if not RULES.exists():
        pytest.skip(f"{RULES.relative_to(REPO)} is not in this tree yet")
    rules_text = RULES.read_text()
    assert _one("PrometheusRule")["spec"] == yaml.safe_load(rules_text), (
        "deploy/kubernetes/prometheusrule.yaml is stale: run scripts/render_prometheusrule.py"
    )
    assert (KUBERNETES / "prometheusrule.yaml").read_text() == _renderer().render(rules_text)


def test_renderer_keeps_the_rules_and_their_comments() -> None:
    rules_text = (
        "# owned by the rules file\n"
        "groups:\n"
        "  - name: ns_exporter\n"
        "    rules:\n"
        "      - alert: NsExporterScanErrors\n"
        "        expr: |\n"
        "          increase(ns_exporter_scan_errors_total[10m]) > 0\n"
        "\n"
        "        for: 5m\n"
    )
    manifest = _renderer().render(rules_text)
    doc = yaml.safe_load(manifest)
    assert doc["kind"] == "PrometheusRule"
    assert doc["spec"] == yaml.safe_load(rules_text)
    assert "  # owned by the rules file\n" in manifest
    with pytest.raises(ValueError, match="groups"):
        _renderer().render("rules: []\n")


# --- what the issue asks of the DaemonSet -----------------------------------------------------


def test_daemonset_sees_the_host_with_minimal_privilege() -> None:
    pod = _one("DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert not pod.get("hostNetwork", False)
    assert pod["automountServiceAccountToken"] is False
    assert {"operator": "Exists"} in pod["tolerations"]
    security = _container()["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["SYS_PTRACE", "DAC_READ_SEARCH"]}
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["privileged"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in _container()["volumeMounts"]}
    assert mounts["/host/proc"]["readOnly"] is True
    assert volumes[mounts["/host/proc"]["name"]]["hostPath"]["path"] == "/proc"
    assert all(m.get("readOnly") for m in mounts.values())


def test_daemonset_args_parse_with_the_real_cli() -> None:
    settings = parse_command_line(_container()["args"])
    assert settings.procfs == "/host/proc"
    assert settings.listen.port == DEFAULT_PORT
    assert settings.probe_enabled is False


def test_daemonset_probes_resources_and_ports() -> None:
    container = _container()
    (port,) = container["ports"]
    assert port["containerPort"] == DEFAULT_PORT
    assert container["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert container["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    for bound in ("requests", "limits"):
        assert set(container["resources"][bound]) == {"cpu", "memory"}


def test_monitors_and_service_select_the_daemonset_pods() -> None:
    pod_labels = _one("DaemonSet")["spec"]["template"]["metadata"]["labels"]
    selectors = (
        _one("PodMonitor")["spec"]["selector"]["matchLabels"],
        _one("Service")["spec"]["selector"],
    )
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    (port,) = _container()["ports"]
    assert _one("PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == port["name"]
    annotations = _one("DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(DEFAULT_PORT)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)


# --- Prometheus without the Operator: the annotation scrape job ---------------------------------


def _relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus relabelling for the actions the example uses (replace, keep)."""
    labels = dict(labels)
    for config in configs:
        value = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels", [])
        )
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        action = config.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                template = re.sub(r"\$(\d+)", r"\\\1", config.get("replacement", "$1"))
                labels[config["target_label"]] = match.expand(template)
        else:
            raise AssertionError(f"relabel action {action} not modelled by this test")
    return labels


def test_annotation_scrape_job_targets_annotated_exporter_pods() -> None:
    config = yaml.safe_load((KUBERNETES / "prometheus-scrape-config.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    pod = _one("DaemonSet")["spec"]["template"]["metadata"]
    meta = {
        "__address__": "10.1.2.3:10199",
        "__metrics_path__": "/metrics",
        "__meta_kubernetes_pod_name": "ns-exporter-abcde",
        "__meta_kubernetes_pod_node_name": "node-1",
        **{
            "__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key): value
            for key, value in pod["annotations"].items()
        },
        **{
            "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key): value
            for key, value in pod["labels"].items()
        },
    }
    target = _relabel(meta, job["relabel_configs"])
    assert target is not None
    assert target["__address__"] == f"10.1.2.3:{DEFAULT_PORT}"
    assert target["__metrics_path__"] == "/metrics"
    assert target["node"] == "node-1"
    other = {k: v for k, v in meta.items() if "annotation_prometheus_io_scrape" not in k}
    assert _relabel(other, job["relabel_configs"]) is None


def test_annotation_scrape_job_passes_promtool(tmp_path: Path) -> None:
    """promtool checks the job's relabel rules; Debian's Prometheus build has no Kubernetes
    service discovery, so the check runs with static_configs in its place."""
    promtool = os_tool("promtool", "prometheus")
    config = yaml.safe_load((KUBERNETES / "prometheus-scrape-config.yml").read_text())
    for job in config["scrape_configs"]:
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["127.0.0.1:10199"]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
