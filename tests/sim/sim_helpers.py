"""Helpers for the simulator tests: a hub in this process on the harness broker, waiting on it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from support import HUB
from thanthien.hub.db.models import Node, Rating
from thanthien.hub.runtime import HubRuntime
from thanthien.hub.settings import HubSettings


def start_hub(tmp_path: Path, broker_port: int, roles: tuple[str, ...] = ("ingest",)) -> HubRuntime:
    settings = HubSettings(
        hub={"data_dir": str(tmp_path / "hub")},
        http={"secret_key": "sim-test-secret-0123456789"},
        mqtt={"host": "127.0.0.1", "port": broker_port, "username": HUB.username, "password": HUB.password,
              "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        ingest={"client_id": f"hub-sim-{tmp_path.name}"[:60]},
    )
    hub = HubRuntime(settings, roles=roles)  # type: ignore[arg-type]
    hub.start()
    return hub


def rating_count(hub: HubRuntime, nodes: set[str]) -> int:
    with hub.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(Rating).where(Rating.node_id.in_(nodes))) or 0)


def node_state(hub: HubRuntime, node_id: str) -> str | None:
    with hub.db.session() as s:
        node = s.get(Node, node_id)
        return node.state if node is not None else None


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out += kids
        todo += kids
    return out


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"
