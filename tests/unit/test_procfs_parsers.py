"""procfs parsers: stat, ns links, mountinfo, btime, passwd, capabilities."""

from __future__ import annotations

import pytest

from ns_exporter.model import NsType
from ns_exporter.procfs import mountinfo
from ns_exporter.procfs.cgroup import cgroup_path
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.process import parse_effective_caps, parse_ns_link, parse_stat
from ns_exporter.procfs.system import parse_btime
from ns_exporter.procfs.users import parse_passwd

TAIL = b" S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 4242 1000 100\n"


@pytest.mark.parametrize(
    ("comm", "expected"),
    [
        (b"bash", "bash"),
        (b"a b", "a b"),
        (b"x) y (z", "x) y (z"),
        (b")", ")"),
        (b"((", "(("),
        (b"'\"quoted\"'", "'\"quoted\"'"),
        (b"new\nline", "new\nline"),
        (b"", ""),
        (b"\xff\xfebad", "\\xff\\xfebad"),
        (b"1 (2) 3", "1 (2) 3"),
    ],
)
def test_parse_stat_hostile_comm(comm: bytes, expected: str) -> None:
    fields = parse_stat(b"123 (" + comm + b")" + TAIL)
    assert fields.comm == expected
    assert fields.ppid == 1
    assert fields.starttime_ticks == 4242


@pytest.mark.parametrize(
    "data", [b"", b"123 bash S 1", b"123 (x) S 1 2", b"1 (x) S a b c" + b" x" * 30]
)
def test_parse_stat_malformed(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_stat(data)


def test_parse_ns_link() -> None:
    assert parse_ns_link("net:[4026531993]") == (NsType.NET, 4026531993)
    assert parse_ns_link("pid:[4026531836]") == (NsType.PID, 4026531836)


@pytest.mark.parametrize(
    "text", ["net:4026531993", "socket:[123]", "net:[abc]", "net:[12", "", "pid_for_children:[1]"]
)
def test_parse_ns_link_malformed(text: str) -> None:
    with pytest.raises(ParseError):
        parse_ns_link(text)


def test_mountinfo_finds_nsfs_mounts() -> None:
    data = (
        b"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        b"43 42 0:4 net:[4026532177] /run/netns/blue rw shared:2 - nsfs nsfs rw\n"
        b"44 42 0:4 net:[4026532178] /run/netns/with\\040space rw - nsfs nsfs rw\n"
        b"45 42 0:4 /uts:[4026532179] /tmp/uts rw master:1 shared:3 - nsfs nsfs rw\n"
        b"46 42 0:4 mnt:[4026532180] /tmp/m rw - nsfs nsfs rw\n"
    )
    mounts = mountinfo.parse(data)
    assert [(m.ns_type, m.inode, m.mountpoint) for m in mounts] == [
        (NsType.NET, 4026532177, "/run/netns/blue"),
        (NsType.NET, 4026532178, "/run/netns/with space"),
        (NsType.UTS, 4026532179, "/tmp/uts"),
        (NsType.MNT, 4026532180, "/tmp/m"),
    ]


def test_mountinfo_malformed_line() -> None:
    with pytest.raises(ParseError):
        mountinfo.parse(b"22 27 0:21 / /proc rw,relatime proc proc rw\n")


def test_btime() -> None:
    assert parse_btime(b"cpu 1 2\nbtime 1700000000\n") == 1_700_000_000.0
    with pytest.raises(ParseError):
        parse_btime(b"cpu 1 2\n")
    with pytest.raises(ParseError):
        parse_btime(b"btime x\n")


def test_passwd() -> None:
    names = parse_passwd(
        b"root:x:0:0::/root:/bin/sh\nbad line\nnobody:x:65534:65534::/:/bin/false\n"
    )
    assert names == {0: "root", 65534: "nobody"}


def test_effective_caps() -> None:
    assert parse_effective_caps(b"Name:\tx\nCapEff:\t0000000000080000\n") == 1 << 19
    with pytest.raises(ParseError):
        parse_effective_caps(b"Name:\tx\n")


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (b"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"),
        (b"12:pids:/docker/abc\n1:name=systemd:/docker/abc\n", "/docker/abc"),
        (b"4:memory:/lxc/c1\n", "/lxc/c1"),
        # hybrid: name=systemd wins (the unified line can lag behind for cgroupfs runtimes)
        (b"1:name=systemd:/x\n0::/y\n", "/x"),
        (b"", ""),
    ],
)
def test_cgroup_path(data: bytes, path: str) -> None:
    assert cgroup_path(data) == path
