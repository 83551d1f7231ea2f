"""The demo town's dossiers go out through the hub's own gammu-smsd on Gammu's dummy driver,
as ``thanthien demo`` configures it: what a newcomer sees appear on the Tin nhắn page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notify.conftest import GAMMU_SMSD
from notify.notify_helpers import messages
from support import wait_until
from thanthien.hub.context import HubContext
from thanthien.hub.jobs import contexts, notify
from thanthien.hub.settings import HubSettings
from thanthien.sim.seed import DOSSIERS, Login, seed_town


@pytest.mark.slow
@pytest.mark.skipif(GAMMU_SMSD is None, reason="gammu-smsd not installed (scripts/system-deps.sh)")
def test_the_demo_towns_dossier_notices_are_sent_through_the_dummy_modem(db, tmp_path):
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)  # 10:00 in Mường Ảng, a Monday
    settings = HubSettings(
        hub={"data_dir": str(tmp_path / "hub")},
        http={"secret_key": "test-secret-key-0123456789"},
        sms={
            "gateway": "gammu",
            "brand": "MUONG ANG",
            "dispatch_s": 0.2,
            "gammu": {
                "run_smsd": True,
                "device": str(tmp_path / "dummy-modem"),
                "connection": "none",
                "model": "dummy",
            },
        },
    )
    logins = [Login("officer", "canbo", "canbo-mat-khau-2026", "Cán bộ một cửa")]
    seed_town(db, now=now, logins=logins, start=now - timedelta(hours=2), settings=settings)
    queued = messages_of(db)
    assert len(queued) == len(DOSSIERS) + 2  # each received notice, a supplement and a result
    ctx = HubContext(settings=settings, db=db, clock=lambda: now)
    contexts.register("demo-sms", ctx)
    try:
        notify.receive_sms("demo-sms")  # starts gammu-smsd
        notify.dispatch_sms("demo-sms")
        sent = tmp_path / "hub" / "gammu" / "sent"
        assert wait_until(lambda: len(list(sent.iterdir())) == len(queued), timeout=60)
        notify.dispatch_sms("demo-sms")
        assert {m.status for m in messages_of(db)} == {"sent"}
    finally:
        contexts.unregister("demo-sms")
        notify.stop("demo-sms")


def messages_of(db):
    return messages(HubContext(settings=HubSettings(), db=db))
