"""Fuzzing the --config.file loader: any text loads or is a one-line ConfigError naming the file."""

from __future__ import annotations

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import ConfigFile, parse_config
from tests.yaml_strategies import FUZZ, yaml_values

FILE = "fuzz-config.yml"


def loads_or_refuses(text: str) -> ConfigFile | None:
    try:
        return parse_config(text, FILE)
    except ConfigError as err:
        assert err.file == FILE
        assert err.key
        assert err.reason
        assert "\n" not in err.reason
        return None


@FUZZ
@given(st.text(max_size=300))
@example("\x1f")
@example("expected: {? [a] : b}")
@example("expected: " + "[" * 3000 + "]" * 3000)
@example("expected:\n  - name: a\n    command: '('\n")
@example("expected:\n  - name: a\n    command: '(a*)*b{99999999999}'\n")
@example("expected:\n  - name: a\n    unit: '" + "(" * 3000 + ")" * 3000 + "'\n")
@example("probe: {timeout: -1s}")
@example("a: &x [*x]")
def test_arbitrary_text(text: str) -> None:
    loads_or_refuses(text)


values = yaml_values(
    ["net", "pid", "root", "process", "mount", "docker", "5s", "0", ".*", "("], text_size=16
)
rule_keys = st.sampled_from(
    ["name", "ns_type", "command", "owner", "owner_uid", "container_runtime", "unit", "holder"]
) | st.text(max_size=8)
rules = st.lists(st.dictionaries(rule_keys, values, max_size=6) | values, max_size=4)
probe_keys = st.sampled_from(
    ["timeout", "max_concurrent", "max_per_second", "modules", "periodic", "interval", "enabled"]
) | st.text(max_size=8)
sections = st.fixed_dictionaries(
    {},
    optional={
        "expected": rules | values,
        "probe": st.dictionaries(probe_keys, values, max_size=4) | values,
        "unknown": values,
    },
)


@FUZZ
@given(sections)
def test_structured_near_misses(data: dict[str, object]) -> None:
    loads_or_refuses(yaml.safe_dump(data))
