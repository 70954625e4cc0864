"""`ns-exporter check-config FILE`: validate a config file; exit 0, or print why and exit 2."""

from __future__ import annotations

import argparse
import sys

from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import load_config_file

EXIT_INVALID = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the YAML config file to check")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        config = load_config_file(args.file)
    except ConfigError as err:
        print(f"ns-exporter: {err}", file=sys.stderr)
        return EXIT_INVALID
    rules = config.expected
    policy = (
        "no expected: section (nothing is reported as unexpected)"
        if rules is None
        else f"{len(rules)} expected rule{'' if len(rules) == 1 else 's'}"
    )
    print(f"{args.file}: OK, {policy}")
    return 0
