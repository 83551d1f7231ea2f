"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from thanthien import __version__ as VERSION
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
from thanthien.hub.web import install as install_web
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
    api = APIRouter(prefix=API_PREFIX)
    for router in ROUTERS:
        api.include_router(router)
    app.include_router(api)
    app.include_router(media.node_router, prefix=API_PREFIX)  # speaker nodes' downloads (node token)
    app.include_router(fleet.node_router, prefix=API_PREFIX)  # a node's enrollment (its one-time code)
    app.include_router(releases.node_router, prefix=API_PREFIX)  # nodes' bundle downloads (node token)
    app.include_router(system.router)
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=settings.media.max_bytes + ENVELOPE_BYTES)
    install_web(app)  # the Vietnamese web UI under /ui (hub/web)
    return app
