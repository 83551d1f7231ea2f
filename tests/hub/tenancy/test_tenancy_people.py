"""The people room keeps communes apart (issue 20): ratings and reports, dossiers, SMS, alarm
contacts and shifts, the roster, and each commune's public page. Commune A (``xa``) and B
(``xb``) are seeded as the tenancy walk seeds them (``people_world.py``)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.tenancy import walk
from hub.tenancy.people_world import actor, seed_both
from thanthien.hub.app import create_app
from thanthien.hub.db.models import Alarm, Dossier, NotifyContact, RosterPattern, SmsMessage
from thanthien.hub.notify.settings import SmsSettings
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import dossiers, paging, ratings, reports, roster, sms_outbox, sms_templates
from thanthien.hub.services.errors import Forbidden, Invalid, NotFound
from thanthien.hub.services.ratings import RatingFilter

pytestmark = pytest.mark.usefixtures("cheap_hashing")
TZ = "Asia/Ho_Chi_Minh"


@pytest.fixture
def world(ctx):
    return seed_both(ctx)


def _counters(rows: list[reports.SummaryRow]) -> set[str]:
    return {r.key["counter"] for r in rows}


# -- ratings and reports ---------------------------------------------------------------------
def test_a_commune_leader_s_summary_counts_only_their_commune_s_counters(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        rows = reports.summarize(s, viewer=actor(ctx, "xa-leader"), group_by=["counter"], flt=RatingFilter(),
                                 tz=TZ)
    assert _counters(rows) == {a["counter"]}


def test_a_commune_leader_asking_for_another_commune_s_counter_gets_nothing(ctx, world):
    _a, b = world
    with ctx.db.session(write=False) as s:
        rows = reports.summarize(s, viewer=actor(ctx, "xa-leader"), group_by=["week"],
                                 flt=RatingFilter(counter=b["counter"]), tz=TZ)
    assert rows == []


def test_a_commune_leader_s_raw_summary_is_their_commune_s_too(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        rows = reports.summarize_raw(s, viewer=actor(ctx, "xa-leader"), group_by=["counter", "day"],
                                     flt=RatingFilter(), tz=TZ)
    assert _counters(rows) == {a["counter"]}


def test_a_province_leader_s_summary_counts_every_commune(ctx, world):
    a, b = world
    with ctx.db.session(write=False) as s:
        rows = reports.summarize(s, viewer=actor(ctx, "tinh-leader"), group_by=["counter"],
                                 flt=RatingFilter(), tz=TZ)
    assert _counters(rows) == {a["counter"], b["counter"]}


def test_a_commune_leader_lists_only_their_commune_s_ratings(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        rows, total = ratings.list_ratings(s, viewer=actor(ctx, "xa-leader"), flt=RatingFilter(), limit=50,
                                           offset=0)
    assert total == 3 and {r.counter_code for r in rows} == {a["counter"]}


def test_the_satisfaction_export_of_a_commune_leader_holds_nothing_of_another_commune(ctx, world):
    from hub.tenancy.seed_registry import PASSWORD
    from support import ui_login

    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as client:
        ui_login(client, "xa-leader", PASSWORD)
        for group in ("counter", "officer", "week"):
            answer = client.get(f"/ui/satisfaction/export?format=xlsx&group_by={group}")
            assert answer.status_code == 200
            kind = answer.headers["content-type"]
            assert group != "counter" or walk.shows_marker(answer.content, kind, walk.MARKER_A)
            assert not walk.shows_b(answer.content, kind, "")


# -- dossiers --------------------------------------------------------------------------------
def test_a_commune_officer_cannot_fetch_another_commune_s_dossier(ctx, world):
    _a, b = world
    with ctx.db.session(write=False) as s, pytest.raises(NotFound):
        dossiers.get(s, b["dossiers.code"], viewer=actor(ctx, "xa-officer"))


def test_a_commune_officer_lists_only_their_commune_s_dossiers(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        views = dossiers.list_dossiers(s, viewer=actor(ctx, "xa-admin"))
    assert [v.code for v in views] == [a["dossiers.code"]]


def test_a_province_admin_lists_every_commune_s_dossiers(ctx, world):
    a, b = world
    with ctx.db.session(write=False) as s:
        views = dossiers.list_dossiers(s, viewer=actor(ctx, "tinh-admin"))
    assert {v.code for v in views} == {a["dossiers.code"], b["dossiers.code"]}


def test_a_commune_officer_cannot_add_an_event_to_another_commune_s_dossier(ctx, world):
    _a, b = world
    with ctx.db.session() as s, pytest.raises(NotFound):
        dossiers.add_event(s, actor=actor(ctx, "xa-admin"), code=b["dossiers.code"], kind="result_ready",
                           now=ctx.clock(), tz=ZoneInfo(TZ), cfg=SmsSettings())
    with ctx.db.session(write=False) as s:
        assert s.scalar(select(Dossier.status).where(Dossier.code == b["dossiers.code"])) == "processing"


def test_a_commune_officer_s_dossier_at_their_counter_is_their_commune_s(ctx, world):
    a, _b = world
    with ctx.db.session() as s:
        d = dossiers.create(s, actor=actor(ctx, "xa-admin"), code="xa-hs-2", procedure="Khai sinh",
                            citizen_name="Người dân", phone="0912000909", counter=a["counter"],
                            officer_id=None, due_at=None, source="counter", now=ctx.clock(), tz=ZoneInfo(TZ),
                            cfg=SmsSettings())
        assert d.commune_id == a["commune_id"]


def test_a_commune_leader_s_ratings_by_reply_are_their_commune_s(ctx, world):
    a, _b = world
    now = ctx.clock()
    with ctx.db.session(write=False) as s:
        rows = dossiers.rating_summary(s, viewer=actor(ctx, "xa-leader"), start=now - timedelta(days=1),
                                       end=now + timedelta(days=1))
    assert [r.group for r in rows] == [a["counter"]]


# -- SMS -------------------------------------------------------------------------------------
def test_a_commune_admin_lists_only_the_messages_of_their_commune_s_dossiers(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        messages = sms_outbox.list_messages(s, viewer=actor(ctx, "xa-admin"))
        counts = sms_outbox.status_counts(s, viewer=actor(ctx, "xa-admin"))
    assert [m.id for m in messages] == [a["message_id"]] and sum(counts.values()) == 1


def test_a_commune_admin_cannot_send_another_commune_s_message_again(ctx, world):
    _a, b = world
    with ctx.db.session() as s, pytest.raises(NotFound):
        sms_outbox.requeue(s, actor=actor(ctx, "xa-admin"), message_id=b["message_id"], now=ctx.clock())
    with ctx.db.session(write=False) as s:
        assert s.get(SmsMessage, b["message_id"]).status == "failed"


def test_a_message_tied_to_no_commune_is_the_province_s(ctx, world):
    with ctx.db.session() as s:
        msg = sms_outbox.enqueue(s, phone="0912000777", text="Thu", kind="test", audience=sms_outbox.CITIZEN,
                                 now=ctx.clock())
        s.flush()
        assert msg.id not in {m.id for m in sms_outbox.list_messages(s, viewer=actor(ctx, "xa-admin"))}
        assert msg.id in {m.id for m in sms_outbox.list_messages(s, viewer=actor(ctx, "tinh-admin"))}


def test_only_a_province_admin_changes_a_notice_template(ctx, world):
    with ctx.db.session() as s:
        with pytest.raises(Forbidden):
            sms_templates.update(s, actor=actor(ctx, "xa-admin"), kind="received", body="Ho so {ma_ho_so}",
                                 unicode=False, urgent=False, ask_rating=False, now=ctx.clock(), brand=None)
        sms_templates.update(s, actor=actor(ctx, "tinh-admin"), kind="received", body="Ho so {ma_ho_so}",
                             unicode=False, urgent=False, ask_rating=False, now=ctx.clock(), brand=None)
        assert sms_templates.get(s, "received").custom


def test_a_commune_admin_sees_the_opt_outs_of_their_commune_s_numbers_and_cannot_remove_one(ctx, world):
    a, b = world
    with ctx.db.session() as s:
        assert [o.phone for o in sms_outbox.list_opt_outs(s, viewer=actor(ctx, "xa-admin"))] == \
            [sms_outbox.phones.normalise(a["phone"])]
        with pytest.raises(Forbidden):
            sms_outbox.remove_opt_out(s, actor=actor(ctx, "xa-admin"), phone=b["phone"])


# -- alarm contacts and shifts -----------------------------------------------------------------
def test_a_commune_admin_lists_only_their_commune_s_contacts_and_shifts(ctx, world):
    a, _b = world
    with ctx.db.session(write=False) as s:
        contacts = paging.list_contacts(s, viewer=actor(ctx, "xa-admin"))
        shifts = paging.list_shifts(s, viewer=actor(ctx, "xa-admin"), since=ctx.clock())
    assert [c.id for c in contacts] == [a["contact_id"]] and [x.id for x in shifts] == [a["shift_id"]]


def test_a_commune_admin_cannot_switch_off_or_put_on_call_another_commune_s_contact(ctx, world):
    _a, b = world
    who = actor(ctx, "xa-admin")
    with ctx.db.session() as s:
        with pytest.raises(NotFound):
            paging.set_contact_active(s, actor=who, contact_id=b["contact_id"], active=False)
        with pytest.raises(NotFound):
            paging.add_shift(s, actor=who, contact_id=b["contact_id"], starts_at=ctx.clock(),
                             ends_at=ctx.clock() + timedelta(hours=1))
        with pytest.raises(NotFound):
            paging.remove_shift(s, actor=who, shift_id=b["shift_id"])
    with ctx.db.session(write=False) as s:
        assert s.get(NotifyContact, b["contact_id"]).active


def test_a_commune_admin_s_new_contact_is_their_commune_s(ctx, world):
    a, b = world
    with ctx.db.session() as s:
        contact = paging.create_contact(s, actor=actor(ctx, "xa-admin"), name="Trực mới", audience="it",
                                        phone="0913000111")
        assert contact.commune_id == a["commune_id"]
        with pytest.raises(NotFound):
            paging.create_contact(s, actor=actor(ctx, "xa-admin"), name="Trực khác", audience="it",
                                  phone="0913000112", commune=b["commune"])


def test_an_alarm_of_a_commune_pages_its_contacts_and_the_province_s_not_another_commune_s(ctx, world):
    a, b = world
    now = ctx.clock()
    with ctx.db.session() as s:
        province = paging.create_contact(s, actor=SYSTEM, name="Tỉnh trực", audience="it", phone="0913000999",
                                         rank=2)
        chain = paging.chain(s, audience="it", at=now + timedelta(days=5), commune_id=a["commune_id"])
        assert {c.id for c in chain} == {a["contact_id"], province.id}
        own = paging.chain(s, audience="it", at=now + timedelta(days=5), commune_id=None)
        assert [c.id for c in own] == [province.id]
        assert b["contact_id"] not in {c.id for c in paging.chain(s, audience="it", at=now,
                                                                    commune_id=a["commune_id"])}


def test_a_commune_admin_sees_only_the_e_mails_of_their_commune_s_alarms(ctx, world):
    a, b = world
    now = ctx.clock()
    with ctx.db.session() as s:
        alarms = {}
        for ids in (a, b):
            alarm = Alarm(kind="node_offline", subject=f"node:{ids['node_id']}", severity="major",
                          message="Mất kết nối", raised_at=now, notified_at=now, audience="it",
                          commune_id=ids["commune_id"])
            s.add(alarm)
            s.flush()
            alarms[ids["commune"]] = paging.queue_email(s, to="it@example.org", subject="Canh bao",
                                                        body="...", kind="alarm", alarm_id=alarm.id, now=now,
                                                        dedupe_key=f"t:{alarm.id}")
        shown = {m.id for m in paging.list_emails(s, viewer=actor(ctx, "xa-admin"))}
    assert shown == {alarms["home"].id}


# -- the roster ------------------------------------------------------------------------------
def test_an_officer_of_one_commune_cannot_be_put_on_another_commune_s_counter(ctx, world):
    a, b = world
    with ctx.db.session() as s, pytest.raises(Invalid):
        roster.new_pattern(s, actor=SYSTEM, counter=b["counter"], officer_id=a["officer_id"], weekdays=[6],
                           starts="13:00", ends="17:00", valid_from=roster.local_day(ctx.clock(), TZ), tz=TZ)


def test_a_commune_admin_cannot_use_another_commune_s_counter_or_officer(ctx, world):
    a, b = world
    who = actor(ctx, "xa-admin")
    day = roster.local_day(ctx.clock(), TZ)
    with ctx.db.session() as s:
        with pytest.raises(NotFound):
            roster.new_pattern(s, actor=who, counter=b["counter"], officer_id=a["officer_id"], weekdays=[6],
                               starts="13:00", ends="17:00", valid_from=day, tz=TZ)
        with pytest.raises(NotFound):
            roster.new_exception(s, actor=who, kind="leave", officer_id=b["officer_id"], counter=None,
                                 starts_at=ctx.clock(), ends_at=ctx.clock() + timedelta(hours=2))


def test_a_commune_admin_cannot_end_or_drop_another_commune_s_roster_rows(ctx, world):
    _a, b = world
    who = actor(ctx, "xa-admin")
    with ctx.db.session() as s:
        with pytest.raises(NotFound):
            roster.end_pattern(s, actor=who, pattern_id=b["pattern_id"],
                               last_day=roster.local_day(ctx.clock(), TZ))
        with pytest.raises(NotFound):
            roster.drop_exception(s, actor=who, exception_id=b["exception_id"])
    with ctx.db.session(write=False) as s:
        assert s.get(RosterPattern, b["pattern_id"]) is not None


def test_a_commune_leader_lists_only_their_commune_s_patterns_and_exceptions(ctx, world):
    a, _b = world
    who = actor(ctx, "xa-leader")
    with ctx.db.session(write=False) as s:
        patterns = roster.list_patterns(s, viewer=who)
        exceptions = roster.list_exceptions(s, viewer=who)
    assert [p.id for p in patterns] == [a["pattern_id"]]
    assert {e.id for e in exceptions} == {a["exception_id"], a["entry_id"]}


def test_a_commune_leader_reads_nothing_of_the_duty_or_exceptions_of_another_commune_s_counter(ctx, world):
    _a, b = world
    who = actor(ctx, "xa-leader")
    with ctx.db.session(write=False) as s:
        assert roster.duties(s, viewer=who, counters=[b["counter"]], start=ctx.clock(),
                             end=ctx.clock() + timedelta(days=8)) == []
        assert roster.list_exceptions(s, viewer=who, counter=b["counter"]) == []


# -- the public page per commune ---------------------------------------------------------------
@pytest.fixture
def public(ctx, world):
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as client:
        yield client


def test_a_commune_s_public_page_shows_only_its_counters(public):
    page = public.get("/p/xb/")
    assert page.status_code == 200
    assert "Quầy BEBE" in page.text and "Quầy ALPHA" not in page.text


def test_a_commune_s_public_page_shows_no_names_or_phone_numbers(public):
    page = public.get("/p/xb/").text
    assert "Cán bộ BEBE" not in page and "Người dân BEBE" not in page and "0912000202" not in page


def test_the_public_index_lists_the_communes_when_there_are_several(public):
    page = public.get("/p/")
    assert page.status_code == 200
    assert 'href="/p/xb/"' in page.text and 'href="/p/home/"' in page.text


def test_an_unknown_commune_has_no_public_page(public):
    assert public.get("/p/khong-co/").status_code == 404


def test_the_fault_report_form_of_a_pole_still_opens(public):
    assert public.get("/p/loa/xb-loa/loa").status_code == 200


def test_a_roster_change_is_audited_as_its_commune_s(ctx, world):
    from thanthien.hub.db.models import AuditEntry

    _a, b = world
    with ctx.db.session(write=False) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "roster.add",
                                                     AuditEntry.subject == f"roster:{b['counter']}")).all()
    assert entries and {e.commune_id for e in entries} == {b["commune_id"]}


@pytest.mark.parametrize("path", ["/ui/satisfaction", "/ui/roster", "/ui/contacts", "/ui/sms", "/ui/dossiers",
                                  "/ui/dossier-ratings", "/ui/dossiers/xb-hs-1"])
def test_a_province_admin_reads_both_communes_people_pages(public, path):
    from hub.tenancy.seed_registry import PASSWORD
    from support import ui_login

    ui_login(public, "tinh-admin", PASSWORD)
    answer = public.get(path)
    assert answer.status_code == 200, answer.text[:500]
    if path != "/ui/roster":  # the roster shows one counter at a time
        assert walk.MARKER_B in answer.text or "xb-" in answer.text


def test_with_one_commune_the_public_index_is_its_page(ctx):
    from thanthien.hub.services import registry

    with ctx.db.session() as s:
        registry.create_counter(s, actor=SYSTEM, code="quay-mot", name="Quầy Một", now=ctx.clock())
    with TestClient(create_app(ctx.settings, ctx.db, ctx=ctx), follow_redirects=False) as client:
        page = client.get("/p/")
    assert page.status_code == 200 and "Quầy Một" in page.text and "Cụm loa hoạt động" in page.text
