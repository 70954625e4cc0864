"""Subcommands of `ns-exporter`: each module has add_arguments(parser) and run(args, settings)."""
