"""The login throttle (services/logins.py) on SQLite and PostgreSQL: wrong logins per account
and per address lock with doubling delays, a success resets the account, the counts live in
the database (shared by hub processes), and nothing tells whether a username exists."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from support import api_login
from thanthien.hub.app import create_app
from thanthien.hub.context import HubContext
from thanthien.hub.db.models import AuditEntry, LoginThrottle
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import logins, users
from thanthien.hub.settings import AuthSection

pytestmark = pytest.mark.usefixtures("cheap_hashing")
PASSWORD = "mat-khau-dung-2026"
WRONG = "sai-mat-khau-1"
HOME = "10.0.0.5"
TZ = "Asia/Ho_Chi_Minh"
CFG = AuthSection(account_failures=3, address_failures=6, first_delay_s=30, max_delay_s=120,
                  forget_after_s=3600)


@pytest.fixture
def hub(ctx: HubContext) -> HubContext:
    with ctx.db.session() as s:
        for name in ("lan", "minh"):
            users.create_user(s, actor=SYSTEM, username=name, password=PASSWORD, role="officer",
                              now=ctx.clock())
    return ctx


def attempt(hub: HubContext, username: str, password: str, address: str = HOME,
            cfg: AuthSection = CFG) -> logins.LoginResult:
    with hub.db.session() as s:
        return logins.attempt(s, username=username, password=password, address=address, now=hub.clock(),
                              cfg=cfg, tz=TZ)


def fail(hub: HubContext, n: int, username: str = "lan", address: str = HOME) -> logins.LoginResult:
    result = logins.LoginResult(user=None)
    for _ in range(n):
        result = attempt(hub, username, WRONG, address)
    return result


def test_a_right_password_logs_in(hub):
    result = attempt(hub, "lan", PASSWORD)
    assert result.user is not None and result.user.username == "lan"
    assert not result.throttled


def test_wrong_logins_below_the_threshold_are_only_wrong(hub):
    result = fail(hub, CFG.account_failures - 1)
    assert (result.user, result.message, result.retry_after_s) == (None, logins.WRONG, None)


def test_the_failure_that_reaches_the_threshold_locks_the_account_for_the_first_delay(hub):
    result = fail(hub, CFG.account_failures)
    assert result.throttled and result.retry_after_s == 30


def test_while_locked_even_the_right_password_is_refused(hub):
    fail(hub, CFG.account_failures)
    hub.clock.advance(29)
    result = attempt(hub, "lan", PASSWORD)
    assert result.user is None and result.retry_after_s == 1


def test_the_right_password_works_once_the_delay_is_over(hub):
    fail(hub, CFG.account_failures)
    hub.clock.advance(30)
    assert attempt(hub, "lan", PASSWORD).user is not None


def test_each_further_failure_doubles_the_delay_up_to_the_cap(hub):
    delays = []
    for _ in range(5):
        result = fail(hub, 1 if delays else CFG.account_failures)
        delays.append(result.retry_after_s)
        hub.clock.advance(result.retry_after_s or 0)
    assert delays == [30, 60, 120, 120, 120]


def test_attempts_refused_while_locked_are_not_counted(hub):
    fail(hub, CFG.account_failures)
    for _ in range(10):
        attempt(hub, "lan", WRONG)
    hub.clock.advance(30)
    assert fail(hub, 1).retry_after_s == 60  # the 4th failure counted, not the 14th


def test_a_success_resets_the_account(hub):
    fail(hub, CFG.account_failures - 1)
    attempt(hub, "lan", PASSWORD)
    assert not fail(hub, CFG.account_failures - 1).throttled


def test_a_success_does_not_reset_the_address(hub):
    for i in range(CFG.address_failures - 1):
        attempt(hub, f"doan-{i}", WRONG)
    assert attempt(hub, "lan", PASSWORD).user is not None
    result = attempt(hub, "minh", WRONG)
    assert result.throttled


def test_wrong_logins_from_one_address_lock_every_account_from_it(hub):
    for i in range(CFG.address_failures):
        attempt(hub, f"doan-{i}", WRONG)
    result = attempt(hub, "minh", PASSWORD)
    assert result.user is None and result.throttled


def test_an_address_lock_does_not_stop_other_addresses(hub):
    for i in range(CFG.address_failures):
        attempt(hub, f"doan-{i}", WRONG)
    assert attempt(hub, "minh", PASSWORD, address="10.0.0.9").user is not None


def test_a_locked_account_is_locked_from_every_address(hub):
    fail(hub, CFG.account_failures)
    result = attempt(hub, "lan", PASSWORD, address="10.0.0.9")
    assert result.user is None and result.throttled


def test_failures_are_forgotten_after_a_quiet_while(hub):
    fail(hub, CFG.account_failures - 1)
    hub.clock.advance(CFG.forget_after_s + 1)
    assert not fail(hub, CFG.account_failures - 1).throttled


def test_an_unknown_username_is_throttled_exactly_like_a_known_one(hub):
    known = [fail(hub, 1, username="lan", address="10.0.0.1") for _ in range(CFG.account_failures + 1)]
    unknown = [fail(hub, 1, username="khong-co", address="10.0.0.2") for _ in range(CFG.account_failures + 1)]
    assert [(r.message, r.retry_after_s) for r in known] == [(r.message, r.retry_after_s) for r in unknown]


def test_the_refusal_says_when_to_try_again_in_local_time(hub):
    result = fail(hub, CFG.account_failures)  # the clock is 09:00:00 in Hà Nội
    assert result.message == ("Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 30 giây (lúc 09:00:30).")


def test_a_wait_of_minutes_is_said_in_minutes_and_seconds():
    now = datetime.fromisoformat("2026-03-02T02:00:00+00:00")
    until = datetime.fromisoformat("2026-03-02T02:01:30+00:00")
    message, seconds = logins.throttled_message(until=until, now=now, tz=TZ)
    assert (seconds, message) == (90, "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 1 phút 30 giây "
                                      "(lúc 09:01:30).")


def test_the_throttle_stores_no_username_as_typed(hub):
    fail(hub, 1, username="mat-khau-go-nham-o-day")
    with hub.db.session(write=False) as s:
        names = s.scalars(select(LoginThrottle.name).where(LoginThrottle.scope == logins.ACCOUNT)).all()
    assert names and all("mat-khau" not in n and len(n) == 64 for n in names)


def test_a_lock_is_in_the_audit_log(hub):
    fail(hub, CFG.account_failures)
    with hub.db.session(write=False) as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "login.locked")).one()
    assert (entry.subject, entry.actor_username, entry.details["failures"], entry.details["address"]) == \
        ("user:lan", "system", CFG.account_failures, HOME)


def test_the_lock_of_a_name_no_account_has_does_not_record_the_name(hub):
    fail(hub, CFG.account_failures, username="mat-khau-go-nham")
    with hub.db.session(write=False) as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "login.locked")).all()
    assert [e.subject for e in entries] == ["user:?"]
    assert "mat-khau-go-nham" not in str([e.details for e in entries])


def test_the_throttle_holds_across_hub_processes(hub, db):
    """Two hubs on the same database (as two processes would be): failures at one lock the other."""
    other_db = Database(db.url.render_as_string(hide_password=False))
    try:
        other = HubContext(settings=hub.settings, db=other_db, clock=hub.clock)
        fail(hub, CFG.account_failures - 1)
        assert attempt(other, "lan", WRONG).throttled
        assert attempt(hub, "lan", PASSWORD).throttled
    finally:
        other_db.dispose()


# -- through the API --------------------------------------------------------------------------
@pytest.fixture
def api(hub: HubContext):
    settings = hub.settings.model_copy(update={"auth": CFG})
    ctx = HubContext(settings=settings, db=hub.db, clock=hub.clock)
    with TestClient(create_app(settings, hub.db, ctx=ctx)) as client:
        yield client


def test_a_throttled_api_login_answers_429_with_retry_after_and_the_message(api):
    for _ in range(CFG.account_failures - 1):
        assert api_login(api, "lan", WRONG).status_code == 401
    answer = api_login(api, "lan", PASSWORD)
    assert answer.status_code == 200
    for _ in range(CFG.account_failures):
        answer = api_login(api, "lan", WRONG)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "30")
    assert answer.json()["detail"].startswith("Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau 30 giây")


def test_the_api_answers_a_known_and_an_unknown_username_alike_when_throttled(api):
    answers = {}
    for name in ("lan", "khong-co"):
        for _ in range(CFG.account_failures):
            response = api_login(api, name, WRONG)
        answers[name] = (response.status_code, response.headers.get("Retry-After"), response.json())
    assert answers["lan"] == answers["khong-co"]


def test_the_login_documents_the_throttle_answer(api):
    responses = api.get("/api/v1/openapi.json").json()["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"200", "401", "429"} <= set(responses)


def test_auth_settings_refuse_a_longest_delay_shorter_than_the_first():
    with pytest.raises(ValueError, match="max_delay_s"):
        AuthSection(first_delay_s=60, max_delay_s=30)
