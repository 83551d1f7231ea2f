"""Subcommands of the `thanthien` CLI, one module each."""
