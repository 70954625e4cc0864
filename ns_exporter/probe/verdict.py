"""The human verdict `ns-exporter probe` prints, in the spirit of the manual demonstration."""

from __future__ import annotations

from ns_exporter.probe.modules import MODULES
from ns_exporter.probe.result import ProbeResult

_MODES = {
    "root": "with CAP_SYS_ADMIN, namespaces created directly",
    "userns": "without CAP_SYS_ADMIN, through an unprivileged user namespace",
    "": "privileges unknown",
}


def _pid_story(result: ProbeResult) -> list[str]:
    facts = result.facts
    if "inner_pid" not in facts or "host_pid" not in facts:
        return []
    hidden = (
        [
            f"  hidden:    the {facts.get('host_visible_processes', '?')} processes the host's "
            "/proc lists, the exporter among them"
        ]
        if result.checks.get("host_pids_hidden")
        else []
    )
    return [
        f"  inside:    the probe is pid {facts['inner_pid']} and /proc lists "
        f"{facts.get('inner_visible_processes', '?')} process(es)",
        f"  host side: the same process is pid {facts['host_pid']} "
        f"(NSpid {facts.get('nspid', '?')})",
        *hidden,
    ]


def render_verdict(result: ProbeResult) -> str:
    spec = MODULES.get(result.module)
    lines = [f"ns-exporter probe: module {result.module} ({_MODES.get(result.mode, result.mode)})"]
    if spec is not None:
        lines.append(f"  what it shows: {spec.summary}")
    if "inner_inode" in result.facts:
        link = spec.link if spec else result.module
        lines.append(
            f"  namespace: {link}:[{result.facts['inner_inode']}] "
            f"(the exporter's: {link}:[{result.facts.get('host_inode', '?')}])"
        )
    lines += _pid_story(result)
    lines.append("")
    width = max((len(name) for name in result.checks), default=0)
    for name, ok in result.checks.items():
        lines.append(
            f"  {'PASS' if ok else 'FAIL'}  {name:<{width}}  {result.details.get(name, '')}"
        )
    if result.checks:
        lines.append("")
    passed = sum(result.checks.values())
    took = f"{result.duration * 1000:.1f} ms"
    if result.success:
        lines.append(f"verdict: ISOLATED — {passed}/{len(result.checks)} checks passed in {took}")
    else:
        reason = result.failure_reason.value if result.failure_reason else "unknown"
        lines.append(
            f"verdict: FAILED ({reason}) — {passed}/{len(result.checks)} checks passed in {took}"
        )
        errors = [line for line in result.log if "level=error" in line]
        lines += [f"  {line}" for line in errors[-5:]]
    return "\n".join(lines) + "\n"
