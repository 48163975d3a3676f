"""`ledgerlab status` says a stalled node is stalled, in red, with the node's reason."""

from __future__ import annotations

from pathlib import Path

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
