"""The `probe:` config section."""

from __future__ import annotations

import pytest

from ns_exporter.config_error import ConfigError
from ns_exporter.probe.modules import MODULE_NAMES
from ns_exporter.probe.settings import (
    DEFAULT_PROBE_SETTINGS,
    DEFAULT_TIMEOUT,
    parse_probe_section,
    probe_settings_of,
)


def test_empty_section_gives_defaults() -> None:
    for value in (None, {}):
        settings = parse_probe_section(value, "cfg.yml")
        assert settings.enabled_modules == frozenset(MODULE_NAMES)
        assert all(settings.timeout_for(m) == DEFAULT_TIMEOUT for m in MODULE_NAMES)
        assert settings.periodic_interval is None
        assert settings == DEFAULT_PROBE_SETTINGS


def test_full_section() -> None:
    settings = parse_probe_section(
        {
            "timeout": "3s",
            "max_concurrent": 2,
            "max_per_second": 0.5,
            "modules": {"pid": {"timeout": "500ms"}, "time": {"enabled": False}},
            "periodic": {"interval": "1m", "modules": ["pid", "net", "pid"]},
        },
        "cfg.yml",
    )
    assert settings.timeout_for("pid") == 0.5
    assert settings.timeout_for("net") == 3.0
    assert "time" not in settings.enabled_modules
    assert settings.max_concurrent == 2
    assert settings.max_per_second == 0.5
    assert settings.periodic_interval == 60.0
    assert settings.periodic_modules == ("pid", "net")


def test_periodic_defaults_to_pid() -> None:
    settings = parse_probe_section({"periodic": {"interval": 30}}, "c.yml")
    assert settings.periodic_modules == ("pid",)
    assert settings.periodic_interval == 30.0


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ([], "probe", "mapping"),
        ({"timout": "5s"}, "probe.timout", "unknown key"),
        ({"timeout": "soon"}, "probe.timeout", "invalid duration"),
        ({"timeout": "2m"}, "probe.timeout", "at most"),
        ({"timeout": True}, "probe.timeout", "duration"),
        ({"max_concurrent": 0}, "probe.max_concurrent", "positive integer"),
        ({"max_concurrent": 1.5}, "probe.max_concurrent", "positive integer"),
        ({"max_per_second": "fast"}, "probe.max_per_second", "positive number"),
        ({"modules": {"bogus": {}}}, "probe.modules.bogus", "unknown module"),
        ({"modules": {"pid": {"timeout": "1s", "x": 1}}}, "probe.modules.pid.x", "unknown key"),
        ({"modules": {"pid": {"enabled": "no"}}}, "probe.modules.pid.enabled", "true or false"),
        ({"modules": {"pid": 3}}, "probe.modules.pid", "mapping"),
        ({"periodic": {"modules": ["pid"]}}, "probe.periodic.interval", "required"),
        ({"periodic": {"interval": "100ms"}}, "probe.periodic.interval", "at least 1s"),
        ({"periodic": {"interval": "1m", "modules": "pid"}}, "probe.periodic.modules", "list"),
        ({"periodic": {"interval": "1m", "modules": ["dns"]}}, "probe.periodic.modules", "dns"),
        (
            {
                "modules": {"net": {"enabled": False}},
                "periodic": {"interval": 60, "modules": ["net"]},
            },
            "probe.periodic.modules",
            "disabled",
        ),
    ],
)
def test_bad_values_name_file_key_and_reason(value: object, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_probe_section(value, "cfg.yml")
    assert caught.value.file == "cfg.yml"
    assert caught.value.key == key
    assert words in caught.value.reason
    assert str(caught.value).startswith(f"cfg.yml: {key}: ")


def test_probe_settings_of_falls_back_to_defaults() -> None:
    class WithProbe:
        probe = parse_probe_section({"max_concurrent": 7}, "c.yml")

    assert probe_settings_of(object()) is DEFAULT_PROBE_SETTINGS
    assert probe_settings_of(WithProbe()).max_concurrent == 7
