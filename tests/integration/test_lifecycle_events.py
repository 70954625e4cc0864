"""Short-lived namespaces and the process event listener, with the real exporter process.

The scan interval is 30 s, so nothing here is seen by a scan after the first one: what the
counters show between scans comes from the event listener.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import Exporter, parse_samples, run_exporter, wait_for

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
CHURN_TYPES = ("uts", "ipc", "net")
CHURN_COUNT = 50
CHURN_SPREAD = 10.0  # seconds
LIFETIME = 0.1  # seconds each namespace lives

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(exporter: Exporter) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for s in parse_samples(exporter.metrics_text())
    }


def rss_kib(exporter: Exporter) -> int:
    for line in Path(f"/proc/{exporter.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


@contextmanager
def exporter(*flags: str, wrapper: tuple[str, ...] = ()) -> Iterator[Exporter]:
    """The real exporter with a 30 s scan interval, stopped and reaped afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="ns-lifecycle-") as tmp,
        run_exporter("--scan.interval=30s", *flags, tmp_dir=tmp, preexec=wrapper) as running,
    ):
        yield running


def churn(count: int, spread: float, lifetime: float) -> None:
    """`count` sets of uts+ipc+net namespaces living `lifetime` s each, over `spread` s."""
    children: list[subprocess.Popen[bytes]] = []
    start = time.monotonic()
    try:
        for i in range(count):
            delay = start + i * spread / count - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            children.append(
                subprocess.Popen(
                    ["unshare", *(f"--{t}" for t in CHURN_TYPES), "sleep", str(lifetime)]
                )
            )
            children = [c for c in children if c.poll() is None]
        for child in children:
            assert child.wait(30) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after[key] - before.get(key, 0.0)


def test_short_lived_namespaces_between_scans_are_counted() -> None:
    with (
        exporter() as events,
        exporter("--no-events.enabled") as polling,
    ):
        assert scrape(events)[("ns_exporter_event_listener_up", ())] == 1.0
        assert "event=event_listener_started" in events.log()
        assert scrape(polling)[("ns_exporter_event_listener_up", ())] == 0.0
        assert "event=event_listener_disabled" in polling.log()
        before_events, before_polling = scrape(events), scrape(polling)

        churn(CHURN_COUNT, CHURN_SPREAD, LIFETIME)

        def all_counted() -> bool:
            after = scrape(events)
            return all(
                delta(after, before_events, f"ns_namespaces_{what}_total", ns_type=t)
                >= CHURN_COUNT - 1
                for t in CHURN_TYPES
                for what in ("created", "destroyed")
            )

        wait_for(all_counted, timeout=20)  # created and destroyed counted the short-lived ones
        after = scrape(events)
        for ns_type in CHURN_TYPES:
            sub_second = delta(
                after,
                before_events,
                "ns_namespace_lifetime_seconds_bucket",
                le="1.0",
                ns_type=ns_type,
            )
            assert sub_second >= CHURN_COUNT - 1, ns_type
        assert after[("ns_exporter_event_listener_up", ())] == 1.0

        # Polling alone (documented, not a failure): with a 30 s interval and namespaces that
        # live 0.1 s, no scan ran while any of them existed.
        polled = scrape(polling)
        seen = {
            t: delta(polled, before_polling, "ns_namespaces_created_total", ns_type=t)
            for t in CHURN_TYPES
        }
        print(f"polling only, 30 s interval: created_total grew by {seen} for {CHURN_COUNT} sets")
        assert polled[("ns_exporter_events_total", (("event", "fork"),))] == 0


FORKER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* forker SECONDS: fork children that exit at once, as fast as possible; prints the count. */
int main(int argc, char **argv) {
    struct timespec now, end;
    long forks = 0;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += atoi(argv[1]);
    do {
        for (int i = 0; i < 64; i++) {
            pid_t pid = fork();
            if (pid == 0) _exit(0);
            if (pid > 0) forks++;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
    while (wait(NULL) > 0) {}
    printf("%ld\n", forks);
    return 0;
}
"""


SCRAPES_DURING_STORM = 5


@pytest.fixture(scope="module")
def forker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not installed (scripts/debian-test-packages.txt)")
    tmp = tmp_path_factory.mktemp("forker")
    (tmp / "forker.c").write_text(FORKER)
    subprocess.run(["gcc", "-O2", "-o", str(tmp / "forker"), str(tmp / "forker.c")], check=True)
    return tmp / "forker"


def test_fork_storm_keeps_memory_bounded_and_scrapes_answered(forker: Path) -> None:
    with exporter() as events:
        before = scrape(events)
        rss_before = rss_kib(events)
        # Two forkers, each in a uts namespace of its own created after the exporter started:
        # every child is a member of a namespace the listener follows. They storm until the
        # exporter has answered SCRAPES_DURING_STORM scrapes (a failed or timed-out one raises).
        stormers = [
            subprocess.Popen(["unshare", "--uts", str(forker), "120"], stdout=subprocess.DEVNULL)
            for _ in range(2)
        ]
        try:
            time.sleep(1.0)
            for _ in range(SCRAPES_DURING_STORM):
                assert all(s.poll() is None for s in stormers), "a forker stopped early"
                scrape(events)
                time.sleep(0.5)
        finally:
            for s in stormers:
                s.kill()
                s.wait()
        after = scrape(events)
        rss_after = rss_kib(events)
        received = delta(after, before, "ns_exporter_events_total", event="fork")
        dropped = delta(after, before, "ns_exporter_events_dropped_total")
        lost = delta(after, before, "ns_exporter_events_lost_total")
        print(
            f"fork storm: {received:.0f} fork events, {dropped:.0f} dropped, {lost:.0f} lost, "
            f"RSS {rss_before} -> {rss_after} KiB"
        )
        assert received + lost > 1000
        assert rss_after - rss_before < 32 * 1024, "exporter memory grew with the storm"
        assert after[("ns_exporter_event_listener_up", ())] == 1.0

        def settled() -> bool:  # both forker namespaces counted destroyed once they exited
            return (
                delta(scrape(events), before, "ns_namespaces_destroyed_total", ns_type="uts") >= 2
            )

        wait_for(settled, timeout=20)  # the forkers' uts namespaces counted destroyed


def test_outside_the_initial_pid_namespace_it_falls_back_to_polling() -> None:
    wrapper = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
    with exporter(wrapper=wrapper) as contained:
        assert scrape(contained)[("ns_exporter_event_listener_up", ())] == 0.0
        log = contained.log()
        assert "event=event_listener_unavailable" in log
        assert "polling only" in log


def test_outside_the_initial_network_namespace_the_reason_says_so() -> None:
    probe = (
        "from ns_exporter.proc_connector import ProcConnector, ConnectorUnavailableError\n"
        "try:\n"
        "    ProcConnector.open().close()\n"
        "    print('available')\n"
        "except ConnectorUnavailableError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run(
        ["unshare", "--net", sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "network namespace" in result.stdout, result.stdout + result.stderr


def test_a_full_socket_buffer_reports_lost_events() -> None:
    from ns_exporter.proc_connector import EventsLostError, ProcConnector

    connector = ProcConnector.open(rcvbuf=4096)
    try:
        # Nobody reads while a few hundred processes start and exit: the kernel drops events.
        burst = subprocess.run(
            ["sh", "-c", "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done"],
            timeout=60,
            check=True,
        )
        assert burst.returncode == 0
        with pytest.raises(EventsLostError):
            for _ in range(1000):
                connector.receive(256)
    finally:
        connector.close()
