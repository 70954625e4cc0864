"""Fuzzing the web config loader: any text either loads or is a ConfigError naming the file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from ns_exporter.config_error import ConfigError
from ns_exporter.web_config import WebConfig, parse_web_config
from tests.yaml_strategies import FUZZ, yaml_values

FILE = "fuzz-web-config.yml"
HASH = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()


@pytest.fixture(autouse=True, scope="module")
def in_empty_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Relative paths in fuzzed configs resolve inside an empty directory."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz-cwd"))
    try:
        yield
    finally:
        os.chdir(cwd)


def loads_or_refuses(text: str) -> WebConfig | None:
    try:
        return parse_web_config(text, FILE)
    except ConfigError as err:
        assert err.file == FILE
        assert err.key
        assert err.reason
        assert "\n" not in err.reason  # one line
        return None


@FUZZ
@given(st.text(max_size=300))
@example("tls_server_config: !!python/object/apply:os.system ['true']")
@example("a: &x [*x]")
@example("basic_auth_users: {? [a] : b}")
@example("basic_auth_users:\n  alice: 2020-01-01\n")
@example('tls_server_config: {cert_file: "\\0"}')
@example("\t")
@example("\x1f")
@example("a: \ud800")
def test_arbitrary_text(text: str) -> None:
    loads_or_refuses(text)


values = yaml_values(
    ["TLS12", "TLS13", "NoClientCert", "RequireAndVerifyClientCert", HASH], text_size=20
)
tls_keys = st.sampled_from(
    [
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "min_version",
        "max_version",
        "prefer_server_cipher_suites",
        "cipher_suites",
        "client_allowed_sans",
        "cert",
    ]
) | st.text(max_size=10)
sections = st.fixed_dictionaries(
    {},
    optional={
        "tls_server_config": st.dictionaries(tls_keys, values, max_size=5) | values,
        "basic_auth_users": st.dictionaries(
            st.text(max_size=10), values | st.just(HASH), max_size=4
        )
        | values,
        "http_server_config": values,
        "unknown": values,
    },
)


@FUZZ
@given(sections)
def test_structured_near_misses(data: dict[str, object]) -> None:
    loads_or_refuses(yaml.safe_dump(data))


@FUZZ
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=16).filter(lambda n: ":" not in n), st.just(HASH), max_size=5
    )
)
def test_valid_users_load(users: dict[str, str]) -> None:
    config = parse_web_config(yaml.safe_dump({"basic_auth_users": users}), FILE)
    assert config.users == {name: HASH.encode() for name in users}


def test_the_fuzz_directory_is_empty() -> None:
    assert list(Path().iterdir()) == []
