"""The update tests' fixtures: the release kit (built once per session), a hub served over HTTP
on a private Mosquitto with the simulated nodes' accounts, and the nodes themselves."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hub.fleet_helpers import FleetHub, start_fleet_hub

from releases.release_helpers import Kit, SimNode, make_node, shared_kit
from support import HUB, Account, make_broker
from thanthien.broker import Broker
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import media_items, registry

ZONE = "ban-hon"


@pytest.fixture(scope="session")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # .../pytest-N/popen-gwK: the session's root is shared
        base = base.parent
    return shared_kit(base)


@pytest.fixture
def fleet(tmp_path: Path, kit: Kit) -> Iterator[Callable[..., tuple[FleetHub, dict[str, SimNode]]]]:
    """``fleet(names, speakers=(...), **node_options)``: a hub, a broker and nodes (not started)."""
    brokers: list[Broker] = []
    hubs: list[FleetHub] = []
    nodes: list[SimNode] = []

    def make(
        names: list[str], *, speakers: tuple[str, ...] = (), **options: object
    ) -> tuple[FleetHub, dict[str, SimNode]]:
        accounts = [Account(n, f"{n}-secret") for n in names]
        broker = make_broker(tmp_path / "broker", (HUB, *accounts))
        broker.start()
        brokers.append(broker)
        database = Database(f"sqlite:///{tmp_path / 'hub.db'}")
        database.migrate()
        hub = start_fleet_hub(
            database,
            tmp_path / "hub",
            broker,
            releases={"public_key": str(kit.public_key_path), "dir": str(tmp_path / "bundles")},
        )
        hubs.append(hub)
        settings = hub.ctx.settings  # the port is known once it serves: nodes download from it
        hub.ctx.settings = settings.model_copy(
            update={"releases": settings.releases.model_copy(update={"download_url": f"{hub.url}/api/v1"})}
        )
        tokens = {}
        with hub.ctx.db.session() as s:
            registry.create_zone(s, actor=SYSTEM, code=ZONE, name="Bản Hón")
            for name in names:
                registry.register_node(s, actor=SYSTEM, node_id=name, name=f"Nút {name}")
                kind = "speaker" if name in speakers else "rating_box"
                if kind == "speaker":
                    registry.upsert_device(
                        s, actor=SYSTEM, node_id=name, code="loa", kind="speaker", zone=ZONE
                    )
                tokens[name] = media_items.issue_node_token(
                    s, actor=SYSTEM, node_id=name, now=hub.ctx.clock()
                )
        made = {}
        for account in accounts:
            node = make_node(
                kit,
                tmp_path / "nodes",
                account.username,
                port=broker.port,
                password=account.password,
                hub_url=f"{hub.url}/api/v1/",
                token=tokens[account.username],
                speaker=account.username in speakers,
                **options,
            )  # type: ignore[arg-type]
            nodes.append(node)
            made[account.username] = node
        return hub, made

    yield make
    for node in nodes:
        node.stop()
    for hub in hubs:
        hub.stop()
        hub.ctx.db.dispose()
    for broker in brokers:
        broker.stop()


# the hub tests' database fixtures (SQLite and PostgreSQL, migrated once per session)
from hub.conftest import _migrated, clock, db, db_url, pg_url  # noqa: E402, F401
