"""The one registry of the jobs: a name -> the hub context (and scheduler) its jobs run for.

APScheduler jobs take primitive arguments only (so they could move to a persistent job
store); the name is that argument. A job whose name is gone (the hub is stopping) finds
nothing and returns.
"""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler

from thanthien.hub.context import HubContext

_CONTEXTS: dict[str, HubContext] = {}
_SCHEDULERS: dict[str, BaseScheduler] = {}


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
