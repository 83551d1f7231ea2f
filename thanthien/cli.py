"""`thanthien`: the one command line of the project.

Each subcommand lives in the module that owns it and registers itself through a
``register(subparsers)`` function listed in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMAND_MODULES = (
    "thanthien.commands.broker",
    "thanthien.commands.provision",
    "thanthien.commands.config",
    "thanthien.commands.protocol",
    "thanthien.commands.demo",
    "thanthien.commands.edge",
    "thanthien.commands.hub",
    "thanthien.commands.sim",
    "thanthien.commands.bench",
    "thanthien.commands.release",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thanthien",
        description="Thân Thiện edge platform: hub, edge agent, broker and tools.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
