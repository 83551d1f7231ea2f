"""The one registry of the jobs: a name -> the hub context (and scheduler) its jobs run for.

APScheduler jobs take primitive arguments only (so they could move to a persistent job
store); the name is that argument. A job whose name is gone (the hub is stopping, or this
process gave the scheduler role up to another one) finds nothing and returns. A process that
takes the scheduler role over registers its context under a new name each time (one per
term), so a job still running from an earlier term finds nothing either.

The registry also holds, per context, what the process says about its roles (which process
runs the scheduler, which owns the retained state), for ``/healthz``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.base import BaseScheduler

from thanthien.hub.context import HubContext

_CONTEXTS: dict[str, HubContext] = {}
_SCHEDULERS: dict[str, BaseScheduler] = {}
_ROLES: dict[int, Callable[[], dict[str, Any]]] = {}


def register(name: str, ctx: HubContext, scheduler: BaseScheduler | None = None) -> None:
    _CONTEXTS[name] = ctx
    if scheduler is not None:
        _SCHEDULERS[name] = scheduler


def unregister(name: str) -> None:
    _CONTEXTS.pop(name, None)
    _SCHEDULERS.pop(name, None)


def context(name: str) -> HubContext | None:
    return _CONTEXTS.get(name)


def scheduler(name: str) -> BaseScheduler | None:
    return _SCHEDULERS.get(name)


def name_of(ctx: HubContext) -> str | None:
    """The name a context's scheduler registered it under (``None`` without a scheduler)."""
    return next((n for n, c in _CONTEXTS.items() if c is ctx and n in _SCHEDULERS), None)


def report_roles(ctx: HubContext, roles: Callable[[], dict[str, Any]] | None) -> None:
    """What this process tells about its roles (``None``: nothing any more)."""
    if roles is None:
        _ROLES.pop(id(ctx), None)
    else:
        _ROLES[id(ctx)] = roles


def roles_of(ctx: HubContext) -> dict[str, Any] | None:
    """The roles of the process serving ``ctx`` (``None`` for an app without a hub runtime)."""
    roles = _ROLES.get(id(ctx))
    return roles() if roles is not None else None
