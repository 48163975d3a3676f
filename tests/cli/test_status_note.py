"""`ledgerlab status` says a stalled node is stalled, in red, with the node's reason."""

from __future__ import annotations

import os
from pathlib import Path

from scripts.launcher import procs
from scripts.launcher.layout import NodeEntry
from scripts.launcher.status import NodeStatus, note

ENTRY = NodeEntry(0, "node0", "sealer", "ab" * 64, "127.0.0.1:30300", "127.0.0.1:20200", Path("."))


def test_a_stalled_node_is_red_with_its_reason() -> None:
    st = NodeStatus(node=ENTRY, answered=True, pending=3, height=5, head_age=20.0)
    st.stalled, st.stall_reason, st.since_commit = True, "2 of 3 matching Prepares (view 4)", 19.6
    text = note(st, best_height=5)
    assert text.plain == "STALLED 20 s: 2 of 3 matching Prepares (view 4)"
    assert "red" in str(text.style)
    assert st.as_json()["stalled"] is True and st.as_json()["stall_reason"].startswith("2 of 3")


def test_a_node_waiting_without_a_stall_is_not_red() -> None:
    st = NodeStatus(node=ENTRY, answered=True, pending=3, height=5, head_age=2.5)
    assert "STALLED" not in note(st, best_height=5).plain
    assert "red" not in str(note(st, best_height=5).style)


def _home(tmp_path: Path) -> NodeEntry:
    entry = NodeEntry(0, "node0", "sealer", "ab" * 64, "127.0.0.1:1", "127.0.0.1:2", tmp_path)
    (tmp_path / "log").mkdir()
    return entry


def test_a_node_that_stopped_on_a_fatal_error_says_why(tmp_path: Path) -> None:
    entry = _home(tmp_path)
    entry.stderr_path.write_text("error: node0 stopped: an earlier run\n")
    os.utime(entry.stderr_path, (1, 1))  # printed before this run started
    entry.pid_path.write_text("4242\n")
    os.utime(entry.pid_path, (100, 100))  # this run started
    entry.stderr_path.write_text("error: node0 stopped: seal loop failed 6 times\n")
    os.utime(entry.stderr_path, (200, 200))  # and printed this since
    st = NodeStatus(node=entry, process="stale pid file", ended=procs.how_it_ended(entry))
    assert note(st, best_height=0).plain == "down: node0 stopped: seal loop failed 6 times"


def test_a_killed_node_is_told_from_one_that_stopped(tmp_path: Path) -> None:
    # SIGKILL leaves no line: what stderr.log holds is an earlier run's, and must not be
    # shown as this one's reason.
    entry = _home(tmp_path)
    entry.stderr_path.write_text("error: node0 stopped: an earlier run\n")
    os.utime(entry.stderr_path, (1, 1))
    entry.pid_path.write_text("4242\n")
    st = NodeStatus(node=entry, process="stale pid file", ended=procs.how_it_ended(entry))
    said = "down: killed, without a word (SIGKILL or out of memory)"
    assert note(st, best_height=0).plain == said
    assert "red" in str(note(st, best_height=0).style)
