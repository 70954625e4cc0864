"""Loading and validating the config file: every field, and errors naming file, key, reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import (
    SECTIONS,
    ConfigFile,
    ExpectedRule,
    load_config_file,
    parse_config,
)
from ns_exporter.model import Holder, NsType

FULL = """\
expected:
  - name: host services
    ns_type: [net, mnt]
    command: "(sshd|nginx)"
    owner: [root, www-data]
    container_runtime: ""
    unit: 'nginx\\.service'
    holder: process
  - name: docker
    container_runtime: docker
  - name: rootless users
    ns_type: user
    owner_uid: [1000, 1001]
  - name: ip netns
    ns_type: net
    holder: mount
"""


def test_every_field_parsed() -> None:
    config = parse_config(FULL, "cfg.yml")
    assert config.path == "cfg.yml"
    assert config.expected is not None
    host, docker, users, netns = config.expected
    assert host == ExpectedRule(
        name="host services",
        ns_type=frozenset({NsType.NET, NsType.MNT}),
        command=re.compile("(sshd|nginx)"),
        owner=frozenset({"root", "www-data"}),
        container_runtime=frozenset({""}),
        unit=re.compile(r"nginx\.service"),
        holder=frozenset({Holder.PROCESS}),
    )
    assert docker == ExpectedRule(name="docker", container_runtime=frozenset({"docker"}))
    assert users.owner_uid == frozenset({1000, 1001})
    assert users.ns_type == frozenset({NsType.USER})
    assert netns.holder == frozenset({Holder.MOUNT})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("# only a comment\n", None),
        ("expected:\n", None),  # an empty section: no policy, as if absent
        ("expected: []\n", ()),  # an explicit empty list: nothing is expected
    ],
)
def test_absent_empty_and_null_sections(
    text: str, expected: tuple[ExpectedRule, ...] | None
) -> None:
    assert parse_config(text, "cfg.yml") == ConfigFile(path="cfg.yml", expected=expected)


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/etc/ns_exporter/config.yml")
    assert info.value.file == "/etc/ns_exporter/config.yml"
    assert str(info.value).startswith(f"{info.value.file}: {info.value.key}: ")
    return info.value


RULE = "expected:\n  - name: a\n    ns_type: net\n  - name: b\n    ns_type: pid\n  - name: c\n"

BAD: list[tuple[str, str, str, str]] = [
    # (id, text, key, a word of the reason)
    ("unknown top-level key", "expcted: []\n", "expcted", "did you mean 'expected'"),
    ("unknown rule key", RULE + "    comand: x\n", "expected[2].comand", "did you mean 'command'"),
    ("unknown key no hint", RULE + "    zzz: x\n", "expected[2].zzz", "known keys: name, ns_type"),
    ("bad regex", RULE + "    command: '(nginx'\n", "expected[2].command", "bad regex '(nginx'"),
    ("bad unit regex", RULE + "    unit: '*.service'\n", "expected[2].unit", "nothing to repeat"),
    ("regex not a string", RULE + "    command: [a]\n", "expected[2].command", "must be a string"),
    ("wrong type uid", RULE + "    owner_uid: root\n", "expected[2].owner_uid", "must be a uid"),
    ("bool uid", RULE + "    owner_uid: true\n", "expected[2].owner_uid", "must be a uid"),
    ("negative uid", RULE + "    owner_uid: -1\n", "expected[2].owner_uid", "out of range"),
    ("uid as owner", RULE + "    owner: 1000\n", "expected[2].owner", "owner_uid: 1000"),
    (
        "bad type in list",
        RULE + "    ns_type: [net, nett]\n",
        "expected[2].ns_type[1]",
        "unknown namespace type 'nett'",
    ),
    ("empty list", RULE + "    ns_type: []\n", "expected[2].ns_type", "empty list"),
    ("bad holder", RULE + "    holder: socket\n", "expected[2].holder", "unknown holder"),
    (
        "bad runtime",
        RULE + "    container_runtime: dokcer\n",
        "expected[2].container_runtime",
        "unknown container runtime 'dokcer'",
    ),
    ("no name", "expected:\n  - ns_type: net\n", "expected[0].name", "needs a name"),
    (
        "name not a string",
        "expected:\n  - name: [x]\n    ns_type: net\n",
        "expected[0].name",
        "must be a string",
    ),
    ("empty name", "expected:\n  - name: ' '\n    ns_type: net\n", "expected[0].name", "empty"),
    (
        "duplicate name",
        "expected:\n  - {name: a, ns_type: net}\n  - {name: a, ns_type: pid}\n",
        "expected[1].name",
        "duplicate rule name 'a' (also expected[0])",
    ),
    ("rule without fields", RULE, "expected[2]", "names no field"),
    ("rule not a mapping", "expected:\n  - net\n", "expected[0]", "must be a mapping"),
    ("section not a list", "expected:\n  name: a\n", "expected", "must be a list of rules"),
    ("top level a list", "- expected\n", "(top level)", "must be a mapping"),
    (
        "yaml syntax",
        "expected:\n  - name: a\n   ns_type: net\n",
        "line 3, column 4",
        "invalid YAML",
    ),
    ("yaml tab", "expected:\n\t- name: a\n", "line 2, column 1", "invalid YAML"),
    ("duplicate key", "expected: []\nexpected: []\n", "line 2", "duplicate key 'expected'"),
    (
        "duplicate rule key",
        "expected:\n  - name: a\n    ns_type: net\n    ns_type: pid\n",
        "line 4",
        "duplicate key 'ns_type'",
    ),
    (
        "python tag refused",
        "expected: !!python/object:os.system {}\n",
        "line 1, column 11",
        "invalid YAML",
    ),
]


@pytest.mark.parametrize(("text", "key", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_key_and_reason(text: str, key: str, reason: str) -> None:
    error = _error(text)
    assert error.key == key
    assert reason in error.reason


def test_load_from_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(FULL)
    config = load_config_file(str(path))
    assert config.path == str(path)
    assert config.expected is not None
    assert len(config.expected) == 4


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match=r"nope\.yml: open: No such file or directory"):
        load_config_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"expected:\n  - name: caf\xe9\n    ns_type: net\n")
    with pytest.raises(ConfigError, match="encoding: not UTF-8"):
        load_config_file(str(path))


def test_sections_table_parsers_take_value_and_file() -> None:
    for name, parse in SECTIONS.items():
        with pytest.raises(ConfigError) as info:
            parse(42, "f.yml")
        assert info.value.file == "f.yml"
        assert info.value.key.startswith(name)


def test_probe_section_is_parsed_by_the_probe_settings() -> None:
    config = parse_config("probe:\n  timeout: 4s\n  max_concurrent: 3\n", "cfg.yml")
    assert config.expected is None
    assert config.probe is not None
    assert config.probe.max_concurrent == 3
    assert config.probe.timeout_for("pid") == 4.0
    error = _error("expected: []\nprobe:\n  timout: 5s\n")
    assert error.key == "probe.timout" and "unknown key" in error.reason
