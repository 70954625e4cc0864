"""Fuzzing the procfs parsers: arbitrary bytes and structured near-misses.

Whatever the input, a parser returns a value or raises ParseError: no other exception escapes.
Where the input is well-formed the value is exactly what was written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ns_exporter.model import NS_TYPES, NsType
from ns_exporter.procfs import mountinfo
from ns_exporter.procfs.activity import parse_nspid
from ns_exporter.procfs.cgroup import cgroup_path
from ns_exporter.procfs.errors import ParseError
from ns_exporter.procfs.process import (
    StatFields,
    decode_comm,
    parse_effective_caps,
    parse_ns_link,
    parse_stat,
)
from ns_exporter.procfs.system import parse_btime
from ns_exporter.procfs.users import parse_passwd

FUZZ = settings(max_examples=300, deadline=None)
U64 = st.integers(min_value=0, max_value=2**64 - 1)


def parses_or_refuses(parse: Callable[[Any], Any], data: Any) -> Any:
    """The parser's value, or None when it raised ParseError (anything else fails the test)."""
    try:
        return parse(data)
    except ParseError:
        return None


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    """A well-formed input with one edit: a cut, an insertion or an overwritten slice."""
    data = draw(valid)
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, len(data)))
    insert = draw(st.binary(max_size=12) | st.sampled_from([b"(", b")", b" ", b"\n", b"-", b"\0"]))
    edit = draw(st.sampled_from(["cut", "insert", "replace"]))
    if edit == "cut":
        return data[:start] + data[end:]
    if edit == "insert":
        return data[:start] + insert + data[start:]
    return data[:start] + insert + data[end:]


# --- /proc/PID/stat -----------------------------------------------------------------------


def stat_line(pid: int, comm: bytes, ppid: int, starttime: int, state: bytes = b"S") -> bytes:
    fields = [state, str(ppid).encode()] + [b"0"] * 17 + [str(starttime).encode()] + [b"0"] * 30
    return b"%d (%s) " % (pid, comm) + b" ".join(fields) + b"\n"


valid_stats = st.builds(
    stat_line,
    st.integers(1, 2**22),
    st.binary(max_size=64),
    U64,
    U64,
    st.sampled_from([b"S", b"R", b"Z"]),
)


@FUZZ
@given(st.binary(max_size=600))
@example(b"1 (a) S " + b"9" * 5000 + b" 0" * 30)
@example(b"1 (a) S -1" + b" 0" * 30)
@example(b")(")
def test_stat_arbitrary_bytes(data: bytes) -> None:
    result = parses_or_refuses(parse_stat, data)
    assert result is None or (result.ppid >= 0 and result.starttime_ticks >= 0)


@FUZZ
@given(st.integers(1, 2**22), st.binary(max_size=64), U64, U64)
@example(1, b"a) S 1 2 (b", 0, 0)
@example(1, b"))((\n)", 7, 9)
@example(1, b"\xff\xfe", 7, 9)
def test_stat_any_comm_round_trips(pid: int, comm: bytes, ppid: int, starttime: int) -> None:
    parsed = parse_stat(stat_line(pid, comm, ppid, starttime))
    assert parsed == StatFields(decode_comm(comm), ppid, starttime)


@FUZZ
@given(mutated(valid_stats))
def test_stat_near_misses(data: bytes) -> None:
    parses_or_refuses(parse_stat, data)


# --- ns link text -------------------------------------------------------------------------

ns_names = st.sampled_from([t.value for t in NS_TYPES])


@FUZZ
@given(st.text(max_size=40))
@example("net:[ 5]")
@example("net:[-5]")
@example("net:[5_0]")
@example("net:[\u0663]")
@example("pid:[" + "9" * 5000 + "]")
def test_ns_link_arbitrary_text(text: str) -> None:
    result = parses_or_refuses(parse_ns_link, text)
    if result is not None:
        ns_type, inode = result
        assert f"{ns_type.value}:[{inode}]" == text  # only the kernel's exact shape is taken


