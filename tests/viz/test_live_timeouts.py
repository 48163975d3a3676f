"""A live node's timer and the ViewChange it causes carry different µs stamps; the page
must still say that the node timed out (it said "No node timed out ... node1, node2 and
node3 joined once f+1 had asked" on a live view change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.viz import page_data, read_trace

pytestmark = pytest.mark.timeout(120)

T0 = 1_796_154_740_000_000  # wall µs
HEADER = {
    "ev": "header",
    "format": "ledgerlab-trace",
    "version": 1,
    "source": "live",
    "time_unit": "us",
    "clock": "wall",
    "t": T0,
    "nodes": [
        {"id": i, "index": i, "name": f"node{i}", "role": "sealer", "behaviour": None}
        for i in range(4)
    ],
    "sealers": [0, 1, 2, 3],
    "f": 1,
}


def _asks(node: int, t: int, *, timer: bool) -> list[dict]:
    out = [{"ev": "timer", "fired": "view-change", "height": 4, "view": 1, "node": node, "t": t}]
    out = out if timer else []
    return [
        *out,
        {"ev": "state", "height": 4, "view": 1, "active": False, "node": node, "t": t + 20},
        {"ev": "persist_state", "view": 1, "prepared": None, "node": node, "t": t + 40},
        {
            "ev": "bcast",
            "type": "ViewChange",
            "view": 1,
            "height": 4,
            "sender": node,
            "prepared": None,
            "to": [x for x in range(4) if x != node],
            "node": node,
            "t": t + 59,
        },
    ]


def test_timed_out_nodes_are_told_apart_from_those_that_joined(tmp_path: Path) -> None:
    records = [
        HEADER,
        *_asks(1, T0 + 1000, timer=True),
        *_asks(2, T0 + 38_000, timer=True),
        *_asks(3, T0 + 41_000, timer=False),  # joined: f+1 had asked
    ]
    path = tmp_path / "live.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = page_data(*read_trace(path))
    assert {v["node"]: v["timedOut"] for v in data["viewChangesSent"]} == {
        1: True,
        2: True,
        3: False,
    }
    text = next(c["text"] for c in data["captions"] if c["kind"] == "view-change")
    assert "Node1 and node2 timed out" in text and "node3 joined" in text, text
