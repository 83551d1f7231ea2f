"""`thanthien provision node` gives a node working credentials and a valid config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import HUB, Account, connected_link
from thanthien.cli import main
from thanthien.config import load_config
from thanthien.edge.settings import EdgeSettings
from thanthien.protocol import Topics


def test_provisioned_node_connects_and_owns_its_subtree(broker_factory, tmp_path: Path):
    broker = broker_factory(HUB)
    out = tmp_path / "node.toml"
    code = main(["provision", "node", "loa-ban-co", "--broker-data", str(broker.data_dir),
                 "--out", str(out), "--port", str(broker.port), "--hardware", "mock"])
    assert code == 0
    settings = load_config(EdgeSettings, out)
    assert settings.node.id == "loa-ban-co"
    account = Account("loa-ban-co", settings.mqtt.password.get_secret_value())
    link = connected_link(broker.port, account, "loa-ban-co")
    try:
        link.publish_confirmed(Topics().node_state("loa-ban-co"), b"{}", retain=False)
    finally:
        link.stop()


def test_provision_refuses_an_id_that_cannot_be_a_topic_level(tmp_path: Path, capsys):
    assert main(["provision", "node", "bad/id", "--broker-data", str(tmp_path),
                 "--out", str(tmp_path / "x.toml")]) == 2
    assert "must match" in capsys.readouterr().out
    assert not (tmp_path / "x.toml").exists()


def test_broker_command_starts_in_the_foreground_and_stops_on_sigterm(tmp_path: Path):
    from thanthien.broker import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "thanthien.cli", "broker", "--port", str(port), "--data",
         str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends if the process exits early
            if "broker listening" in line:
                break
        password = (tmp_path / "hub.secret").read_text().strip()
        link = connected_link(port, Account("hub", password), "hub-cli-check")
        link.stop()
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a broker behind, even when the test fails
            proc.wait()
            raise
    assert code == 0