@FUZZ
@given(
    ns_names,
    st.text(max_size=24),
    st.sampled_from([":[", ":", "[", ":(", ""]),
    st.sampled_from(["]", ")", "", "]]"]),
)
def test_ns_link_near_misses(name: str, inner: str, opening: str, closing: str) -> None:
    text = f"{name}{opening}{inner}{closing}"
    result = parses_or_refuses(parse_ns_link, text)
    if result is not None:
        assert f"{result[0].value}:[{result[1]}]" == text


@FUZZ
@given(ns_names, U64)
def test_ns_link_round_trips(name: str, inode: int) -> None:
    assert parse_ns_link(f"{name}:[{inode}]") == (NsType(name), inode)


# --- /proc/PID/status CapEff, /proc/stat btime --------------------------------------------


def status_text(caps: int, before: list[bytes]) -> bytes:
    return b"\n".join([*before, b"CapEff:\t%016x" % caps, b"CapBnd:\t000001ffffffffff", b""])


status_lines = st.lists(
    st.binary(max_size=30).filter(lambda b: not b.startswith(b"CapEff:")), max_size=5
)


@FUZZ
@given(st.binary(max_size=300))
@example(b"CapEff:\t-1\n")
@example(b"CapEff:\t" + b"f" * 5000)
@example(b"CapEff:")
def test_caps_arbitrary_bytes(data: bytes) -> None:
    caps = parses_or_refuses(parse_effective_caps, data)
    assert caps is None or 0 <= caps < 2**64


@FUZZ
@given(U64, status_lines)
def test_caps_round_trip(caps: int, before: list[bytes]) -> None:
    assert parse_effective_caps(status_text(caps, before)) == caps


@FUZZ
@given(mutated(st.builds(status_text, U64, status_lines)))
def test_caps_near_misses(data: bytes) -> None:
    caps = parses_or_refuses(parse_effective_caps, data)
    assert caps is None or 0 <= caps < 2**64


def proc_stat_text(btime: int) -> bytes:
    return b"cpu  1 2 3 4\nintr 5 6\nctxt 7\nbtime %d\nprocesses 9\n" % btime


@FUZZ
@given(st.binary(max_size=300) | mutated(st.builds(proc_stat_text, st.integers(0, 2**40))))
@example(b"btime -5\n")
@example(b"btime\n")
@example(b"btime 1e9\n")
def test_btime_arbitrary_and_near_misses(data: bytes) -> None:
    btime = parses_or_refuses(parse_btime, data)
    assert btime is None or btime >= 0


@FUZZ
@given(st.integers(0, 2**40))
def test_btime_round_trips(btime: int) -> None:
    assert parse_btime(proc_stat_text(btime)) == btime


# --- mountinfo ----------------------------------------------------------------------------

_MANGLED = {ord(" "): "\\040", ord("\t"): "\\011", ord("\n"): "\\012", ord("\\"): "\\134"}
paths = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).map(
    lambda s: "/" + s
)


def mountinfo_line(
    mount_id: int, root: str, mountpoint: str, fstype: str, optional: list[str]
) -> bytes:
    fields = [
        str(mount_id),
        "1",
        "0:4",
        root.translate(_MANGLED),
        mountpoint.translate(_MANGLED),
        "rw,nosuid",
        *optional,
        "-",
        fstype,
        fstype,
        "rw",
    ]
    return " ".join(fields).encode()


@st.composite
def nsfs_mounts(draw: st.DrawFn) -> tuple[bytes, list[tuple[NsType, int, str]]]:
    expected = []
    lines = []
    for mount_id in range(draw(st.integers(0, 6))):
        optional = draw(
            st.lists(st.sampled_from(["shared:1", "master:2", "unbindable"]), max_size=2)
        )
        mountpoint = draw(paths)
        if draw(st.booleans()):
            ns_type, inode = draw(ns_names), draw(U64)
            lines.append(
                mountinfo_line(mount_id, f"{ns_type}:[{inode}]", mountpoint, "nsfs", optional)
            )
            expected.append((NsType(ns_type), inode, mountpoint))
        else:
            fstype = draw(st.sampled_from(["ext4", "proc", "tmpfs", "overlay"]))
            lines.append(mountinfo_line(mount_id, draw(paths), mountpoint, fstype, optional))
    return b"\n".join(lines) + b"\n", expected


