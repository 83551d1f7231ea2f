"""Config files are validated once, with every problem listed and located."""

from __future__ import annotations

from pathlib import Path

import pytest

from thanthien.cli import main
from thanthien.config import ConfigError, load_config
from thanthien.edge.settings import EdgeSettings
from thanthien.hub.settings import HubSettings
from thanthien.paths import CONFIG_DIR


@pytest.mark.parametrize("name", ["hub.example.toml", "edge.example.toml"])
def test_example_configs_pass_the_check(name, capsys):
    assert main(["config", "check", str(CONFIG_DIR / name)]) == 0
    assert "valid" in capsys.readouterr().out


def test_file_with_three_mistakes_names_all_three(tmp_path: Path, capsys):
    bad = tmp_path / "hub.toml"
    bad.write_text(
        '[hub]\ntimezone = "Asia/Ho_Chi_Minh"\ncolour = "blue"\n'   # unknown key
        '[mqtt]\nport = 70000\n'                                    # out of range
        '[http]\nport = "eighty"\n',                                # wrong type
        encoding="utf-8",
    )
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err
    assert "hub.colour" in err
    assert "mqtt.port" in err
    assert "http.port" in err


def test_edge_problems_are_located_inside_lists(tmp_path: Path):
    bad = tmp_path / "edge.toml"
    bad.write_text(
        '[node]\nid = "Bad Id"\n'
        '[[rating_boxes]]\nid = "box-1"\ncounter = "quay-1"\n'
        '[[rating_boxes.buttons]]\npin = 40\nscore = 9\nlabel = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(EdgeSettings, bad)
    problems = "\n".join(info.value.problems)
    assert "node.id" in problems
    assert "rating_boxes[0].buttons[0].pin" in problems
    assert "rating_boxes[0].buttons[0].score" in problems


def test_cross_field_problems_are_all_listed(tmp_path: Path):
    cfg = tmp_path / "edge.toml"
    cfg.write_text(
        '[node]\nid = "n1"\n[audio]\noutput = "wav"\n[mqtt]\nusername = "someone-else"\n'
        '[[rating_boxes]]\nid = "b"\ncounter = "q"\nled_pin = 5\n'
        '[[rating_boxes]]\nid = "b"\ncounter = "q2"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(EdgeSettings, cfg)
    problems = info.value.problems
    assert any("GPIO 5" in p for p in problems)
    assert any("id 'b' appears 2 times" in p for p in problems)
    assert any("audio.wav_dir" in p for p in problems)
    assert any("mqtt.username" in p for p in problems)


def test_toml_syntax_error_is_reported_with_its_line(tmp_path: Path, capsys):
    bad = tmp_path / "broken.toml"
    bad.write_text("[hub\nsite_name = 1\n", encoding="utf-8")
    assert main(["config", "check", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["config", "check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch):
    cfg = tmp_path / "hub.toml"
    cfg.write_text("[mqtt]\nport = 1883\nhost = \"broker.local\"\n", encoding="utf-8")
    monkeypatch.setenv("THANTHIEN_HUB_MQTT__PORT", "8883")
    settings = load_config(HubSettings, cfg)
    assert settings.mqtt.port == 8883
    assert settings.mqtt.host == "broker.local"


def test_bad_environment_value_is_listed_like_a_file_problem(tmp_path: Path, monkeypatch):
    cfg = tmp_path / "hub.toml"
    cfg.write_text("[hub]\n", encoding="utf-8")
    monkeypatch.setenv("THANTHIEN_HUB_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_config(HubSettings, cfg)


def test_unknown_time_zone_is_refused(tmp_path: Path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[hub]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_config(HubSettings, cfg)


def test_bad_secret_values_are_never_echoed(tmp_path: Path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[http]\nsecret_key = "short"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(HubSettings, cfg)
    assert "http.secret_key" in str(info.value)
    assert "short" not in str(info.value).replace("too short", "").replace("shorter", "")


def test_bad_plain_values_are_echoed_to_help(tmp_path: Path):
    cfg = tmp_path / "hub.toml"
    cfg.write_text('[http]\nport = 0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"got 0"):
        load_config(HubSettings, cfg)
