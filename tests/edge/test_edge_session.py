"""The session counter and the one-agent-per-data-directory lock."""

from __future__ import annotations

import pytest

from thanthien.edge.session import AgentLock, AgentLockError, next_session


def test_session_counter_starts_at_one_and_grows_on_every_start(tmp_path):
    assert [next_session(tmp_path) for _ in range(3)] == [1, 2, 3]
    assert (tmp_path / "session").read_text().strip() == "3"


def test_unreadable_session_file_restarts_the_count(tmp_path):
    (tmp_path / "session").write_text("garbage")
    assert next_session(tmp_path) == 1


def test_second_agent_on_the_same_data_dir_is_refused(tmp_path):
    first = AgentLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(AgentLockError, match="another edge agent"):
            AgentLock(tmp_path).acquire()
    finally:
        first.release()
    again = AgentLock(tmp_path)
    again.acquire()
    again.release()
