"""Strict YAML for the config files: safe types only, duplicate keys refused, and every
failure a one-line ConfigError naming the file and where (never a YAML or Python exception).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from ns_exporter.config_error import ConfigError


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (the last one would silently win)."""

    file = "<config>"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it below ("found unhashable key")
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(
                    self.file, f"line {mark.line + 1}", f"duplicate key {key!r} in a mapping"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, file: str) -> object:
    """The one document in `text`; ConfigError for anything that is not valid, safe YAML."""
    loader: _Loader | None = None
    try:
        # the Reader already checks the characters in the constructor
        loader = type("_FileLoader", (_Loader,), {"file": file})(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "yaml"
        problem = err.problem or err.context or "cannot parse"
        raise ConfigError(file, where, f"invalid YAML: {' '.join(problem.split())}") from None
    except yaml.reader.ReaderError as err:
        reason = f"invalid YAML: character #x{err.character:04x} is not allowed"
        raise ConfigError(file, f"position {err.position}", reason) from None
    except yaml.YAMLError as err:
        raise ConfigError(file, "yaml", f"invalid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(file, "yaml", "invalid YAML: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def type_name(value: object) -> str:
    """How a YAML value's type reads in an error message."""
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    names.update({int: "a number", float: "a number", type(None): "nothing (null)"})
    return names.get(type(value), type(value).__name__)


def expect_string(value: object, file: str, key: str) -> str:
    """The value if it is a string, else a ConfigError naming file, key and what it got."""
    if not isinstance(value, str):
        raise ConfigError(file, key, f"must be a string, got {type_name(value)}")
    return value
