"""The agent's MQTT life seen from the hub: retained state, Will, session counter, and
the command line's start-up validation."""

from __future__ import annotations

import signal

import pytest
from edge_helpers import edge_config, edge_settings, start_agent_process, to_toml, watch_state

from thanthien.cli import main
from thanthien.edge.agent import EdgeAgent

pytestmark = pytest.mark.chaos


@pytest.fixture
def config_file(tmp_path, broker_factory):
    broker = broker_factory()
    path = tmp_path / "edge.toml"
    path.write_text(to_toml(edge_config(tmp_path / "node", broker.port)), encoding="utf-8")
    watcher, link = watch_state(broker.port)
    yield path, watcher
    link.stop()


def test_state_goes_online_then_lost_when_the_agent_is_killed(config_file):
    path, watcher = config_file
    proc = start_agent_process(path)
    try:
        online = watcher.wait_state("online", session=1)
        assert online.capabilities == ["rating_box"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        lost = watcher.wait_state("lost", session=1)
        assert [s.state for s in watcher.states()] == ["online", "lost"]
        assert lost.node == "node-a"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_state_goes_online_then_offline_on_sigterm_and_the_session_grows(config_file):
    path, watcher = config_file
    for session in (1, 2):
        proc = start_agent_process(path)
        try:
            watcher.wait_state("online", session=session)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
            watcher.wait_state("offline", session=session)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [(s.state, s.session) for s in watcher.states()] == \
        [("online", 1), ("offline", 1), ("online", 2), ("offline", 2)]


def test_retained_state_is_what_a_late_subscriber_sees(tmp_path, broker_factory):
    broker = broker_factory()
    early, early_link = watch_state(broker.port, client_id="test-early-watcher")
    with EdgeAgent(edge_settings(tmp_path / "node", broker.port)) as agent:
        # Once an early subscriber has it, the broker holds it as the retained state.
        early.wait_state("online", session=agent.session)
        early_link.stop()
        watcher, link = watch_state(broker.port, client_id="test-late-watcher")
        try:
            assert watcher.wait_state("online", session=agent.session)
            assert watcher.messages[0].retain
        finally:
            link.stop()


def test_stop_is_safe_twice_and_publishes_offline_once(tmp_path, broker_factory):
    broker = broker_factory()
    watcher, link = watch_state(broker.port)
    try:
        agent = EdgeAgent(edge_settings(tmp_path / "node", broker.port))
        agent.start()
        watcher.wait_state("online", session=1)
        agent.stop()
        agent.stop()
        watcher.wait_state("offline", session=1)
        assert [s.state for s in watcher.states()] == ["online", "offline"]
    finally:
        link.stop()


def test_bad_config_is_refused_at_start_up_with_every_problem_listed(tmp_path, capsys):
    data = edge_config(tmp_path / "node", 1883)
    data["node"]["id"] = "Node A"
    data["node"]["hardware"] = "arduino"
    data["telemetry"]["interval_s"] = 0
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["edge", "run", "--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for location in ("node.id", "node.hardware", "telemetry.interval_s"):
        assert location in err
    assert not (tmp_path / "node").exists()  # nothing was started or created


def test_config_with_a_shared_gpio_is_refused(tmp_path, capsys):
    data = edge_config(tmp_path / "node", 1883)
    data["rating_boxes"][1]["buttons"][0]["pin"] = 5  # also used by box-1
    data["rating_boxes"][1]["id"] = "box-1"
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(data), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["edge", "run", "--config", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "GPIO 5 is used 2 times" in err and "id 'box-1' appears 2 times" in err
