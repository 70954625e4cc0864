"""The /probe gate: concurrency (503) and token-bucket rate (429)."""

from __future__ import annotations

import pytest

from ns_exporter.probe.gate import ProbeGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_concurrency_limit_answers_503_and_frees_on_leave() -> None:
    gate = ProbeGate(max_concurrent=2, max_per_second=100, clock=FakeClock())
    assert gate.try_enter().admitted
    assert gate.try_enter().admitted
    refused = gate.try_enter()
    assert (refused.admitted, refused.status) == (False, 503)
    assert "limit 2" in refused.reason
    gate.leave()
    assert gate.try_enter().admitted
    assert gate.running == 2


def test_rate_limit_answers_429_with_retry_after_then_refills() -> None:
    clock = FakeClock()
    gate = ProbeGate(max_concurrent=100, max_per_second=2, clock=clock)
    assert gate.try_enter().admitted
    assert gate.try_enter().admitted  # burst of max(1, rate) = 2
    refused = gate.try_enter()
    assert (refused.admitted, refused.status) == (False, 429)
    assert refused.retry_after >= 1
    assert "2 per second" in refused.reason
    clock.now += 0.5  # one token back
    assert gate.try_enter().admitted
    assert not gate.try_enter().admitted


def test_a_probe_refused_for_concurrency_uses_no_token() -> None:
    clock = FakeClock()
    gate = ProbeGate(max_concurrent=1, max_per_second=1, clock=clock)
    assert gate.try_enter().admitted
    for _ in range(5):
        assert gate.try_enter().status == 503
    gate.leave()
    clock.now += 1.0
    assert gate.try_enter().admitted


def test_fractional_rates_and_bad_limits() -> None:
    clock = FakeClock()
    gate = ProbeGate(max_concurrent=5, max_per_second=0.5, clock=clock)
    assert gate.try_enter().admitted
    refused = gate.try_enter()
    assert refused.status == 429 and refused.retry_after == 2
    with pytest.raises(ValueError):
        ProbeGate(0, 1)
    with pytest.raises(ValueError):
        ProbeGate(1, 0)
    with pytest.raises(RuntimeError):
        ProbeGate(1, 1).leave()
