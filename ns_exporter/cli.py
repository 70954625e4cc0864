"""`ns-exporter`: argument parsing and wiring only; the work is in the command modules."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

from ns_exporter import __version__, logs
from ns_exporter.commands import baseline, check_config, serve, textfile
from ns_exporter.commands import list as list_command
from ns_exporter.commands import probe as probe_command
from ns_exporter.config import Settings, add_flags

# name → (one-line help, module with add_arguments(parser) and run(args, settings))
COMMANDS: dict[str, tuple[str, ModuleType]] = {
    "serve": ("run the exporter: agent loop and HTTP server (the default)", serve),
    "list": ("print the namespaces of one scan, like lsns", list_command),
    "textfile": ("write one scan for node_exporter's textfile collector", textfile),
    "probe": ("run one isolation probe and print a verdict (exit 0 ok, 1 failed)", probe_command),
    "baseline": ("print a policy that expects every namespace present now", baseline),
    "check-config": ("validate a config file: exit 0, or print the error and exit 2", check_config),
}
DEFAULT_COMMAND = "serve"


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_flags(common, environ)
    parser = argparse.ArgumentParser(
        prog="ns-exporter",
        description="Prometheus exporter and monitoring agent for Linux namespaces.",
    )
    parser.add_argument("--version", action="version", version=f"ns_exporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, module) in COMMANDS.items():
        command_parser = sub.add_parser(
            name, parents=[common], help=help_text, description=help_text
        )
        module.add_arguments(command_parser)
    return parser


def _with_default_command(argv: Sequence[str]) -> list[str]:
    """Flags may come before the command (`ns-exporter --path.procfs=/x list`); no command
    means `serve`."""
    args = list(argv)
    if not args or args[0] in COMMANDS or args[0] in ("-h", "--help", "--version"):
        return args or [DEFAULT_COMMAND]
    for index, arg in enumerate(args):
        if arg in COMMANDS and not args[index - 1].startswith("--type"):
            return [arg, *args[:index], *args[index + 1 :]]
    return [DEFAULT_COMMAND, *args]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = build_parser(env)
    args = parser.parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
    try:
        settings = Settings.from_args(args)
    except ValueError as err:
        parser.error(str(err))
    logs.configure(settings.log_level, settings.log_format or None)
    _, module = COMMANDS[args.command]
    result: int = module.run(args, settings)
    return result


if __name__ == "__main__":
    sys.exit(main())
