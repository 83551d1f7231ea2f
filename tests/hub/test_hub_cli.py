"""`thanthien hub migrate | create-user | serve` as an operator runs them."""

from __future__ import annotations

import io

import httpx
import pytest

from hub.e2e import start_hub_process, write_toml
from support import wait_until
from thanthien.broker import free_port
from thanthien.cli import main
from thanthien.hub.db.migrate import current_revision, head_revision
from thanthien.hub.db.session import Database
from thanthien.hub.roles import SYSTEM
from thanthien.hub.services import users


@pytest.fixture
def config(tmp_path):
    return write_toml(tmp_path / "hub.toml", {
        "hub": {"data_dir": str(tmp_path / "var")},
        "http": {"secret_key": "cli-test-secret-0123456789", "port": free_port()},
        "logging": {"level": "WARNING"}})


def create_admin(config, monkeypatch, password: str = "mat-khau-rat-dai") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["hub", "create-user", "--config", str(config), "--username", "quantri", "--password-stdin"])


def test_migrate_creates_the_sqlite_database_at_head(config, tmp_path, capsys):
    assert main(["hub", "migrate", "--config", str(config)]) == 0
    db = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")
    try:
        assert current_revision(db.engine) == head_revision(db.engine)
    finally:
        db.dispose()
    assert "revision" in capsys.readouterr().out


def test_create_user_makes_the_first_admin(config, tmp_path, monkeypatch):
    assert create_admin(config, monkeypatch) == 0
    db = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")
    try:
        with db.session() as s:
            assert users.authenticate(s, username="quantri", password="mat-khau-rat-dai").role == "admin"
    finally:
        db.dispose()


def test_create_user_refuses_a_short_password_and_creates_nothing(config, tmp_path, monkeypatch, capsys):
    assert create_admin(config, monkeypatch, password="ngan") == 2
    assert "từ 8 đến 200 ký tự" in capsys.readouterr().err
    db = Database(f"sqlite:///{tmp_path / 'var' / 'hub.db'}")
    try:
        with db.session() as s:
            assert users.list_users(s, viewer=SYSTEM) == []
    finally:
        db.dispose()


def test_serve_refuses_an_unknown_role(config, capsys):
    assert main(["hub", "serve", "--config", str(config), "--roles", "api,cooking"]) == 2
    assert "roles must be" in capsys.readouterr().err


def test_serve_with_a_bad_config_lists_the_problems_and_exits_2(tmp_path, capsys):
    bad = write_toml(tmp_path / "bad.toml", {"hub": {"timezone": "Mars/Olympus"}, "http": {"port": 0}})
    with pytest.raises(SystemExit) as exit_info:
        main(["hub", "serve", "--config", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "http.port" in err


def test_serve_api_role_answers_healthz_and_login_over_http(config, tmp_path, monkeypatch):
    assert create_admin(config, monkeypatch) == 0
    port = int(config.read_text().split("port = ")[1].split()[0])
    proc = start_hub_process(config, roles="api")
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, timeout=20), (tmp_path / "hub.log").read_text()
        assert httpx.get(f"{base}/healthz").json()["mqtt"] is None  # no ingest role in this process
        login = {"username": "quantri", "password": "mat-khau-rat-dai"}
        token = httpx.post(f"{base}/api/v1/auth/login", data=login).json()["access_token"]
        me = httpx.get(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["role"] == "admin"
        assert httpx.get(f"{base}/api/v1/nodes").status_code == 401
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
