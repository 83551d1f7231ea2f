"""The fleet's jobs: node configs rebuilt from the registry and published when they changed
(a device added or retired on a registry page changes a node's config without marking it), and
release offers not sent yet (a hub stopped between a commit and its follow-up) sent."""

from __future__ import annotations

from apscheduler.schedulers.base import BaseScheduler

from thanthien.hub.context import HubContext
from thanthien.hub.jobs import contexts
from thanthien.hub.services import node_config, releases


def check_configs(context: str) -> int:
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    return len(node_config.sync(ctx))


def send_release_offers(context: str) -> int:
    ctx = contexts.context(context)
    if ctx is None:
        return 0
    return len(releases.sync(ctx))


def install(scheduler: BaseScheduler, ctx: HubContext, name: str) -> None:
    """Add the job to the hub's scheduler (called by ``build_scheduler``, so a process that takes
    the scheduler over gets it too)."""
    scheduler.add_job(check_configs, "interval", seconds=ctx.settings.fleet.config_check_s, args=[name],
                      id="node-configs", replace_existing=True)
    scheduler.add_job(send_release_offers, "interval", seconds=ctx.settings.fleet.config_check_s, args=[name],
                      id="release-offers", replace_existing=True)
