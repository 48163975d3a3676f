"""The shared load helpers of ``ledgerlab demo`` and ``ledgerlab bench`` (no nodes needed)."""

from __future__ import annotations

import asyncio
import json

from scripts.launcher.load import CommitTracker, percentile, send_raw_body, wait_until


def test_percentile_rules_keep_each_command_s_figures() -> None:
    values = [float(v) for v in (7, 1, 9, 3, 5, 2, 8, 4, 6, 10)]  # unsorted on purpose
    assert percentile([], 0.5) == 0.0
    # bench: index round(q * (n - 1)) of the sorted values
    assert percentile(values, 0.5) == 5.0  # round(4.5) == 4
    assert percentile(values, 0.9) == 9.0  # round(8.1) == 8
    assert percentile(values, 0.99) == 10.0
    # demo: index int(q * n)
    assert percentile(values, 0.5, rule="floor") == 6.0
    assert percentile(values, 0.95, rule="floor") == 10.0
    assert percentile(values, 1.0, rule="floor") == 10.0  # clamped to the last


def test_send_raw_body_is_a_batch_with_ids_by_position() -> None:
    body = json.loads(send_raw_body("group0", [b"\x01\x02", b"\xff"]))
    assert [c["id"] for c in body] == [0, 1]
    assert {c["method"] for c in body} == {"sendRawTransaction"}
    assert [c["params"] for c in body] == [["group0", "0x0102"], ["group0", "0xff"]]


def test_tracker_and_wait_until() -> None:
    async def scenario() -> tuple[bool, bool, CommitTracker]:
        t = CommitTracker(head=4)
        t.submitted.update({"0xa": 1.0, "0xb": 1.0})
        late = await wait_until(lambda: t.all_committed(["0xa"]), t.changed, 0.05, poll=0.01)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, t.on_block, 5, {"transactions": ["0xa", "0xc"]}, 2.0)
        loop.call_later(0.02, t.on_block, 6, {"transactions": ["0xa", "0xb"]}, 3.0)
        ok = await wait_until(lambda: t.all_committed(["0xa", "0xb"]), t.changed, 5.0)
        return late, ok, t

    late, ok, t = asyncio.run(scenario())
    assert late is False and ok is True
    assert t.head == 6
    assert t.committed == {"0xa": 2.0, "0xc": 2.0, "0xb": 3.0}  # first sighting kept
    assert t.count_committed(["0xa", "0xb", "0xd"]) == 2
