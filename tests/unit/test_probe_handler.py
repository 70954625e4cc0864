"""/probe request handling with a recording probe function (no processes)."""

from __future__ import annotations

import threading

import pytest

from ns_exporter.probe.gate import ProbeGate
from ns_exporter.probe.handler import ProbeEndpoint, probe_timeout
from ns_exporter.probe.result import ProbeResult
from ns_exporter.probe.settings import parse_probe_section
from ns_exporter.probe.verdict import render_verdict


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, module: str, timeout: float) -> ProbeResult:
        self.calls.append((module, timeout))
        return ProbeResult.from_helper(
            module, 0.01, {"checks": {"pid_is_1": True}}, ["elapsed_ms=0.1 level=info event=x"]
        )


def endpoint(**section: object) -> tuple[ProbeEndpoint, Recorder]:
    recorder = Recorder()
    return ProbeEndpoint(recorder, parse_probe_section(section, "c.yml")), recorder


def test_default_module_and_module_timeout() -> None:
    ep, rec = endpoint(modules={"pid": {"timeout": "2s"}})
    answer = ep({}, {})
    assert answer.status == 200
    assert answer.content_type.startswith("text/plain; version=0.0.4")
    assert b"probe_success 1.0" in answer.body
    assert rec.calls == [("pid", 2.0)]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"module": ["dns"]}, b"unknown module 'dns'"),
        ({"module": ["pid", "net"]}, b"given 2 times"),
        ({"target": ["example.org"]}, b"unknown parameter 'target'"),
        ({"command": ["id"]}, b"unknown parameter 'command'"),
        ({"debug": ["maybe"]}, b"bad debug value"),
        ({"module": ["time"]}, b"disabled"),
    ],
)
def test_bad_requests_get_one_line_400(query: dict[str, list[str]], words: bytes) -> None:
    ep, rec = endpoint(modules={"time": {"enabled": False}})
    answer = ep(query, {})
    assert answer.status == 400
    assert words in answer.body
    assert answer.body.count(b"\n") == 1
    assert rec.calls == []


def test_scrape_timeout_header_is_used_minus_offset_and_capped() -> None:
    assert probe_timeout({"X-Prometheus-Scrape-Timeout-Seconds": "3"}, 5.0) == 2.5
    assert probe_timeout({"x-prometheus-scrape-timeout-seconds": "30"}, 5.0) == 5.0
    assert probe_timeout({"x-prometheus-scrape-timeout-seconds": "0.4"}, 5.0) == 0.4
    assert probe_timeout({}, 4.0) == 4.0
    ep, _ = endpoint()
    for bad in ("abc", "-1", "nan", "0"):
        answer = ep({}, {"x-prometheus-scrape-timeout-seconds": bad})
        assert answer.status == 400, bad


def test_debug_output_has_logs_metrics_and_module() -> None:
    ep, _ = endpoint()
    answer = ep({"module": ["pid"], "debug": ["true"]}, {})
    text = answer.body.decode()
    assert answer.status == 200
    assert text.startswith("Logs for the probe:\nelapsed_ms=0.1")
    assert "Metrics that would have been returned:" in text
    assert "probe_success 1.0" in text
    assert "Module configuration:\nmodule: pid" in text


def test_gate_refusals_and_release() -> None:
    started, release = threading.Event(), threading.Event()

    def slow(module: str, timeout: float) -> ProbeResult:
        started.set()
        release.wait(5)
        return ProbeResult.from_helper(module, 0.01, {"checks": {"a": True}}, [])

    ep = ProbeEndpoint(slow, parse_probe_section({}, "c"), ProbeGate(1, 1000))
    thread = threading.Thread(target=ep, args=({}, {}))
    thread.start()
    assert started.wait(5)
    busy = ep({}, {})
    assert busy.status == 503 and ("Retry-After", "1") in busy.headers
    release.set()
    thread.join(5)
    assert ep({}, {}).status == 200
    assert ep.gate.running == 0

    limited = ProbeEndpoint(Recorder(), parse_probe_section({}, "c"), ProbeGate(10, 1))
    assert limited({}, {}).status == 200
    refused = limited({}, {})
    assert refused.status == 429 and b"rate limit" in refused.body


def test_gate_is_released_when_the_probe_raises() -> None:
    def broken(module: str, timeout: float) -> ProbeResult:
        raise RuntimeError("boom")

    ep = ProbeEndpoint(broken, parse_probe_section({}, "c"), ProbeGate(1, 1000))
    with pytest.raises(RuntimeError):
        ep({}, {})
    assert ep.gate.running == 0


def test_verdict_text() -> None:
    ok = ProbeResult.from_helper(
        "pid",
        0.005,
        {
            "checks": {"pid_is_1": True, "cleanup": True},
            "details": {"pid_is_1": "getpid() = 1"},
            "facts": {"inner_pid": 1, "host_pid": 4242, "nspid": "4242 1", "inner_inode": 9},
            "mode": "root",
        },
        [],
    )
    text = render_verdict(ok)
    assert "PASS  pid_is_1" in text and "getpid() = 1" in text
    assert "pid 4242 (NSpid 4242 1)" in text
    assert "verdict: ISOLATED" in text
    bad = ProbeResult.from_helper(
        "net", 0.005, {"reason": "permission_denied"}, ["level=error event=probe_failed x=1"]
    )
    text = render_verdict(bad)
    assert "verdict: FAILED (permission_denied)" in text
    assert "event=probe_failed" in text
