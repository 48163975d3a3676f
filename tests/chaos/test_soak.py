"""``ledgerlab chaos --seeds N``: totals over the seeds, failures with their replay."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.chaos import soak as soak_mod
from scripts.chaos.runner import RunPlan

pytestmark = pytest.mark.timeout(30)


def fake_trial(plan: RunPlan, seed: int) -> dict[str, Any]:
    ok = seed != 3
    return {
        "seed": seed,
        "ok": ok,
        "failed": [] if ok else ["stalls: 1 stalls beyond their bound"],
        "replay": f"ledgerlab chaos --seed {seed} --duration {plan.duration:g}",
        "dir": None if ok else "/tmp/x",
        "applied": {"kill": 2, "partition": 1},
        "txs": {"acknowledged": 100, "lost": 0},
        "longest_stall": float(seed),
        "views_advanced": 1,
        "restarts": 2,
        "duration": plan.duration,
    }


def test_totals_and_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(soak_mod, "trial", fake_trial)
    lines: list[str] = []
    totals = soak_mod.soak(RunPlan(duration=30), range(1, 5), workers=None, scheduler=None,
                           say=lines.append)  # fmt: skip
    assert totals["seeds"] == [1, 2, 3, 4] and totals["passed"] == 3 and totals["failed"] == [3]
    assert totals["perturbations"] == {"kill": 8, "partition": 4}
    assert totals["txs"] == {"acknowledged": 400, "lost": 0}
    assert totals["longest_stall"] == 4.0 and totals["seconds_of_chaos"] == 120
    failed = next(line for line in lines if line.startswith("seed 3"))
    assert "FAILED" in failed and "replay: ledgerlab chaos --seed 3" in failed
