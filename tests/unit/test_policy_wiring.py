"""Policy in the running parts: the agent derives unexpected namespaces per scan, the
exposition shows them and the config reload status, the commands check and write configs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ns_exporter import logs
from ns_exporter.agent import Agent
from ns_exporter.cli import main
from ns_exporter.config_file import load_config_file
from ns_exporter.config_reload import ConfigReloader, ReloadStatus
from ns_exporter.exposition import Exposition, render
from ns_exporter.model import NS_TYPES, Attribution, NsKey, NsType, ScanStats, Snapshot
from ns_exporter.policy import Policy
from ns_exporter.scanner import Scanner, ScanOptions
from ns_exporter.state import BuildInfo, ExporterTotals, State
from tests.fakeproc import HOST_NS, FakeProc
from tests.unit.test_policy import make_ns


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """main() and these tests point structlog at streams that close after the test."""
    yield
    logs.configure("info", "logfmt", sys.__stderr__)


DOCKER_ID = "3f4a8b9d2c1e0f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def render_state(state: State, max_series: int = 100) -> str:
    return render(Exposition(BuildInfo(), max_series), state).decode()


def state_with(
    namespaces: list, unexpected: frozenset[NsKey], config: ReloadStatus | None
) -> State:  # type: ignore[type-arg]
    snap = Snapshot(
        namespaces=MappingProxyType({ns.key: ns for ns in namespaces}),
        limits=MappingProxyType(dict.fromkeys(NS_TYPES, 1000)),
        stats=ScanStats(started=1.8e9, duration=0.01, processes_scanned=3),
    )
    return State(snap, ExporterTotals().add(snap), unexpected=unexpected, config=config)


def test_exposition_of_policy_families() -> None:
    web = make_ns(NsType.NET, 4026532001)
    stray = make_ns(NsType.USER, 4026532002, command="bash")
    state = state_with([web, stray], frozenset({stray.key}), ReloadStatus(False, 1.7e9, "x"))
    text = render_state(state)
    per_type = samples(text, "ns_unexpected_namespaces")
    assert len(per_type) == len(NS_TYPES)  # every type always present
    assert per_type[(("ns_type", "user"),)] == 1 and per_type[(("ns_type", "net"),)] == 0
    assert samples(text, "ns_namespace_unexpected") == {
        (("ns_inode", "4026532002"), ("ns_type", "user")): 1.0
    }
    assert samples(text, "ns_exporter_config_last_reload_successful") == {(): 0.0}
    assert samples(text, "ns_exporter_config_last_reload_success_timestamp_seconds") == {(): 1.7e9}


def test_exposition_without_config_has_no_reload_metrics() -> None:
    text = render_state(state_with([make_ns()], frozenset(), None))
    assert "ns_exporter_config_last_reload" not in text
    assert all(v == 0 for v in samples(text, "ns_unexpected_namespaces").values())


def test_unexpected_counts_stay_exact_beyond_max_series() -> None:
    many = [make_ns(NsType.NET, 4026533000 + i, processes=5) for i in range(5)]
    strays = [make_ns(NsType.USER, 4026534000 + i, processes=1) for i in range(3)]
    state = state_with(many + strays, frozenset(ns.key for ns in strays), ReloadStatus(True, 1))
    text = render_state(state, max_series=2)
    assert samples(text, "ns_unexpected_namespaces")[(("ns_type", "user"),)] == 3
    assert len(samples(text, "ns_namespace_unexpected")) == 2  # kept first, within the limit


@pytest.fixture
def fake_proc(tmp_path: Path) -> FakeProc:
    proc = FakeProc(tmp_path / "proc")
    proc.add(1, "init", cgroup="0::/init.scope\n")
    proc.add(40, "nginx", ns={NsType.USER: 4026532500}, cgroup="0::/system.slice/nginx.service\n")
    proc.add(
        50,
        "redis-server",
        ns={NsType.NET: 4026532600, NsType.PID: 4026532601},
        cgroup=f"0::/system.slice/docker-{DOCKER_ID}.scope\n",
    )
    return proc


def scanner_of(proc: FakeProc) -> Scanner:
    return Scanner(ScanOptions(procfs=str(proc.root), collectors=frozenset({"cgroups"})))


def test_scanner_attributes_namespaces(fake_proc: FakeProc) -> None:
    snap = scanner_of(fake_proc).scan()
    redis = snap.namespaces[NsKey(NsType.NET, 4026532600)]
    assert redis.attribution == Attribution("docker", DOCKER_ID, "")
    nginx = snap.namespaces[NsKey(NsType.USER, 4026532500)]
    assert nginx.attribution == Attribution(unit="nginx.service")
    assert snap.namespaces[NsKey(NsType.NET, HOST_NS[NsType.NET])].attribution.unit == "init.scope"


def test_agent_derives_unexpected_and_follows_reloads(fake_proc: FakeProc, tmp_path: Path) -> None:
    config = tmp_path / "policy.yml"
    config.write_text(
        "expected:\n"
        "  - {name: host, command: init, unit: 'init\\.scope'}\n"
        "  - {name: containers, container_runtime: docker}\n"
    )
    reloader = ConfigReloader(str(config))
    agent = Agent(scanner_of(fake_proc), Exposition(BuildInfo(), 100), 60.0, config=reloader)
    published = agent.scan_once()
    assert published is not None
    assert published.state.unexpected == frozenset({NsKey(NsType.USER, 4026532500)})
    assert published.state.config == reloader.status
    text = published.body.decode()
    assert 'ns_namespace_unexpected{ns_inode="4026532500",ns_type="user"} 1.0' in text

    config.write_text(config.read_text() + "  - {name: web, unit: 'nginx\\.service'}\n")
    assert reloader.reload().successful
    published = agent.scan_once()
    assert published is not None and published.state.unexpected == frozenset()

    config.write_text("expected: [")  # broken: the previous policy stays
    assert not reloader.reload().successful
    published = agent.scan_once()
    assert published is not None and published.state.unexpected == frozenset()
    assert "ns_exporter_config_last_reload_successful 0.0" in published.body.decode()


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.yml"
    good.write_text("expected:\n  - {name: a, ns_type: net}\n  - {name: b, ns_type: pid}\n")
    assert main(["check-config", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: OK, 2 expected rules\n"

    bad = tmp_path / "bad.yml"
    bad.write_text("expected:\n  - {name: a, ns_type: net}\n  - {name: b, unit: '(x'}\n")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ns-exporter: {bad}: expected[1].unit: bad regex '(x'")
    assert err.count("\n") == 1

    assert main(["check-config", str(tmp_path / "missing.yml")]) == 2
    assert "missing.yml: open: No such file or directory" in capsys.readouterr().err


def test_baseline_command(
    fake_proc: FakeProc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    procfs = f"--path.procfs={fake_proc.root}"
    assert main(["baseline", procfs, "--no-collector.mounts"]) == 0
    text = capsys.readouterr().out
    rules = yaml.safe_load(text)["expected"]
    assert {r["command"] for r in rules} == {"init", "nginx", "redis-server"}
    docker = next(r for r in rules if r["command"] == "redis-server")
    assert docker["container_runtime"] == "docker" and docker["ns_type"] == ["net", "pid"]

    out = tmp_path / "policy.yml"
    assert main(["baseline", procfs, "--no-collector.mounts", "--output", str(out)]) == 0
    config = load_config_file(str(out))
    snap = scanner_of(fake_proc).scan()
    assert Policy(config.expected).unexpected(snap.namespaces.values()) == frozenset()
    assert main(["check-config", str(out)]) == 0


def test_list_json_marks_unexpected_with_config(
    fake_proc: FakeProc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "policy.yml"
    config.write_text("expected:\n  - {name: host, command: init}\n")
    procfs = f"--path.procfs={fake_proc.root}"
    assert main(["list", "--json", procfs, f"--config.file={config}"]) == 0
    listed = json.loads(capsys.readouterr().out)["namespaces"]
    flagged = {(n["ns_type"], n["command"]) for n in listed if n["unexpected"]}
    assert flagged == {("user", "nginx"), ("net", "redis-server"), ("pid", "redis-server")}
    config.write_text("expected: {}\n")
    assert main(["list", "--json", procfs, f"--config.file={config}"]) == 2
    assert "expected: must be a list of rules" in capsys.readouterr().err


def test_textfile_carries_the_policy_families(
    fake_proc: FakeProc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "policy.yml"
    config.write_text("expected:\n  - {name: containers, container_runtime: docker}\n")
    out = tmp_path / "ns.prom"
    procfs = f"--path.procfs={fake_proc.root}"
    assert main(["textfile", "--output", str(out), procfs, f"--config.file={config}"]) == 0
    text = out.read_text()
    assert 'ns_namespace_unexpected{ns_inode="4026532500",ns_type="user"} 1.0' in text
    assert 'ns_namespace_unexpected{ns_inode="4026532600"' not in text  # the docker one
    config.write_text("expected:\n  - {name: x, holder: nowhere}\n")
    assert main(["textfile", "--output", str(out), procfs, f"--config.file={config}"]) == 2
    assert "expected[0].holder: unknown holder 'nowhere'" in capsys.readouterr().err