@FUZZ
@given(nsfs_mounts())
def test_mountinfo_round_trips(case: tuple[bytes, list[tuple[NsType, int, str]]]) -> None:
    data, expected = case
    found = [(m.ns_type, m.inode, m.mountpoint) for m in mountinfo.parse(data)]
    assert found == expected


@FUZZ
@given(st.binary(max_size=400) | mutated(nsfs_mounts().map(lambda case: case[0])))
@example(b"1 2 0:4 net:[-1] /run/netns/x rw - nsfs nsfs rw\n")
@example(b"1 2 0:4 \\777 /x\\0 rw - nsfs nsfs rw\n")
@example(b"- - - - - - -\n")
def test_mountinfo_arbitrary_and_near_misses(data: bytes) -> None:
    mounts = parses_or_refuses(mountinfo.parse, data)
    for mount in mounts or []:
        assert mount.inode >= 0
        mount.mountpoint.encode("utf-8")  # always valid text


# --- /etc/passwd, /proc/PID/cgroup ---------------------------------------------------------


@FUZZ
@given(st.binary(max_size=400))
@example(b"a:x:" + b"9" * 5000 + b":0::/:/bin/sh\n")
@example(b"a:x:-1:0\n:x:5:5\n")
def test_passwd_never_raises(data: bytes) -> None:
    names = parse_passwd(data)
    for uid, name in names.items():
        assert 0 <= uid < 2**32
        name.encode("utf-8")


names = st.text(
    st.characters(
        exclude_categories=["Cs"], exclude_characters=":\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=20,
)


@FUZZ
@given(st.lists(st.tuples(names, st.integers(0, 2**32 - 2)), max_size=8))
def test_passwd_round_trips(entries: list[tuple[str, int]]) -> None:
    data = b"".join(f"{name}:x:{uid}:{uid}:gecos:/home:/bin/sh\n".encode() for name, uid in entries)
    expected: dict[int, str] = {}
    for name, uid in entries:
        expected.setdefault(uid, name)
    assert parse_passwd(data) == expected


@FUZZ
@given(st.binary(max_size=400))
def test_cgroup_path_never_raises(data: bytes) -> None:
    cgroup_path(data).encode("utf-8")


cgroup_paths = paths.filter(lambda p: "\n" not in p)  # the kernel ends lines with \n only


@FUZZ
@given(cgroup_paths)
@example("/user.slice/odd\rname\x0cwith\u2028separators")
def test_cgroup_v2_round_trips(path: str) -> None:
    assert cgroup_path(f"0::{path}\n".encode()) == path.removesuffix(" (deleted)")


@FUZZ
@given(
    cgroup_paths.filter(lambda p: p.removesuffix(" (deleted)") not in ("", "/")),
    st.lists(st.tuples(st.integers(2, 12), st.sampled_from(["cpu", "memory"]), cgroup_paths)),
    cgroup_paths,
)
@example("/system.slice/a\rb.service", [], "/")
def test_cgroup_v1_name_systemd_wins(
    systemd: str, others: list[tuple[int, str, str]], unified: str
) -> None:
    lines = [f"1:name=systemd:{systemd}", *(f"{n}:{c}:{p}" for n, c, p in others), f"0::{unified}"]
    assert cgroup_path("\n".join([*lines, ""]).encode()) == systemd.removesuffix(" (deleted)")


# --- /proc/PID/status NSpid ---------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300))
@example(b"NSpid:\t1\t-2\n")
@example(b"NSpid:\t" + b"9" * 5000 + b"\n")
def test_nspid_arbitrary_bytes(data: bytes) -> None:
    pids = parses_or_refuses(parse_nspid, data)
    assert pids is None or all(pid >= 0 for pid in pids)


@FUZZ
@given(st.lists(st.integers(1, 2**22), min_size=1, max_size=6), status_lines)
def test_nspid_round_trips(pids: list[int], before: list[bytes]) -> None:
    before = [line for line in before if not line.startswith(b"NSpid:") and b"\n" not in line]
    line = b"NSpid:\t" + b"\t".join(b"%d" % pid for pid in pids)
    assert parse_nspid(b"\n".join([*before, line, b"NSsid:\t1", b""])) == tuple(pids)
