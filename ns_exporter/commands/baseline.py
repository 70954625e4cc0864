"""`ns-exporter baseline`: print a policy (config file) that expects every namespace present now.

Rules are generalised by namespace type, command, owner, container runtime, systemd unit and
holder, never by inode; volatile unit names (session-N.scope, run-*.scope, per-connection
sockets) become regexes. Load it with --config.file, then tighten or widen it by hand.
"""

from __future__ import annotations

import argparse
import sys

from ns_exporter import policy, wiring
from ns_exporter.atomic_write import write_atomically
from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_file import parse_config
from ns_exporter.logs import get_logger

log = get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default="",
        help="write the policy to FILE (atomically) instead of standard output",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    wiring.warn_if_unprivileged()
    snapshot = wiring.build_scanner(settings).scan()
    text = policy.baseline(snapshot)
    try:
        parse_config(text, "<baseline>")  # never hand out a policy we would refuse
    except ConfigError as err:
        log.error("baseline_invalid", key=err.key, reason=err.reason)
        return 1
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(args.output, text.encode())
    except OSError as err:
        print(f"ns-exporter: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    log.info("baseline_written", file=args.output, namespaces=len(snapshot.namespaces))
    return 0
