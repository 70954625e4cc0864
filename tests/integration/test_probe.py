"""Real isolation probes (root): every module, the breach seam, time-outs, the fork server's
life, and that repeated and concurrent probes leave no process, zombie or namespace behind."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ns_exporter.probe.gate import ProbeGate
from ns_exporter.probe.handler import ProbeEndpoint
from ns_exporter.probe.modules import MODULE_NAMES, MODULES
from ns_exporter.probe.periodic import PeriodicProber
from ns_exporter.probe.result import FailureReason, ProbeResult
from ns_exporter.probe.runner import ProbeRunner
from ns_exporter.probe.settings import parse_probe_section

pytestmark = pytest.mark.root


# --- what a probe may leave behind --------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as text:
                found += [int(kid) for kid in text.read().split()]
        except FileNotFoundError:
            continue
    return found


def subtree(root: int) -> list[int]:
    found, stack = [], [root]
    while stack:
        kids = children(stack.pop())
        found += kids
        stack += kids
    return found


def state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def ns_fds(pid: int) -> list[str]:
    """Namespace files a process holds open (nsfs links in /proc/PID/fd)."""
    held = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return []  # exited meanwhile
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.split(":", 1)[0] in {spec.link for spec in MODULES.values()} and "[" in target:
            held.append(target)
    return held


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def leftovers(runner: ProbeRunner, results: list[ProbeResult]) -> list[str]:
    """Everything the probes should not have left: extra processes below the fork server,
    zombies below this test, open namespace files, processes of ours in a probe namespace."""
    problems: list[str] = []
    helper = runner.helper_pid
    assert helper is not None
    below_helper = subtree(helper)
    # The fork server keeps exactly one idle spare worker, which has no children itself.
    if len(children(helper)) > 1 or len(below_helper) > 1:
        problems.append(f"processes below the fork server: {below_helper}")
    ours = subtree(os.getpid())
    zombies = [pid for pid in ours if state(pid) == "Z"]
    if zombies:
        problems.append(f"zombies: {zombies}")
    for pid in (os.getpid(), helper, *below_helper):
        if ns_fds(pid):
            problems.append(f"pid {pid} holds namespace files {ns_fds(pid)}")
    inodes = {
        (MODULES[r.module].link, int(r.facts["inner_inode"]))
        for r in results
        if "inner_inode" in r.facts and r.facts["inner_inode"] != r.facts.get("host_inode")
    }
    for pid in ours:
        for link, inode in inodes:
            try:
                if os.readlink(f"/proc/{pid}/ns/{link}") == f"{link}:[{inode}]":
                    problems.append(f"pid {pid} is still in probe namespace {link}:[{inode}]")
            except FileNotFoundError:
                continue
    return problems


def settle(runner: ProbeRunner, results: list[ProbeResult], within: float = 5.0) -> list[str]:
    """Leftovers once the fork server has had time to reap (it does so asynchronously)."""
    deadline = time.monotonic() + within
    while True:
        problems = leftovers(runner, results)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.05)


@pytest.fixture(scope="module")
def runner() -> Iterator[ProbeRunner]:
    with ProbeRunner() as started:
        yield started


# --- every module, for real ------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_module_succeeds_as_root(runner: ProbeRunner, module: str) -> None:
    result = runner.run(module, 5.0)
    assert result.success, "\n".join(result.log)
    assert result.failure_reason is None
    assert result.mode == "root"
    assert list(result.checks) == list(MODULES[module].checks)
    assert all(result.checks.values())
    assert result.facts["inner_inode"] != result.facts["host_inode"]
    assert settle(runner, [result]) == []


def test_pid_probe_shows_the_demonstration(runner: ProbeRunner) -> None:
    result = runner.run("pid", 5.0)
    assert result.facts["inner_pid"] == 1
    assert result.facts["inner_visible_processes"] == 1
    host_pid = int(result.facts["host_pid"])
    assert host_pid > 1 and result.facts["nspid"] == f"{host_pid} 1"
    assert not os.path.exists(f"/proc/{host_pid}/ns") or state(host_pid) == "gone"


# --- a broken namespace must be reported, and must not harm the host ----------------------


@pytest.mark.parametrize("module", MODULE_NAMES)
def test_breach_seam_reports_isolation_breach(runner: ProbeRunner, module: str) -> None:
    hostname = os.uname().nodename
    with open("/proc/self/mountinfo") as before:
        mounts = before.read()
    result = runner.run(module, 5.0, test={"skip_unshare": True})
    assert not result.success
    assert result.failure_reason is FailureReason.ISOLATION_BREACH, "\n".join(result.log)
    assert result.checks["distinct_namespace"] is False
    assert result.checks["cleanup"] is True
    # Nothing was done to the host's namespaces the child found itself in.
    assert os.uname().nodename == hostname
    with open("/proc/self/mountinfo") as after:
        assert after.read() == mounts
    assert settle(runner, [result]) == []


# --- time-outs: whatever happens, everything is killed and reaped ---------------------------


def test_child_that_hangs_times_out_and_is_reaped(runner: ProbeRunner) -> None:
    started = time.monotonic()
    result = runner.run("pid", 1.0, test={"hang": "inside"})
    took = time.monotonic() - started
    assert result.failure_reason is FailureReason.TIMEOUT
    assert result.checks.get("cleanup") is True, "\n".join(result.log)
    assert took < 5.0
    assert settle(runner, [result]) == []


@pytest.mark.parametrize("module", ["pid", "net"])
def test_worker_that_hangs_is_killed_by_the_fork_server(runner: ProbeRunner, module: str) -> None:
    result = runner.run(module, 1.0, test={"hang": "worker"})
    assert result.failure_reason is FailureReason.TIMEOUT
    assert any("why=timeout" in line for line in result.log)
    assert settle(runner, [result]) == []


def test_fork_server_is_restarted_after_it_died() -> None:
    with ProbeRunner() as own:
        first = own.helper_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        result = own.run("uts", 5.0)
        assert result.success, "\n".join(result.log)
        assert own.helper_pid not in (None, first)
        assert settle(own, [result]) == []
    assert state(first) == "gone"


def test_fork_server_exits_with_its_exporter() -> None:
    own = ProbeRunner()
    own.start()
    helper = own.helper_pid
    assert helper is not None
    spare = children(helper)
    own.close()
    assert state(helper) == "gone"
    assert all(state(pid) == "gone" for pid in spare)


# --- many probes: nothing left behind, memory flat -------------------------------------------


def test_200_probes_in_a_row_leave_nothing_and_memory_stays_flat(runner: ProbeRunner) -> None:
    helper = runner.helper_pid
    assert helper is not None
    for _ in range(20):  # warm-up: lazy imports, allocator pools
        runner.run("pid", 5.0)
    rss_before = rss_kib(os.getpid()), rss_kib(helper)
    results = [runner.run(MODULE_NAMES[i % len(MODULE_NAMES)], 5.0) for i in range(200)]
    failed = [r for r in results if not r.success]
    assert not failed, "\n".join(failed[0].log)
    assert settle(runner, results) == []
    growth = rss_kib(os.getpid()) - rss_before[0], rss_kib(helper) - rss_before[1]
    assert growth[0] < 4096, f"exporter side grew {growth[0]} KiB over 200 probes"
    assert growth[1] < 1024, f"fork server grew {growth[1]} KiB over 200 probes"
    assert runner.helper_pid == helper  # the same fork server did them all


def test_50_concurrent_probe_requests_leave_nothing(runner: ProbeRunner) -> None:
    settings = parse_probe_section({"max_concurrent": 50, "max_per_second": 1000}, "test")
    endpoint = ProbeEndpoint(runner.run, settings, ProbeGate(50, 1000))
    results: list[ProbeResult] = []

    def one(i: int) -> int:
        module = MODULE_NAMES[i % len(MODULE_NAMES)]
        result = runner.run(module, 10.0)
        results.append(result)
        return endpoint({"module": [module]}, {}).status

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [200] * 50
    failed = [r for r in results if not r.success]
    assert not failed, "\n".join(failed[0].log)
    assert settle(runner, results) == []


def test_concurrency_beyond_the_limit_gets_503(runner: ProbeRunner) -> None:
    endpoint = ProbeEndpoint(runner.run, parse_probe_section({}, "test"), ProbeGate(2, 1000))
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: endpoint({"module": ["net"]}, {}).status, range(12)))
    assert set(statuses) <= {200, 503}
    assert 200 in statuses and 503 in statuses
    assert settle(runner, []) == []


def test_periodic_probing_with_real_probes(runner: ProbeRunner) -> None:
    prober = PeriodicProber(runner.run, ["pid", "net"], 1.0, lambda module: 5.0)
    prober.run_once()
    latest = prober.latest
    assert set(latest) == {"pid", "net"}
    assert all(result.success for result, _ in latest.values())
    assert all(finished > time.time() - 60 for _, finished in latest.values())
    assert settle(runner, [result for result, _ in latest.values()]) == []
