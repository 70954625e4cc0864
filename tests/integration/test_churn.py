"""Churn: the real exporter keeps scanning correctly while processes and namespaces come and go.

A small C program (churn.c, compiled here) forks tens of thousands of short processes (several
thousand a second) and creates and destroys thousands of namespaces of every type, while the
exporter scans every 200 ms and the test scrapes it. Every scrape must be a valid exposition
with no duplicate series and no negative value, the per-type counts must agree with each
other, and ns_exporter_scan_errors_total must stay 0.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Exporter, run_exporter

pytestmark = [pytest.mark.root, pytest.mark.slow]

FORKS = 50_000
NAMESPACES = 1_500
MAX_SECONDS = 120  # a cap for a very busy host; ~10 s on an idle 2-core VM


@pytest.fixture(scope="module")
def churn_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the churn load (scripts/install-test-deps installs it)"
    binary = tmp_path_factory.mktemp("churn") / "churn"
    source = Path(__file__).with_name("churn.c")
    subprocess.run([gcc, "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


Series = tuple[str, tuple[tuple[str, str], ...]]


def scrape(running: Exporter) -> dict[Series, float]:
    """One scrape as {(name, labels): value}; fails on a duplicate series or a negative value."""
    response = requests.get(f"{running.url}/metrics", timeout=30)
    assert response.status_code == 200
    samples: dict[Series, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            series = (sample.name, tuple(sorted(sample.labels.items())))
            assert series not in samples, f"duplicate series {series}"
            assert sample.value >= 0, f"negative value {series} = {sample.value}"
            samples[series] = sample.value
    return samples


def value(samples: dict[Series, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def check_consistency(samples: dict[Series, float]) -> None:
    """Counts agree: every scanned process is in exactly one namespace of each type."""
    assert value(samples, "ns_exporter_scan_errors_total") == 0
    assert value(samples, "ns_exporter_namespaces_dropped") == 0
    scanned = value(samples, "ns_exporter_processes_scanned")
    per_type: dict[str, float] = defaultdict(float)
    series_per_type: dict[str, int] = defaultdict(int)
    info_per_type: dict[str, int] = defaultdict(int)
    for (name, labels), number in samples.items():
        label = dict(labels)
        if name == "ns_namespace_processes":
            per_type[label["ns_type"]] += number
            series_per_type[label["ns_type"]] += 1
        elif name == "ns_namespace_info":
            info_per_type[label["ns_type"]] += 1
    for (name, labels), number in samples.items():
        if name == "ns_namespaces":
            ns_type = dict(labels)["ns_type"]
            assert number == series_per_type[ns_type] == info_per_type[ns_type], ns_type
            if number:  # a type the kernel has: each process is in one of its namespaces
                assert per_type[ns_type] == scanned, (ns_type, per_type[ns_type], scanned)
    success = [n for (name, _), n in samples.items() if name == "ns_scrape_collector_success"]
    assert success
    assert all(success), "a collector failed"


def problems(running: Exporter) -> str:
    """The exporter's warnings and errors, for a failure message."""
    lines = [line for line in running.log().splitlines() if "level=info" not in line]
    return "\n".join(lines[-20:])


def test_scans_stay_correct_under_process_and_namespace_churn(
    churn_binary: Path, tmp_path: Path
) -> None:
    with run_exporter("--scan.interval=200ms", tmp_dir=str(tmp_path)) as running:
        before = scrape(running)
        scans_before = value(before, "ns_exporter_scans_total")
        load = subprocess.Popen(
            [str(churn_binary), str(FORKS), str(NAMESPACES), str(MAX_SECONDS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        scans_during: set[float] = set()
        scrapes = 0
        try:
            while load.poll() is None:
                samples = scrape(running)
                try:
                    check_consistency(samples)
                except AssertionError as err:
                    raise AssertionError(f"{err}\nexporter log:\n{problems(running)}") from None
                scans_during.add(value(samples, "ns_exporter_scans_total"))
                scrapes += 1
                time.sleep(0.2)
            output, _ = load.communicate(timeout=30)
        finally:
            if load.poll() is None:
                load.kill()  # its workers and children die with it (PR_SET_PDEATHSIG)
                load.wait()
        assert load.returncode == 0
        counts = dict(part.split("=") for part in output.split())
        assert int(counts["forks"]) >= FORKS, f"the load did not complete: {output}"
        assert int(counts["namespaces"]) >= NAMESPACES, f"the load did not complete: {output}"

        running.wait_scans(2, timeout=60)  # at least one scan that started after the load
        after = scrape(running)
        try:
            check_consistency(after)
        except AssertionError as err:
            raise AssertionError(f"{err}\nexporter log:\n{problems(running)}") from None
        print(
            f"\nchurn: {output.strip()}, {scrapes} scrapes, {len(scans_during)} distinct scans"
            f" seen during the load, scans {scans_before:.0f} -> "
            f"{value(after, 'ns_exporter_scans_total'):.0f}, vanished skips "
            f"{value(after, 'ns_exporter_scan_skipped_processes_total', reason='vanished'):.0f}"
        )
        assert len(scans_during) >= 3, "too few scans ran while the load ran"
        assert running.process.poll() is None
