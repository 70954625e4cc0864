"""The alert and recording rules under rules/: promtool check, promtool unit tests, coverage."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.rules.yml"))
TEST_FILES = sorted((RULES_DIR / "tests").glob("*.yml"))

# What every alert must cover (issue: unexpected, leaked, limit, probe, churn, scans).
REQUIRED_ALERTS = {
    "NsExporterUnexpectedNamespace",
    "NsExporterLeakedNamespace",
    "NsExporterNamespaceLimitNearlyReached",
    "NsExporterIsolationBreach",
    "NsExporterIsolationProbeFailing",
    "NsExporterNamespaceChurnHigh",
    "NsExporterScanErrors",
    "NsExporterScansStale",
}


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, (
        "promtool not found: install Debian's `prometheus` package (scripts/install-test-deps)"
    )
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def alerts() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule
    return found


def test_rule_files_exist() -> None:
    assert RULE_FILES, f"no *.rules.yml under {RULES_DIR}"
    assert TEST_FILES, "no promtool unit tests under rules/tests"


def test_promtool_check_rules() -> None:
    result = run("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    result = run("test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout + result.stderr


def test_required_alerts_present() -> None:
    assert alerts().keys() >= REQUIRED_ALERTS


@pytest.mark.parametrize("name", sorted(alerts()))
def test_alert_shape(name: str) -> None:
    rule = alerts()[name]
    assert re.fullmatch(r"NsExporter[A-Z][A-Za-z]+", name)
    labels = rule.get("labels")
    assert isinstance(labels, dict)
    assert labels.get("severity") in {"critical", "warning", "info"}
    annotations = rule.get("annotations")
    assert isinstance(annotations, dict)
    assert {"summary", "description"} <= annotations.keys()
    assert "$labels.instance" in annotations["summary"]


@pytest.mark.parametrize(
    "name",
    ["NsExporterUnexpectedNamespace", "NsExporterLeakedNamespace"],
)
def test_namespace_alerts_name_namespace_owner_and_command(name: str) -> None:
    annotations = alerts()[name]["annotations"]
    assert isinstance(annotations, dict)
    text = annotations["summary"] + annotations["description"]
    for label in ("ns_type", "ns_inode", "owner", "command"):
        assert f"$labels.{label}" in text, f"{name} does not name {label}"


def test_every_alert_has_a_unit_test() -> None:
    tested: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert set(alerts()) <= tested, f"alerts never seen firing in a test: {set(alerts()) - tested}"
