"""A receipt is drawn as leaving with a send that was addressed to its receiver.

A new leader broadcasts its NewView and may later send a copy to one lagging peer (same
sender, type, view and height). Pairing the other peers' receipts with that later copy
drew the NewView as leaving after the new leader's first PrePrepare.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.viz import page_data, read_trace
from scripts.viz.model import MESSAGE_TYPES
from tests.viz import traces

pytestmark = pytest.mark.timeout(120)

HEADER = {
    "ev": "header",
    "format": "ledgerlab-trace",
    "version": 1,
    "source": "sim",
    "time_unit": "us",
    "clock": "virtual",
    "t": 0,
    "nodes": [
        {"id": i, "index": i, "name": f"node{i}", "role": "sealer", "behaviour": None}
        for i in range(4)
    ],
    "sealers": [0, 1, 2, 3],
    "f": 1,
}
NEW_VIEW = {
    "type": "NewView",
    "view": 1,
    "height": 1,
    "sender": 2,
    "proposal": None,
    "proofs": 3,
    "proof_from": [1, 2, 3],
    "proof_prepared": [None, None, None],
    "reproposed": None,
}


def _flights(data: dict, type_name: str) -> dict[tuple[int, int], list[int]]:
    """(sender lane, receiver lane) -> send times of the drawn messages of one type."""
    m, t, out = data["msgs"], 0, {}
    for i in range(len(m["fl"])):
        t += m["ts"][i]
        if MESSAGE_TYPES[m["ty"][i]] == type_name:
            out.setdefault((m["src"][i], m["dst"][i]), []).append(t)
    return out


def test_a_receipt_is_not_paired_with_a_copy_sent_to_another_node(tmp_path: Path) -> None:
    records = [
        HEADER,
        {"ev": "bcast", "node": 2, "t": 1000, "to": [0, 1, 3], **NEW_VIEW},
        {"ev": "send", "node": 2, "t": 5000, "to": 0, **NEW_VIEW},
        {"ev": "recv", "node": 3, "t": 6000, "from": 2, **NEW_VIEW},
        {"ev": "recv", "node": 0, "t": 7000, "from": 2, **NEW_VIEW},
    ]
    path = tmp_path / "nv.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    flights = _flights(page_data(*read_trace(path)), "NewView")
    assert flights[(2, 3)] == [1000]  # the broadcast, not the later copy to node0
    assert flights[(2, 0)] == [5000]  # node0's receipt: the latest send addressed to it


def test_every_flight_leaves_with_a_send_to_its_receiver(tmp_path: Path) -> None:
    """On a real re-proposal run (the leader re-sends its NewView to a peer), every drawn
    message's send time is that of a bcast or send that listed its receiver."""
    path = traces.reproposal(tmp_path / "rp.jsonl")
    records = [json.loads(line) for line in path.read_text().splitlines()]
    addressed: set[tuple[int, int, str, int]] = set()
    for r in records:
        if r["ev"] in ("bcast", "send"):
            to = r["to"] if isinstance(r["to"], list) else [r["to"]]
            addressed.update((r["node"], dst, r["type"], r["t"]) for dst in to)
    resent = [r for r in records if r["ev"] == "send" and r["type"] == "NewView"]
    assert resent, "the scenario no longer re-sends a NewView: pick another"
    data = page_data(*read_trace(path))
    m, t = data["msgs"], 0
    for i in range(len(m["fl"])):
        t += m["ts"][i]
        kind = MESSAGE_TYPES[m["ty"][i]]
        if m["fg"][i] & 8 or kind == "garbage":  # lost: drawn from its own record
            continue
        assert (m["src"][i], m["dst"][i], kind, t) in addressed, (kind, m["src"][i], m["dst"][i], t)


def _nv_flights(tmp_path: Path, records: list[dict]) -> dict[tuple[int, int], list[int]]:
    path = tmp_path / "nv2.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [HEADER, *records]))
    return _flights(page_data(*read_trace(path)), "NewView")


def test_a_node_receiving_the_same_new_view_twice_got_two_sends(tmp_path: Path) -> None:
    """Both receipts come after the re-sent copy: one is the broadcast's, one the copy's
    (drawing both from the copy showed one send arriving twice and one never)."""
    flights = _nv_flights(
        tmp_path,
        [
            {"ev": "bcast", "node": 2, "t": 1000, "to": [0, 1, 3], **NEW_VIEW},
            {"ev": "send", "node": 2, "t": 5000, "to": 0, **NEW_VIEW},
            {"ev": "recv", "node": 0, "t": 6000, "from": 2, **NEW_VIEW},
            {"ev": "recv", "node": 0, "t": 7000, "from": 2, **NEW_VIEW},
            {"ev": "recv", "node": 3, "t": 7500, "from": 2, **NEW_VIEW},
        ],
    )
    assert sorted(flights[(2, 0)]) == [1000, 5000]
    assert flights[(2, 3)] == [1000]
