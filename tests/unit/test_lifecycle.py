"""Lifecycle bookkeeping from fake snapshots and fake process events (no /proc, no kernel)."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

import pytest

from ns_exporter.lifecycle import (
    CHECK_DELAYS,
    LIFETIME_BUCKETS,
    Lifecycle,
    LifecycleTotals,
    LivenessCheck,
)
from ns_exporter.model import Holder, Namespace, NsKey, NsType, ScanStats, Snapshot

UTS, NET, PID = NsType.UTS, NsType.NET, NsType.PID
HOST = (NsKey(NET, 1000), NsKey(UTS, 1001))  # a process's namespaces in the host


def ns(
    key: NsKey,
    created: float = 0.0,
    ns_id: int | None = None,
    holder: Holder = Holder.PROCESS,
) -> Namespace:
    return Namespace(
        key=key,
        processes=1 if holder is Holder.PROCESS else 0,
        holder=holder,
        pid=1 if holder is Holder.PROCESS else None,
        command="x",
        owner_uid=0,
        owner="root",
        parent_inode=None,
        userns_inode=None,
        ns_id=ns_id,
        created=created,
    )


def snap(started: float, namespaces: Iterable[Namespace]) -> Snapshot:
    return Snapshot(
        namespaces=MappingProxyType({n.key: n for n in namespaces}),
        limits=MappingProxyType({}),
        stats=ScanStats(started=started, duration=0.01, processes_scanned=1),
    )


def host_snapshot(started: float, *extra: Namespace) -> Snapshot:
    return snap(started, [ns(HOST[0], 0.0, 1), ns(HOST[1], 0.0, 2), *extra])


def counts(totals: LifecycleTotals, ns_type: NsType) -> tuple[int, int]:
    return totals.created[ns_type], totals.destroyed[ns_type]


def see(
    life: Lifecycle,
    pid: int,
    keys: tuple[NsKey, ...],
    at: float,
    *,
    ids: dict[NsKey, int | None] | None = None,
    changed: tuple[NsKey, ...] | None = None,
) -> tuple[NsKey, ...] | None:
    """What the listener does for one fork/exec: ask, then report."""
    wanted = life.interest(pid, keys, keys if changed is None else changed, at)
    if wanted is not None:
        life.process_seen(pid, keys, {k: (ids or {}).get(k) for k in wanted}, at)
    return wanted


def run_checks(life: Lifecycle, now: float, alive: bool | None) -> list[LivenessCheck]:
    due = life.due_checks(now)
    for check in due:
        life.check_result(check, alive)
    return due


def test_the_first_scan_is_the_baseline() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0, ns(NsKey(NET, 5), 50.0, 5)))
    totals = life.totals()
    assert all(v == 0 for v in totals.created.values())
    assert all(v == 0 for v in totals.destroyed.values())
    assert life.has_baseline


def test_events_before_the_baseline_are_ignored() -> None:
    life = Lifecycle()
    assert see(life, 10, (NsKey(NET, 7), HOST[1]), 1.0, ids={NsKey(NET, 7): 70}) is None
    life.process_exited(10, 2.0)
    life.reconcile(host_snapshot(100.0))
    assert counts(life.totals(), NET) == (0, 0)


def test_scans_count_created_and_destroyed_with_lifetime() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    new = ns(NsKey(NET, 5), created=110.0, ns_id=5)
    life.reconcile(host_snapshot(115.0, new))
    assert counts(life.totals(), NET) == (1, 0)
    life.reconcile(host_snapshot(130.0, new))  # still there: nothing new
    life.reconcile(host_snapshot(145.0))  # gone: ended when last seen (130)
    totals = life.totals()
    assert counts(totals, NET) == (1, 1)
    hist = totals.lifetimes[NET]
    assert hist.count == 1
    assert hist.sum == pytest.approx(20.0)
    assert hist.cumulative[LIFETIME_BUCKETS.index(30.0)] == 1
    assert hist.cumulative[LIFETIME_BUCKETS.index(10.0)] == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (ns(NsKey(NET, 5), 110.0, ns_id=5), ns(NsKey(NET, 5), 110.0, ns_id=9)),  # NS_GET_ID
        (ns(NsKey(NET, 5), 110.0), ns(NsKey(NET, 5), 125.0)),  # creation estimate moved on
    ],
    ids=["ns_id", "creation_estimate"],
)
def test_recycled_inode_between_scans_is_one_destroyed_plus_one_created(
    first: Namespace, second: Namespace
) -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    life.reconcile(host_snapshot(115.0, first))
    life.reconcile(host_snapshot(130.0, second))
    assert counts(life.totals(), NET) == (2, 1)


def test_same_inode_with_earlier_estimate_is_the_same_namespace_without_ids() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    life.reconcile(host_snapshot(115.0, ns(NsKey(NET, 5), 110.0)))
    # A member that started earlier was found: the estimate moved back, same namespace.
    life.reconcile(host_snapshot(130.0, ns(NsKey(NET, 5), 104.0)))
    assert counts(life.totals(), NET) == (1, 0)


def test_short_lived_namespace_between_scans_confirmed_by_the_kernel() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    new = NsKey(NET, 7)
    assert see(life, 10, (new, HOST[1]), 101.0, ids={new: 70}) == (new, HOST[1])
    assert counts(life.totals(), NET) == (1, 0)
    life.process_exited(10, 101.1)
    assert run_checks(life, 101.1, alive=False) == [LivenessCheck(new, 70)]
    totals = life.totals()
    assert counts(totals, NET) == (1, 1)
    assert totals.lifetimes[NET].sum == pytest.approx(0.1)
    assert totals.lifetimes[NET].cumulative[LIFETIME_BUCKETS.index(0.1)] == 1
    assert totals.lifetimes[NET].cumulative[LIFETIME_BUCKETS.index(0.05)] == 0
    # The next scan does not see it and changes nothing.
    life.reconcile(host_snapshot(115.0))
    assert counts(life.totals(), NET) == (1, 1)


def test_short_lived_namespace_without_kernel_checks_ends_at_the_next_scan() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    new = NsKey(NET, 7)
    see(life, 10, (new, HOST[1]), 101.0)  # no ns_id: not checkable
    life.process_exited(10, 101.25)
    assert life.due_checks(200.0) == []
    assert counts(life.totals(), NET) == (1, 0)
    life.reconcile(host_snapshot(115.0))
    totals = life.totals()
    assert counts(totals, NET) == (1, 1)
    assert totals.lifetimes[NET].sum == pytest.approx(0.25)  # exit - first seen


def test_recycled_inode_seen_by_events_with_ids() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 70})
    life.process_exited(10, 101.1)
    # A new namespace takes inode 7 before the kernel was asked about the old one.
    see(life, 11, (key, HOST[1]), 101.2, ids={key: 71})
    assert counts(life.totals(), NET) == (2, 1)
    life.process_exited(11, 101.3)
    run_checks(life, 101.3, alive=False)
    assert counts(life.totals(), NET) == (2, 2)


def test_recycled_inode_seen_by_events_without_ids() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0)
    life.process_exited(10, 101.1)
    see(life, 11, (key, HOST[1]), 101.2)  # appeared after every known member exited
    assert counts(life.totals(), NET) == (2, 1)


def test_member_read_late_is_not_a_new_namespace_without_ids() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0)
    life.process_exited(10, 101.5)
    # pid 11 was forked at 101.2 (before the exit) but read only now: same namespace.
    see(life, 11, (key, HOST[1]), 101.2)
    assert counts(life.totals(), NET) == (1, 0)
    life.process_exited(11, 101.6)
    life.reconcile(host_snapshot(115.0))
    assert counts(life.totals(), NET) == (1, 1)
    assert life.totals().lifetimes[NET].sum == pytest.approx(0.6)


def test_baseline_namespace_that_died_unnoticed_and_whose_inode_is_reused() -> None:
    life = Lifecycle()
    old = NsKey(UTS, 50)
    life.reconcile(host_snapshot(100.0, ns(old, 90.0, ns_id=500)))
    # The baseline namespace died (no event tells); a process unshares and gets inode 50.
    wanted = see(life, 12, (HOST[0], old), 105.0, ids={old: 501}, changed=(old,))
    assert wanted == (old,)
    totals = life.totals()
    assert counts(totals, UTS) == (1, 1)
    assert totals.lifetimes[UTS].sum == pytest.approx(10.0)  # baseline scan - creation


def test_unchanged_known_namespaces_need_no_work() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    assert life.interest(20, HOST, (), 101.0) is None


def test_namespace_that_outlives_its_processes_goes_back_to_the_scans() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 70})
    life.process_exited(10, 102.0)
    for delay in CHECK_DELAYS:  # a bind mount keeps it: the kernel says alive each time
        assert run_checks(life, 102.0 + delay, alive=True) == [LivenessCheck(key, 70)]
    assert life.due_checks(1000.0) == []
    held = ns(key, 115.0, ns_id=70, holder=Holder.MOUNT)
    life.reconcile(host_snapshot(115.0, held))
    life.reconcile(host_snapshot(130.0, held))
    assert counts(life.totals(), NET) == (1, 0)
    life.reconcile(host_snapshot(145.0))
    totals = life.totals()
    assert counts(totals, NET) == (1, 1)
    assert totals.lifetimes[NET].sum == pytest.approx(29.0)  # 101 → last seen at 130


def test_kernel_that_cannot_tell_leaves_it_to_the_scan() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 70})
    life.process_exited(10, 101.5)
    run_checks(life, 101.5, alive=None)
    assert life.due_checks(200.0) == []
    life.reconcile(host_snapshot(115.0))
    assert counts(life.totals(), NET) == (1, 1)


def test_a_new_member_cancels_the_candidate() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 70})
    see(life, 11, (key, HOST[1]), 101.1, ids={key: 70}, changed=())  # a child, read at fork
    life.process_exited(10, 101.2)
    assert life.due_checks(150.0) == []  # pid 11 is still in it
    life.process_exited(11, 101.4)
    run_checks(life, 101.4, alive=False)
    assert counts(life.totals(), NET) == (1, 1)
    assert life.totals().lifetimes[NET].sum == pytest.approx(0.4)


def test_process_that_moves_out_leaves_its_namespace() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    first, second = NsKey(NET, 7), NsKey(NET, 8)
    see(life, 10, (first, HOST[1]), 101.0, ids={first: 70})
    # unshare(CLONE_NEWNET) again, then exec: the exec shows the process in a new one.
    see(life, 10, (second, HOST[1]), 101.5, ids={second: 80}, changed=(second,))
    run_checks(life, 101.5, alive=False)
    assert counts(life.totals(), NET) == (2, 1)


def test_scan_that_saw_it_just_before_it_died_does_not_bring_it_back() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 114.0, ids={key: 70})
    life.process_exited(10, 115.2)
    run_checks(life, 115.2, alive=False)
    # The scan started at 115.0 and read pid 10 before it exited.
    life.reconcile(host_snapshot(115.0, ns(key, 114.0, ns_id=70)))
    assert counts(life.totals(), NET) == (1, 1)
    life.reconcile(host_snapshot(130.0))
    assert counts(life.totals(), NET) == (1, 1)


def test_scan_that_saw_the_predecessor_keeps_the_successor() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0, ns(NsKey(NET, 7), 90.0, ns_id=69)))
    key = NsKey(NET, 7)
    # After the scan began, the old namespace died and a new one took its inode.
    see(life, 10, (key, HOST[1]), 115.5, ids={key: 70})
    assert counts(life.totals(), NET) == (1, 1)
    life.reconcile(host_snapshot(115.0, ns(key, 90.0, ns_id=69)))  # walk saw the old one
    assert counts(life.totals(), NET) == (1, 1)
    life.process_exited(10, 116.0)
    run_checks(life, 116.0, alive=False)
    assert counts(life.totals(), NET) == (1, 2)


def test_lost_events_hand_everything_to_the_scans() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 70})
    life.membership_lost()  # pid 10's exit may be among the lost events
    assert life.tracked_processes() == 0
    assert life.totals().followed == 0
    life.process_exited(10, 102.0)  # no longer followed: nothing happens
    assert life.due_checks(200.0) == []
    life.reconcile(host_snapshot(115.0))  # the rescan decides
    assert counts(life.totals(), NET) == (1, 1)


def test_members_are_forgotten_when_they_exit() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(PID, 9)
    see(life, 10, (key, HOST[1]), 101.0, ids={key: 90})
    for pid in range(11, 1011):
        see(life, pid, (key, HOST[1]), 101.0, ids={key: 90}, changed=())
    assert life.tracked_processes() == 1001
    for pid in range(10, 1011):
        life.process_exited(pid, 102.0)
    assert life.tracked_processes() == 0
    run_checks(life, 102.0, alive=False)
    assert counts(life.totals(), PID) == (1, 1)
    assert life.totals().followed == 0


def test_version_moves_only_when_counters_move() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    before = life.version
    life.reconcile(host_snapshot(115.0))
    assert life.version == before
    life.reconcile(host_snapshot(130.0, ns(NsKey(NET, 5), 120.0, 5)))
    assert life.version > before


def test_histogram_buckets_are_cumulative() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    for i, lifetime in enumerate((0.005, 0.1, 0.3, 7200.0, 30 * 86400.0)):
        key = NsKey(NET, 10 + i)
        see(life, 100 + i, (key, HOST[1]), 101.0, ids={key: 10 + i})
        life.process_exited(100 + i, 101.0 + lifetime)
        run_checks(life, 101.0 + lifetime, alive=False)
    hist = life.totals().lifetimes[NET]
    by_bound = dict(zip(LIFETIME_BUCKETS, hist.cumulative, strict=True))
    assert by_bound[0.01] == 1
    assert by_bound[0.1] == 2  # a bucket holds values up to and including its bound
    assert by_bound[0.5] == 3
    assert by_bound[3600.0] == 3
    assert by_bound[4 * 3600.0] == 4
    assert by_bound[7 * 86400.0] == 4  # the month-long one is only in +Inf
    assert hist.count == 5


def test_held_namespace_without_kernel_checks_is_handed_to_the_scans() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(NET, 7)
    see(life, 10, (key, HOST[1]), 101.0)  # no ns_id: only scans can confirm
    life.process_exited(10, 102.0)
    held = ns(key, 115.0, holder=Holder.MOUNT)
    life.reconcile(host_snapshot(115.0, held))  # still there after its last process
    assert life.totals().followed == 0
    life.reconcile(host_snapshot(130.0, held))
    life.reconcile(host_snapshot(145.0))
    totals = life.totals()
    assert counts(totals, NET) == (1, 1)
    assert totals.lifetimes[NET].sum == pytest.approx(29.0)  # to the last scan that saw it


def test_process_gone_before_its_id_was_read_joins_the_recorded_namespace() -> None:
    life = Lifecycle()
    life.reconcile(host_snapshot(100.0))
    key = NsKey(UTS, 7)
    see(life, 10, (HOST[0], key), 101.0, ids={key: 70})
    see(life, 11, (HOST[0], key), 101.1, ids={key: 70}, changed=())
    life.process_exited(11, 101.2)
    life.process_exited(10, 101.3)
    # A child forked after that (a storm) exited before NS_GET_ID could be read.
    see(life, 12, (HOST[0], key), 101.4, ids={key: None})
    assert counts(life.totals(), UTS) == (1, 0)
    life.process_exited(12, 101.5)
    run_checks(life, 101.5, alive=False)
    assert counts(life.totals(), UTS) == (1, 1)
