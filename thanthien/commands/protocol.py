"""`thanthien protocol schema|docs`: the MQTT contract as JSON Schema or as the docs page."""

from __future__ import annotations

import argparse
import json


def run_schema(args: argparse.Namespace) -> int:
    from thanthien.protocol.payloads import json_schemas

    schemas = json_schemas()
    if args.model:
        if args.model not in schemas:
            print(f"unknown payload {args.model!r}; known: {', '.join(schemas)}")
            return 2
        schemas = {args.model: schemas[args.model]}
    print(json.dumps(schemas, ensure_ascii=False, indent=2))
    return 0


def run_docs(_args: argparse.Namespace) -> int:
    from thanthien.protocol.docs import render

    print(render(), end="")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocol", help="the MQTT contract")
    psub = p.add_subparsers(dest="protocol_command", required=True, metavar="ACTION")
    schema = psub.add_parser("schema", help="print the JSON Schema of every payload")
    schema.add_argument("model", nargs="?", help="only this payload, e.g. RatingEvent")
    schema.set_defaults(func=run_schema)
    docs = psub.add_parser("docs", help="print docs/protocol.md (make docs)")
    docs.set_defaults(func=run_docs)
