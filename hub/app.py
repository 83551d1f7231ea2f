"""The FastAPI application factory."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from thanthien import __version__ as VERSION
from thanthien.hub import web
from thanthien.hub.api import errors
from thanthien.hub.api.limits import ENVELOPE_BYTES, BodyLimit
from thanthien.hub.api.routes import (
    audit,
    auth,
    broadcast_rules,
    broadcasts,
    cameras,
    communes,
    dossiers,
    fleet,
    health,
    media,
    nodes,
    notify,
    officers,
    places,
    ratings,
    releases,
    system,
    users,
)
from thanthien.hub.context import HubContext
from thanthien.hub.db.session import Database
from thanthien.hub.jobs.broadcasts import follow_changes
from thanthien.hub.metrics import Metrics
from thanthien.hub.services import enrollment, node_config
from thanthien.hub.services import releases as release_service
from thanthien.hub.settings import HubSettings
from thanthien.mqtt import MqttLink

API_PREFIX = "/api/v1"
ROUTERS = (auth.router, users.router, communes.router, places.router, nodes.router, officers.router,
           health.router, ratings.router, cameras.router, media.router, broadcast_rules.router,
           broadcasts.router, audit.router, dossiers.router, notify.router, fleet.router, releases.router)

DESCRIPTION = """API of the Thân Thiện hub: ratings, device registry and health, alarms.

Log in at `POST /api/v1/auth/login` (form fields `username`, `password`) and send the token as
`Authorization: Bearer <token>`. Roles: **admin** (everything), **it** (devices, health, alarms),
**leader** (ratings, reports, rating alarms), **officer** (registry reads). Times are UTC
(ISO 8601 with offset); reports cut periods in the hub's time zone.

Satisfaction index (chỉ số hài lòng) = 100 × Σ(score − 1) / (3 × n), 0–100.
"""


def create_app(settings: HubSettings, db: Database, mqtt: MqttLink | None = None, scheduler: object = None,
               *, ctx: HubContext | None = None, metrics: Metrics | None = None) -> FastAPI:
    """The API over one hub context; ``mqtt`` and ``scheduler`` may be absent (API-only role)."""
    ctx = ctx or HubContext(settings=settings, db=db, mqtt=mqtt, metrics=metrics or Metrics())
    app = FastAPI(title="Thân Thiện hub", version=VERSION, description=DESCRIPTION,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None)
    app.state.hub = ctx
    follow_changes(ctx)  # a broadcast change made through this app republishes the plans on commit
    enrollment.follow(ctx)  # node identities changed: the broker's password file and CRL follow
    node_config.follow(ctx)  # a node config changed: published retained after the commit
    release_service.follow(ctx)  # release offers published or withdrawn after the commit
    app.state.scheduler = scheduler
    app.router.routes.extend(_routes())
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.media.max_bytes + ENVELOPE_BYTES)
    web.install(app)  # the Vietnamese web UI under /ui (hub/web)
    return app


@cache
def _routes() -> tuple[BaseRoute, ...]:
    """Every route of the hub, included once per process and shared by its apps. FastAPI works
    out a route's dependencies when a request first walks the router that includes it, and
    keeps that with the inclusion: an app of its own inclusions did it again, some 0.8 s of CPU
    an app (the tests make hundreds). The routes hold nothing of an app: they reach the hub
    through ``request.app.state``. Routers are included with their prefix: FastAPI walks (and
    works out) every route of a router included without one, to check its paths."""
    hub = APIRouter()
    for router in (*ROUTERS, media.node_router, fleet.node_router, releases.node_router):
        # the API; then the speaker nodes' downloads (node token), a node's enrollment (its
        # one-time code), the nodes' bundle downloads (node token)
        hub.include_router(router, prefix=API_PREFIX)
    hub.include_router(system.router)
    web.include_routes(hub)  # the Vietnamese web UI under /ui (hub/web)
    return tuple(hub.routes)
