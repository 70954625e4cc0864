"""`ns-exporter probe`: run one isolation probe and print a verdict (exit 0 ok, 1 failed)."""

from __future__ import annotations

import argparse
import json
import sys

from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import ConfigFile, load_config_file
from ns_exporter.probe.modules import DEFAULT_MODULE, MODULE_NAMES
from ns_exporter.probe.runner import ProbeRunner
from ns_exporter.probe.settings import probe_settings_of
from ns_exporter.probe.verdict import render_verdict


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--module",
        choices=MODULE_NAMES,
        default=DEFAULT_MODULE,
        help=f"namespace kind to probe (default {DEFAULT_MODULE})",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:  # module timeouts and enabled modules come from the config file's probe: section
        config = load_config_file(settings.config_file) if settings.config_file else ConfigFile()
    except ConfigError as err:
        print(f"ns-exporter: {err}", file=sys.stderr)
        return 2
    probe_settings = probe_settings_of(config)
    with ProbeRunner() as runner:
        result = runner.run(args.module, probe_settings.timeout_for(args.module))
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_verdict(result))
    return 0 if result.success else 1
