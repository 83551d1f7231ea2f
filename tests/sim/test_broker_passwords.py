"""Bulk broker users (one file write for a fleet) are accepted by the real Mosquitto."""

from __future__ import annotations

import base64
import subprocess

import pytest

from support import Account, mqtt_settings
from thanthien.broker import BrokerError, mosquitto_hash, set_passwords
from thanthien.mqtt import MqttLink


def test_hash_equals_mosquitto_passwd_for_the_same_salt(tmp_path):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "u1", "s3cret-pass"], check=True)
    expected = passwd.read_text().strip().split(":", 1)[1]
    salt = base64.b64decode(expected.split("$")[3])
    assert mosquitto_hash("s3cret-pass", salt=salt) == expected


def test_bulk_users_connect_and_a_wrong_password_is_refused(broker_factory):
    broker = broker_factory()
    users = {f"bulk-{i:03d}": f"password-{i}" for i in range(50)}
    broker.add_users(users)  # the broker runs: it reloads its password file
    links = []
    try:
        for name in ("bulk-000", "bulk-049"):
            link = MqttLink(client_id=name, settings=mqtt_settings(broker.port, Account(name, users[name])),
                            persistent=False)
            link.start()
            links.append(link)
            assert link.wait_connected(10), link.last_connect_error
        bad = MqttLink(client_id="bulk-001", persistent=False,
                       settings=mqtt_settings(broker.port, Account("bulk-001", "wrong")))
        bad.start()
        links.append(bad)
        assert not bad.wait_connected(1.5)
    finally:
        for link in links:
            link.stop()


def test_existing_users_are_kept_and_bad_names_change_nothing(tmp_path):
    passwd = tmp_path / "passwd"
    set_passwords(passwd, {"hub": "hub-password"})
    before = passwd.read_text()
    with pytest.raises(BrokerError, match="invalid broker user"):
        set_passwords(passwd, {"ok-user": "x", "bad:name": "y"})
    assert passwd.read_text() == before
    set_passwords(passwd, {"node-1": "n1"})
    names = [line.split(":")[0] for line in passwd.read_text().splitlines()]
    assert names == ["hub", "node-1"]
