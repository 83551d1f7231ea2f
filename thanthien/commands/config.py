"""`thanthien config check FILE`: validate a hub or edge config and list every problem."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from thanthien.config import ConfigError, FileSettings, read_toml, validate_data

EXIT_BAD_CONFIG = 2


def settings_class(kind: str) -> type[FileSettings]:
    if kind == "edge":
        from thanthien.edge.settings import EdgeSettings

        return EdgeSettings
    from thanthien.hub.settings import HubSettings

    return HubSettings


def guess_kind(data: dict[str, object]) -> str:
    """An edge file has a [node] table; anything else is checked as a hub file."""
    return "edge" if "node" in data else "hub"


def load_or_exit(kind: str, path: Path) -> FileSettings:
    """For long-running commands: validate at start-up, print every problem, exit 2."""
    try:
        return validate_data(settings_class(kind), read_toml(path), path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_CONFIG) from None


def run_check(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = read_toml(path)
        kind = args.kind or guess_kind(data)
        validate_data(settings_class(kind), data, path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(f"{path}: valid {kind} config")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="configuration files")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate a config file, listing every problem")
    check.add_argument("file")
    check.add_argument("--kind", choices=["hub", "edge"], help="default: guessed from the file")
    check.set_defaults(func=run_check)
