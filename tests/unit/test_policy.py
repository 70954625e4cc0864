"""Policy matching (every field, regexes, several rules) and the baseline round trip."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ns_exporter.config_file import parse_config
from ns_exporter.model import (
    NS_TYPES,
    Attribution,
    Holder,
    Namespace,
    NsKey,
    NsType,
    ScanStats,
    Snapshot,
)
from ns_exporter.policy import NO_POLICY, Policy, baseline, generalise_unit, unexpected


def make_ns(
    ns_type: NsType = NsType.NET,
    inode: int = 4026531840,
    *,
    command: str = "nginx",
    owner: str = "www-data",
    owner_uid: int | None = 33,
    holder: Holder = Holder.PROCESS,
    runtime: str = "",
    unit: str = "nginx.service",
    processes: int = 1,
) -> Namespace:
    return Namespace(
        key=NsKey(ns_type, inode),
        processes=processes,
        holder=holder,
        pid=None if processes == 0 else 1234,
        command=command,
        owner_uid=owner_uid,
        owner=owner,
        parent_inode=None,
        userns_inode=4026531837,
        ns_id=None,
        created=1_700_000_000.0,
        attribution=Attribution(container_runtime=runtime, unit=unit),
    )


def policy(text: str) -> Policy:
    return Policy(parse_config(text, "cfg.yml").expected)


NGINX = make_ns()


@pytest.mark.parametrize(
    ("rule", "matches"),
    [
        ("ns_type: net", True),
        ("ns_type: [pid, net]", True),
        ("ns_type: pid", False),
        ("command: nginx", True),
        ("command: ngin", False),  # fully anchored: no partial match
        ("command: gin.", False),
        ("command: 'ng.*'", True),
        ("command: '(apache2|nginx)'", True),
        ("command: 'nginx|apache2'", True),  # anchoring applies to the whole alternation
        ("command: 'xnginx|nginx'", True),
        ("owner: www-data", True),
        ("owner: [root, www-data]", True),
        ("owner: root", False),
        ("owner_uid: 33", True),
        ("owner_uid: [0, 33]", True),
        ("owner_uid: 0", False),
        ("container_runtime: ''", True),
        ("container_runtime: docker", False),
        ("container_runtime: [docker, '']", True),
        ("unit: 'nginx\\.service'", True),
        ("unit: '.*\\.service'", True),
        ("unit: nginx", False),
        ("holder: process", True),
        ("holder: [mount, fd]", False),
    ],
)
def test_each_field(rule: str, matches: bool) -> None:
    p = policy(f"expected:\n  - name: r\n    {rule}\n")
    assert p.is_expected(NGINX) is matches
    assert p.unexpected([NGINX]) == (frozenset() if matches else frozenset({NGINX.key}))


def test_all_named_fields_must_match() -> None:
    p = policy("expected:\n  - {name: r, command: nginx, owner: root}\n")
    assert not p.is_expected(NGINX)
    assert p.is_expected(dataclasses.replace(NGINX, owner="root"))


def test_any_rule_is_enough_and_first_match_is_named() -> None:
    p = policy(
        "expected:\n"
        "  - {name: docker, container_runtime: docker}\n"
        "  - {name: web, command: nginx}\n"
        "  - {name: also web, unit: 'nginx\\.service'}\n"
    )
    assert p.first_match(NGINX) == "web"
    container = make_ns(inode=2, command="redis-server", runtime="docker", unit="")
    assert p.first_match(container) == "docker"
    stray = make_ns(NsType.USER, 3, command="bash", unit="session-4.scope")
    assert p.first_match(stray) is None
    assert p.unexpected([NGINX, container, stray]) == frozenset({stray.key})


def test_processless_namespace() -> None:
    netns = make_ns(command="", owner="", owner_uid=None, holder=Holder.MOUNT, unit="", processes=0)
    assert policy("expected:\n  - {name: netns, ns_type: net, holder: mount}\n").is_expected(netns)
    # A rule naming a command never matches a namespace without processes (command "").
    assert not policy("expected:\n  - {name: any, command: '.+'}\n").is_expected(netns)
    assert not policy("expected:\n  - {name: uid, owner_uid: 0}\n").is_expected(netns)


def test_no_section_means_nothing_is_unexpected() -> None:
    namespaces = [NGINX, make_ns(NsType.USER, 9, command="bash")]
    assert unexpected(namespaces, None) == frozenset()
    assert NO_POLICY.unexpected(namespaces) == frozenset()
    assert policy("").unexpected(namespaces) == frozenset()


def test_empty_list_means_everything_is_unexpected() -> None:
    namespaces = [NGINX, make_ns(NsType.USER, 9, command="bash")]
    assert unexpected(namespaces, ()) == frozenset(ns.key for ns in namespaces)


def test_verdicts_are_cached_by_field_values_not_by_inode() -> None:
    p = policy("expected:\n  - {name: web, command: nginx}\n")
    many = [make_ns(inode=i) for i in range(100)]
    assert p.unexpected(many) == frozenset()
    assert len(p._verdicts) == 1


@pytest.mark.parametrize(
    ("unit", "regex", "also_matches"),
    [
        ("nginx.service", r"nginx\.service", None),
        ("session-3.scope", r"session-[0-9]+\.scope", "session-12.scope"),
        ("run-u42.service", r"run-[a-z0-9-]+\.service", "run-u7.service"),
        ("run-r3f0a.scope", r"run-[a-z0-9-]+\.scope", "run-p1-i2.scope"),
        (
            "sshd@7-10.0.0.1:22-10.0.0.2:51234.service",
            r"sshd@[0-9]+-.*\.service",
            "sshd@8-10.0.0.1:22-10.0.0.9:4000.service",
        ),
        ("user@1000.service", r"user@1000\.service", None),
        ("getty@tty1.service", r"getty@tty1\.service", None),
        (
            "crio-conmon-" + "ab" * 32 + ".scope",
            r"crio-conmon-[0-9a-f]{64}\.scope",
            "crio-conmon-" + "cd" * 32 + ".scope",
        ),
    ],
)
def test_generalise_unit(unit: str, regex: str, also_matches: str | None) -> None:
    import re

    assert generalise_unit(unit) == regex
    assert re.fullmatch(regex, unit)
    if also_matches:
        assert re.fullmatch(regex, also_matches)


def snapshot_of(namespaces: list[Namespace]) -> Snapshot:
    return Snapshot(
        namespaces={ns.key: ns for ns in namespaces},
        limits=dict.fromkeys(NS_TYPES, 1000),
        stats=ScanStats(started=1_700_000_000.0, duration=0.1, processes_scanned=10),
    )


HOST = [
    make_ns(t, 4026531830 + i, command="systemd", owner="root", owner_uid=0, unit="init.scope")
    for i, t in enumerate(NS_TYPES)
] + [
    make_ns(
        NsType.MNT,
        4026532101,
        command="systemd-udevd",
        owner="root",
        owner_uid=0,
        unit="systemd-udevd.service",
    ),
    make_ns(
        NsType.USER,
        4026532102,
        command="bash",
        owner="alice",
        owner_uid=1000,
        unit="session-3.scope",
    ),
    make_ns(
        NsType.NET,
        4026532103,
        command="",
        owner="",
        owner_uid=None,
        holder=Holder.MOUNT,
        unit="",
        processes=0,
    ),
    make_ns(
        NsType.NET,
        4026532104,
        command="redis-server",
        owner="999",
        owner_uid=999,
        runtime="docker",
        unit="",
    ),
    make_ns(
        NsType.PID,
        4026532105,
        command="redis-server",
        owner="999",
        owner_uid=999,
        runtime="docker",
        unit="",
    ),
]


def test_baseline_expects_everything_present_and_has_no_inodes() -> None:
    text = baseline(snapshot_of(HOST), host="testhost")
    assert text.startswith("# ns_exporter policy written by `ns-exporter baseline` on testhost")
    config = parse_config(text, "baseline.yml")
    assert config.expected is not None
    assert Policy(config.expected).unexpected(HOST) == frozenset()
    for ns in HOST:
        assert str(ns.key.inode) not in text, "baseline rules never name an inode"
    rules = yaml.safe_load(text)["expected"]
    systemd = next(r for r in rules if r.get("command") == "systemd")
    assert systemd["ns_type"] == [t.value for t in NS_TYPES]  # one rule for all types
    assert systemd["unit"] == r"init\.scope"
    redis = next(r for r in rules if r.get("command") == "redis-server")
    assert redis["container_runtime"] == "docker"
    assert redis["owner_uid"] == 999 and "owner" not in redis  # no passwd entry: by uid
    assert redis["ns_type"] == ["net", "pid"]
    netns = next(r for r in rules if r["holder"] == "mount")
    assert "command" not in netns and "owner" not in netns
    session = next(r for r in rules if r.get("command") == "bash")
    assert session["unit"] == r"session-[0-9]+\.scope"


def test_baseline_generalises() -> None:
    """What the baseline expects goes beyond the very namespaces it saw."""
    config = parse_config(baseline(snapshot_of(HOST), host="h"), "b.yml")
    p = Policy(config.expected)
    assert p.is_expected(
        make_ns(
            NsType.USER, 77, command="bash", owner="alice", owner_uid=1000, unit="session-9.scope"
        )
    )
    assert p.is_expected(
        make_ns(
            NsType.NET,
            78,
            command="redis-server",
            owner="999",
            owner_uid=999,
            runtime="docker",
            unit="",
        )
    )
    # ... but not what it did not see
    assert not p.is_expected(make_ns(NsType.USER, 79, command="nginx", owner="www-data"))
    assert not p.is_expected(
        make_ns(
            NsType.UTS,
            80,
            command="redis-server",
            owner="999",
            owner_uid=999,
            runtime="docker",
            unit="",
        )
    )
    assert not p.is_expected(
        make_ns(
            NsType.NET, 81, command="bash", owner="alice", owner_uid=1000, runtime="docker", unit=""
        )
    )


def test_baseline_of_nothing_expects_nothing() -> None:
    config = parse_config(baseline(snapshot_of([]), host="h"), "b.yml")
    assert config.expected == ()


_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16
)
_namespaces = st.builds(
    make_ns,
    st.sampled_from(NS_TYPES),
    st.integers(1, 2**32 - 1),
    command=_text,
    owner=_text,
    owner_uid=st.none() | st.integers(0, 2**32 - 1),
    holder=st.sampled_from(list(Holder)),
    runtime=st.sampled_from(["", "docker", "kubepods", "podman", "lxc", "systemd-nspawn"]),
    unit=st.sampled_from(["", "init.scope", "session-1.scope", "sshd@3-a:22-b:9.service"]) | _text,
    processes=st.integers(0, 5),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_namespaces, max_size=25))
def test_baseline_round_trip_expects_everything(namespaces: list[Namespace]) -> None:
    snapshot = snapshot_of(namespaces)
    config = parse_config(baseline(snapshot, host="h"), "baseline.yml")
    assert config.expected is not None
    assert Policy(config.expected).unexpected(snapshot.namespaces.values()) == frozenset()
