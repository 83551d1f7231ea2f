"""Renders docs/protocol.md from the topic table and the payload models.

The page is generated (``make docs``) and a test compares it with this rendering, so the
page and the models cannot drift apart.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from thanthien.protocol import payloads as p
from thanthien.protocol.topics import DEFAULT_ROOT, SPECS

_AT = datetime(2027, 2, 17, 6, 30, tzinfo=UTC)
_SHA = "3b1f0c" + "0" * 58
_JPEG = ("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIx"
         "wcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAA"
         "AAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==")
"""A 1x1 greyscale JPEG."""


def examples() -> dict[type[p.Payload], p.Payload]:
    """One valid instance of every payload (also used by the tests)."""
    item = p.PlanItem(
        occurrence_id="b12-20270217T0630", broadcast_id=12, title="Lời chúc Tết của Chủ tịch UBND",
        start_at=_AT, media_sha256=_SHA, media_url="/api/v1/media/" + _SHA, duration_s=95.5,
        priority="normal", volume=80,
    )
    return {
        p.HubState: p.HubState(state="online", at=_AT, version="0.1.0"),
        p.NodeState: p.NodeState(node="mo-quay", state="online", session=7, at=_AT,
                                 agent_version="0.1.0", capabilities=["rating_box", "camera"]),
        p.Telemetry: p.Telemetry(
            node="mo-quay", session=7, at=_AT, uptime_s=86400.0, agent_version="0.1.0",
            cpu_temp_c=48.2, load_1m=0.12, load_5m=0.1, load_15m=0.08, mem_used_pct=31.5,
            disk_used_pct=22.0, disk_free_mb=11800.0, outbox_depth=0, ignored_presses=3,
            clock_synced=True, clock_offset_ms=-1.8, clock_trusted=True, hub_offset_ms=-4.2,
        ),
        p.RatingEvent: p.RatingEvent(
            event_id=UUID("0b9e5c1e-6f8a-4b52-9d0e-2f4b8f0f6a11"), node="mo-quay", seq=1042,
            box="box-1", counter="quay-1", score=4, pressed_at=_AT,
        ),
        p.PlaybackEvent: p.PlaybackEvent(
            event_id=UUID("5d7b9a40-1c2e-4f3a-8b6d-7e9f0a1b2c3d"), node="loa-ban-na-hang",
            occurrence_id="b12-20270217T0630", status="finished", at=_AT,
            scheduled_at=_AT, media_sha256=_SHA,
            levels=p.PlayLevels(sent_dbfs=[-18.2, -17.9, -19.4], heard_dbfs=[-24.0, -23.5, -25.1]),
            sources=[p.SourceSpan(source="stream", seconds=1.8),
                     p.SourceSpan(source="fallback", seconds=1.2, reason="luồng bị ngắt")],
        ),
        p.CameraHealth: p.CameraHealth(
            node="mo-quay", camera="cam-2", state="down",
            reason="RTSP DESCRIBE answered 401 Unauthorized", since=_AT, at=_AT,
            connect_ms=2.4,
        ),
        p.Ack: p.Ack(kind="rating", event_ids=[UUID("0b9e5c1e-6f8a-4b52-9d0e-2f4b8f0f6a11")], at=_AT),
        p.Plan: p.Plan(node="loa-ban-na-hang", revision=31, generated_at=_AT,
                       valid_until=_AT.replace(day=20), items=[item]),
        p.PlanItem: item,
        p.Command: p.Command(args={"seconds": 10}, issued_at=_AT),
        p.CommandResult: p.CommandResult(node="mo-quay", name="ping", ok=True, at=_AT,
                                         result={"uptime_s": 86400.0}),
        p.NodeConfig: p.NodeConfig(node="loa-ban-na-hang", version=4, issued_at=_AT, settings={
            "speakers": {"volume": 80, "warmup_s": 1.5, "relay_pin": 17}, "telemetry": {"interval_s": 30}}),
        p.ConfigStatus: p.ConfigStatus(node="loa-ban-na-hang", session=7, at=_AT, version=4),
        p.CameraThumbnail: p.CameraThumbnail(node="mo-quay", camera="cam-2", state="black", at=_AT,
                                             jpeg_b64=_JPEG),
        p.ReleaseOffer: p.ReleaseOffer(node="loa-ban-na-hang", version="0.2.0", rollout=3,
                                       url="http://hub.local:8080/api/v1/releases/0.2.0/bundle",
                                       sha256="9" * 64, size=9_400_000, issued_at=_AT),
        p.ReleaseStatus: p.ReleaseStatus(node="loa-ban-na-hang", session=8, at=_AT, running_version="0.2.0",
                                         version="0.2.0", rollout=3, state="kept"),
        p.LiveFrame: p.LiveFrame(occurrence_id="live41-3f9a0c2e", seq=12, kind="audio", sent_at=_AT,
                                 broadcast_id=41, title="Thông báo khẩn", priority="priority",
                                 pcm_b64="AAABAP//AAA="),
    }


def _type_of(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " | ".join(_type_of(x) for x in prop["anyOf"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "enum" in prop:
        return " / ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    t = prop.get("type", "any")
    if t == "array":
        return f"list[{_type_of(prop.get('items', {}))}]"
    if t == "object":
        return "object"
    fmt = prop.get("format")
    return f"{t} ({fmt})" if fmt else t


_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
           "maxLength", "minItems", "maxItems", "pattern")


def _field_rows(model: type[p.Payload]) -> list[str]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    rows = ["| field | type | required | bounds | meaning |", "|---|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        flat = prop
        if "anyOf" in prop:  # bounds sit on the non-null branch
            flat = next((x for x in prop["anyOf"] if x.get("type") != "null"), prop)
        bounds = ", ".join(f"{b}={flat[b]}" for b in _BOUNDS if b in flat)
        desc = prop.get("description", "").replace("|", "\\|")
        req = "yes" if name in required else "no"
        rows.append(f"| `{name}` | {_type_of(prop)} | {req} | {bounds} | {desc} |")
    return rows


def render() -> str:
    ex = examples()
    out = [
        "# MQTT protocol (generated)",
        "",
        "<!-- Generated by `thanthien protocol docs` (make docs). Do not edit by hand: "
        "tests/protocol/test_docs.py fails when this page and the models differ. -->",
        "",
        f"Root: `{DEFAULT_ROOT}` (the `v1` level is the protocol version). Payloads are UTF-8 "
        f"JSON, at most {p.MAX_PAYLOAD_BYTES} bytes. Every model rejects unknown fields; "
        "timestamps must carry a UTC offset and are normalised to UTC. Ids (`node`, camera, "
        "box, counter) match `^[a-z0-9][a-z0-9-]{0,62}$`.",
        "",
        "A node's MQTT username is its node id. The broker ACL "
        "(config/mosquitto/acl.template) lets a node publish only the node-published topics "
        "below under its own id and read only what the hub sends it.",
        "",
        "| topic | publisher | QoS | retained | payload |",
        "|---|---|---|---|---|",
    ]
    for s in SPECS:
        out.append(f"| `{{root}}/{s.pattern}` | {s.publisher} | {s.qos} | "
                   f"{'yes' if s.retained else 'no'} | [{s.payload.__name__}]"
                   f"(#{s.payload.__name__.lower()}) |")
    out.append("")
    for s in SPECS:
        acked = f" · acked after commit: `Ack.kind` = `{s.kind}`" if s.acked else ""
        out += [f"## `{{root}}/{s.pattern}`", "", s.description, "",
                f"Publisher: {s.publisher} · QoS {s.qos} · retained: "
                f"{'yes' if s.retained else 'no'} · payload: {s.payload.__name__}{acked}", ""]
    out += ["# Payloads", ""]
    for model in p.ALL_PAYLOADS:
        doc = (model.__doc__ or "").strip().replace("\n", " ")
        example = json.dumps(json.loads(ex[model].to_bytes()), ensure_ascii=False, indent=2)
        out += [f"## {model.__name__}", "", doc, "", *_field_rows(model), "", "Example:", "",
                "```json", example, "```", ""]
    return "\n".join(out)
