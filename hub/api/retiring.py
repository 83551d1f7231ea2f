"""The retire and bring-back routes every registry resource has alike (zones, counters,
officers, devices): ``POST {path}/{row_id}/retire`` and ``…/restore`` (``services/registry.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from thanthien.hub.api.deps import CurrentUser, DbSession, Hub, RowId, allow
from thanthien.hub.roles import Role
from thanthien.hub.services import registry


def add_retire_routes(router: APIRouter, *, path: str, model: type[Any], out: type[Any],
                      permission: tuple[Role, ...], summary: str,
                      shape: Callable[[Any], Any] | None = None) -> None:
    """Add both routes to ``router``; ``summary`` is the retire route's, ``shape`` turns the row
    into ``out`` (its ``model_validate`` by default)."""
    shaped = shape or out.model_validate

    @router.post(f"{path}/{{row_id}}/retire", response_model=out, dependencies=[allow(*permission)],
                 summary=summary, name=f"retire {path}")
    def retire(hub: Hub, session: DbSession, actor: CurrentUser, row_id: RowId) -> Any:
        row = registry.retire(session, actor=actor, now=hub.clock(), model=model, ident=row_id)
        session.commit()
        return shaped(row)

    @router.post(f"{path}/{{row_id}}/restore", response_model=out, dependencies=[allow(*permission)],
                 summary="Bring a retired one back into service", name=f"restore {path}")
    def restore(hub: Hub, session: DbSession, actor: CurrentUser, row_id: RowId) -> Any:
        row = registry.restore(session, actor=actor, now=hub.clock(), model=model, ident=row_id)
        session.commit()
        return shaped(row)
