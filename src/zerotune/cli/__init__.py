"""The `zerotune` command: a table of subcommands, each a thin call into the Python API."""
