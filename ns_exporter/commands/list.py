"""`ns-exporter list`: an lsns-like view of one scan."""

from __future__ import annotations

import argparse
import json
import sys

from ns_exporter import listing, wiring
from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_reload import ConfigReloader
from ns_exporter.model import NsType


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        dest="ns_type",
        type=NsType,
        choices=list(NsType),
        default=None,
        help="only namespaces of this type",
    )
    parser.add_argument("--json", action="store_true", help="JSON output")
    parser.add_argument(
        "--tree",
        action="store_true",
        help="tree: user namespaces owning the others, pid namespace nesting",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:  # with --config.file, --json marks the namespaces the policy does not expect
        config = ConfigReloader(settings.config_file) if settings.config_file else None
    except ConfigError as err:
        print(f"ns-exporter: {err}", file=sys.stderr)
        return 2
    agent = wiring.build_agent(settings, config=config)
    published = agent.scan_once()
    if published is None:
        print("ns-exporter: the scan failed (see the log)", file=sys.stderr)
        return 1
    state = published.state
    if args.json:
        json.dump(listing.to_json(state, args.ns_type), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    namespaces = listing.selected(state, args.ns_type)
    sys.stdout.write(listing.tree(namespaces) if args.tree else listing.table(namespaces))
    return 0
