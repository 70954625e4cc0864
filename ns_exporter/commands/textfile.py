"""`ns-exporter textfile --output FILE`: one scan for node_exporter's textfile collector."""

from __future__ import annotations

import argparse
import sys

from ns_exporter import wiring
from ns_exporter.atomic_write import write_atomically
from ns_exporter.config import Settings
from ns_exporter.config_error import ConfigError
from ns_exporter.config_reload import ConfigReloader
from ns_exporter.logs import get_logger

log = get_logger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="file to write, e.g. /var/lib/node_exporter/textfile_collector/ns_exporter.prom "
        "(replaced atomically: temporary file in the same directory, then rename)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:  # with --config.file the file carries the policy families too
        config = ConfigReloader(settings.config_file) if settings.config_file else None
    except ConfigError as err:
        print(f"ns-exporter: {err}", file=sys.stderr)
        return 2
    wiring.warn_if_unprivileged()
    agent = wiring.build_agent(settings, config=config)
    published = agent.scan_once()
    if published is None:
        print("ns-exporter: the scan failed (see the log)", file=sys.stderr)
        return 1
    try:
        write_atomically(args.output, published.body)
    except OSError as err:
        print(f"ns-exporter: cannot write {args.output}: {err.strerror}", file=sys.stderr)
        return 1
    log.info(
        "textfile_written",
        path=args.output,
        bytes=len(published.body),
        namespaces=len(published.state.snapshot.namespaces),
    )
    return 0
