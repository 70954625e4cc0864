#!/usr/bin/env python3
"""Writes deploy/kubernetes/prometheusrule.yaml: rules/ns_exporter.rules.yml as a PrometheusRule.

The rule file's text is indented under `spec:` as it is, comments included, so the Kubernetes
resource reads like the file Prometheus loads. tests/unit/test_deploy_kubernetes.py fails when the
two differ; run this script after changing the rules:

    python3 scripts/render_prometheusrule.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules" / "ns_exporter.rules.yml"
OUTPUT = REPO / "deploy" / "kubernetes" / "prometheusrule.yaml"

HEADER = """\
# Generated from rules/ns_exporter.rules.yml by scripts/render_prometheusrule.py: do not edit.
# The Prometheus Operator loads these rules when your Prometheus resource's ruleSelector (and
# ruleNamespaceSelector) select this resource; add the labels it expects here.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: ns-exporter
  labels:
    app.kubernetes.io/name: ns-exporter
    app.kubernetes.io/component: alert-rules
spec:
"""


def rule_groups(rules_text: str) -> dict[str, Any]:
    """The rule file's content; it must hold `groups:` and nothing else."""
    data = yaml.safe_load(rules_text)
    if not isinstance(data, dict) or set(data) != {"groups"}:
        raise ValueError("a Prometheus rule file holds a single top-level key, 'groups'")
    return data


def render(rules_text: str) -> str:
    """The PrometheusRule manifest whose spec is exactly the rule file's content."""
    data = rule_groups(rules_text)
    lines = rules_text.splitlines(keepends=True)
    if lines and lines[0].rstrip() == "---":
        lines = lines[1:]
    body = "".join("  " + line if line.strip() else "\n" for line in lines)
    manifest = HEADER + body
    if yaml.safe_load(manifest)["spec"] != data:
        raise ValueError("indenting the rule file changed its meaning (block scalar indicators?)")
    return manifest


def main() -> int:
    try:
        rules_text = RULES.read_text(encoding="utf-8")
    except FileNotFoundError:
        print(f"render_prometheusrule: {RULES.relative_to(REPO)} does not exist", file=sys.stderr)
        return 1
    try:
        manifest = render(rules_text)
    except (ValueError, yaml.YAMLError) as err:
        print(f"render_prometheusrule: {RULES.relative_to(REPO)}: {err}", file=sys.stderr)
        return 1
    OUTPUT.write_text(manifest, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
