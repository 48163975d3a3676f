"""`ledgerlab bench --phases`: where a block's time goes, from the nodes' traces
(scripts/bench_phases.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.bench_phases import PHASES, phases, summary
from tests.bench.test_bench_cli import run_bench

MS = 1000  # trace clocks are in µs


def height(h: int, t: int, *, leader: int, persisted: tuple[int, ...]) -> list[dict]:
    """The records of one height of a 4-node chain, the leader sending at ``t``."""
    recs: list[dict] = [
        {"node": leader, "ev": "bcast", "type": "PrePrepare", "height": h, "view": 0,
         "sender": leader, "t": t},
    ]
    for i, node in enumerate(n for n in range(4) if n != leader):
        recs.append({"node": node, "ev": "recv", "type": "PrePrepare", "height": h, "view": 0,
                     "sender": leader, "t": t + (10 + 10 * i) * MS})  # hops 10, 20, 30 ms
        recs.append({"node": node, "ev": "execute", "height": h, "view": 0, "t": t + 40 * MS})
        recs.append({"node": node, "ev": "executed", "height": h, "ok": True,
                     "t": t + 45 * MS})  # 5 ms
    for node, dt in enumerate(persisted):
        recs.append({"node": node, "ev": "commit", "height": h, "view": 0, "t": t + 60 * MS})
        recs.append({"node": node, "ev": "persisted", "height": h, "t": t + dt * MS})
    return recs  # fmt: skip


def test_phases_are_timed_from_the_records_of_the_window() -> None:
    records = height(1, 1_000_000, leader=1, persisted=(70, 80, 90, 200))
    records += height(2, 2_000_000, leader=2, persisted=(75, 85, 95, 300))
    records += height(3, 9_000_000, leader=3, persisted=(70, 70, 70, 70))  # outside
    out = phases(records, 1_000_000, 3_000_000, n=4)
    assert out["preprepare_hop"]["samples"] == 6
    assert out["preprepare_hop"]["p50"] == 20.0
    assert out["preprepare_hop"]["max"] == 30.0
    assert out["execute"]["p50"] == 5.0 and out["execute"]["samples"] == 6
    assert out["commit"]["samples"] == 8 and out["commit"]["max"] == 240.0
    # per height: the PrePrepare to the 3rd (quorum of 4) persisted block
    assert out["height"]["samples"] == 2
    assert sorted([out["height"]["p50"], out["height"]["max"]]) == [90.0, 95.0]
    assert "prepare_hop" not in out  # no Prepare records: no figure, not a zero
    assert "PrePrepare hop 20" in summary(out)


def test_a_height_short_of_a_quorum_of_persisted_nodes_has_no_height_figure() -> None:
    out = phases(height(1, 0, leader=1, persisted=(70, 80)), 0, 10**9, n=4)
    assert "height" not in out and out["commit"]["samples"] == 2
    assert summary({}) == "no trace records in the measured window"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_tiny_run_reports_every_phase(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = run_bench(
        "--nodes", "4", "--txs", "400", "--users", "20", "--block-txs", "100",
        "--batch", "50", "--phases", "--json", str(out), cwd=tmp_path, timeout=150,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    got = result["phases_ms"]
    assert set(got) == set(PHASES), got
    for name, p in got.items():
        assert p["samples"] > 0 and 0 <= p["p50"] <= p["p90"] <= p["max"], (name, p)
    # At least one height per block of the round (4 blocks of 100), each from a quorum.
    assert got["height"]["samples"] >= 4
    assert "PrePrepare hop" in proc.stdout
