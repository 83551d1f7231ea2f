"""docs/protocol.md is generated from the models and must match them."""

from __future__ import annotations

import json

from thanthien.cli import main
from thanthien.paths import PROJECT_ROOT
from thanthien.protocol import payloads as p
from thanthien.protocol.docs import render
from thanthien.protocol.topics import SPECS


def test_protocol_page_matches_the_models():
    page = (PROJECT_ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert page == render(), "docs/protocol.md is stale: run `make docs`"


def test_protocol_page_documents_every_topic_and_payload():
    page = render()
    for spec in SPECS:
        assert f"`{{root}}/{spec.pattern}`" in page
    for model in p.ALL_PAYLOADS:
        assert f"## {model.__name__}" in page
        for field in model.model_fields:
            assert f"| `{field}` |" in page


def test_schema_command_prints_every_payload(capsys):
    assert main(["protocol", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {m.__name__ for m in p.ALL_PAYLOADS}


def test_schema_command_refuses_an_unknown_payload(capsys):
    assert main(["protocol", "schema", "NoSuchPayload"]) == 2
    assert "unknown payload" in capsys.readouterr().out
