"""``thanthien bench NAME|all [--quick]``: run benchmarks, print their tables, write
``bench/results/<name>.json`` and ``bench/RESULTS.md``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from thanthien.bench.runner import NAMES

    parser = sub.add_parser("bench", help="run benchmarks (ratios to a baseline measured in the same run)")
    parser.add_argument("name", choices=[*NAMES, "all"], help="which benchmark, or all")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smaller smoke size")
    size.add_argument("--tiny", action="store_true", help="the smallest size (what the tests run)")
    parser.add_argument("--results", type=Path, default=None,
                        help="where the JSON files and RESULTS.md go (default: bench/results, bench/)")
    parser.add_argument("--work", type=Path, default=None, help="scratch and data sets (default: var/bench)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from thanthien.bench.runner import run

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    size = "quick" if args.quick else "tiny" if args.tiny else "default"
    return run(args.name, size=size, results_dir=args.results, work_dir=args.work)
