"""Walk every route of the hub as one commune's users, aiming at another commune's rows.

Commune A (``home``, prefix ``xa``) and commune B (``xb``, every name carrying ``BEBE``) are
seeded by the rooms' seeders. Each of A's users (one per role) then calls every operation of
the OpenAPI document and every page of the web UI, with B's ids in the path and B's codes in
the body. A *leak* is an answer that shows a name of B (``BEBE``: names never travel in a
request, so an echo of the path does not count), or a change to a row of B.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from thanthien.hub.db.models import Base

MARKER_A, MARKER_B = "ALPHA", "BEBE"
CODE_B = "xb-"
"""B's codes start with it: an answer showing one the request did not carry is a leak too."""
KNOWN_LEAKS = Path(__file__).with_name("known_leaks.txt")
# streams and sockets answer forever; the live stream has its own tenancy test
NOT_WALKED = {"/ui/events", "/ui/live/ws", "/api/v1/live/ws"}


@dataclass(frozen=True)
class Leak:
    method: str
    path: str
    why: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


def known_leaks() -> set[str]:
    lines = KNOWN_LEAKS.read_text(encoding="utf-8").splitlines() if KNOWN_LEAKS.exists() else []
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def shows_b(content: bytes, content_type: str, request: str) -> bool:
    """Whether an answer shows commune B: a name of B, or a code of B the request did not send."""
    return shows_marker(content, content_type) or (CODE_B not in request
                                                   and shows_marker(content, content_type, CODE_B))


def shows_marker(content: bytes, content_type: str, marker: str = MARKER_B) -> bool:
    """Whether an answer shows ``marker``: in its text, or inside an XLSX (a zip of XML)."""
    if marker.encode() in content:
        return True
    if content[:2] == b"PK" or "spreadsheet" in content_type:
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                return any(marker.encode() in archive.read(name) for name in archive.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def fill_path(template: str, ids: dict[str, Any]) -> str | None:
    """The path with B's ids in it; ``None`` when a parameter has no value to aim at B with. A
    parameter is looked up as ``<resource>.<name>`` first (``counters.row_id``), then by name."""
    missing = []
    parts = [p for p in template.split("/") if p and p not in ("api", "v1", "ui")]
    resource = parts[0] if parts else ""

    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        key = f"{resource}.{name}" if f"{resource}.{name}" in ids else name
        if key not in ids:
            missing.append(name)
            return "0"
        return str(ids[key])

    path = re.sub(r"\{([^}]+)\}", value, template)
    return None if missing else path


def body_for(schema: dict[str, Any] | None, spec: dict[str, Any], ids: dict[str, Any], depth: int = 0) -> Any:
    """A body the schema accepts, with B's codes in the fields that name a place or a node."""
    if schema is None or depth > 6:
        return None
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return body_for(spec["components"]["schemas"][name], spec, ids, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return body_for(options[0], spec, ids, depth + 1) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        out = {}
        for prop, sub in schema.get("properties", {}).items():
            if prop in BODY_FIELDS and BODY_FIELDS[prop] in ids:
                value = ids[BODY_FIELDS[prop]]
                out[prop] = [value] if sub.get("type") == "array" or "items" in sub else value
            elif prop in schema.get("required", []):
                out[prop] = body_for(sub, spec, ids, depth + 1)
        return out
    if kind == "array":
        item = body_for(schema.get("items"), spec, ids, depth + 1)
        return [] if item is None else [item]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return max(1.0, float(schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    fmt = schema.get("format", "")
    if fmt == "date-time":
        return "2027-01-01T08:00:00+07:00"
    if fmt == "date":
        return "2027-01-01"
    return "xa-walk-1" if schema.get("pattern") else "Thử tenancy"


# body fields that name something of B (values from B's ids)
BODY_FIELDS = {
    "zone": "zone", "zones": "zone", "target_zones": "zone", "counter": "counter", "counter_code": "counter",
    "site": "site", "node_id": "node_id", "node": "node_id", "nodes": "node_id", "target_nodes": "node_id",
    "officer_id": "officer_id", "user_id": "user_id", "commune": "commune", "communes": "commune",
    "media_sha256": "sha256", "broadcast_id": "broadcast_id", "dossier_id": "dossier_id",
}


# query parameters that search or filter for something of B (a search by code: ``q``)
QUERY_FIELDS = {"counter": "counter", "node": "node_id", "node_id": "node_id", "officer_id": "officer_id",
                "q": "commune_code_prefix", "subject": "zone_subject", "camera": "camera"}


def aimed_query(op: dict[str, Any], ids: dict[str, Any]) -> dict[str, Any]:
    """The operation's query parameters that can aim at B, with B's values (empty: none)."""
    values = {**ids, "commune_code_prefix": "xb-", "zone_subject": f"zone:{ids.get('zone', '')}"}
    return {p["name"]: values[QUERY_FIELDS[p["name"]]] for p in op.get("parameters", [])
            if p.get("in") == "query" and p["name"] in QUERY_FIELDS and QUERY_FIELDS[p["name"]] in values}


_READS = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "PRAGMA", "SHOW")


class Writes:
    """Whether the engine ran a statement that may change rows since the last :meth:`took`
    (anything but a read): a request that ran none changed no row of commune B, so the walk
    reads every table again (:func:`rows_of`) only after one that did."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.count = 0

    def __enter__(self) -> Writes:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)

    def _on(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith(_READS) or " FOR UPDATE" in statement.upper():
            self.count += 1

    def took(self) -> bool:
        """Whether a write ran since the last call."""
        wrote, self.count = self.count > 0, 0
        return wrote


def rows_of(conn: Any, marker: str, code: str | None = None) -> dict[str, set[str]]:
    """Every row of every table, as text, that mentions ``marker`` (a commune's names) or
    ``code`` (its codes: a row of another commune pointing at it mentions one)."""
    out: dict[str, set[str]] = {}
    for table in Base.metadata.sorted_tables:
        rows = {repr(tuple(r)) for r in conn.execute(select(table))}
        hits = {r for r in rows if marker in r or (code is not None and code in r)}
        if hits:
            out[table.name] = hits
    return out


# form fields of the web's POST routes that name something of B
FORM_FIELDS = {**BODY_FIELDS, "zone_code": "zone", "counter_code": "counter", "contact_id": "contact_id"}
NOT_POSTED = {"/ui/login", "/ui/logout"}


def form_for(route: Any, ids: dict[str, Any]) -> dict[str, str]:
    """A form for a web POST route: B's values in the fields that name something, else a value
    the field takes (a change asked to be applied: ``confirm`` is 1)."""
    out: dict[str, str] = {}
    for param in route.dependant.body_params:
        name = param.name
        if name in FORM_FIELDS and FORM_FIELDS[name] in ids:
            out[name] = str(ids[FORM_FIELDS[name]])
        elif name == "code":  # a new row's own code: A's
            out[name] = "xa-walk-1"
        elif name in ("confirm", "active", "digest", "urgent"):
            out[name] = "1"
        elif name in ("starts_at", "ends_at", "due_at"):
            out[name] = "2027-01-01T08:00"
        elif name in ("first_day", "last_day", "valid_from", "valid_until"):
            out[name] = "2027-01-01"
        elif name in ("starts", "ends"):
            out[name] = "08:00" if name == "starts" else "17:00"
        else:
            numeric = name in ("rank", "officer_id", "volume", "seconds", "stages", "weekdays")
            out[name] = "1" if numeric else "Thử"
    return out


def operations(spec: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in sorted(spec["paths"].items()):
        if path in NOT_WALKED:
            continue
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, op
