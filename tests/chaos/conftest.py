"""Live chaos runs for the CI suite: a fresh 4-process chain behind the fault proxies per
run, a short TOML schedule, and the runner's own checks as the assertion."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

from scripts.chaos.runner import Outcome, RunPlan, run


def chaos(folder: Path, schedule: str, **plan: Any) -> Outcome:
    """Run ``schedule`` (TOML) on a fresh cluster in ``folder``; the outcome."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "schedule.in.toml"
    path.write_text(textwrap.dedent(schedule))
    lines: list[str] = []
    outcome = asyncio.run(
        run(RunPlan(schedule=path, work_dir=folder / "run", **plan), lines.append)
    )
    outcome.report["log"] = lines
    return outcome


def explain(outcome: Outcome) -> str:
    """What a failing assertion should show: the failed checks, the events, the notes."""
    r = outcome.report
    failed = [c for c in r["checks"] if not c["ok"]]
    events = [f"{e['t']:7.1f} {e['kind']} {e['action']} {e['detail']}" for e in r["events"]]
    return "\n".join(
        ["failed checks:", *map(str, failed), "events:", *events, "notes:", *r["notes"],
         f"data in {outcome.run_dir}"]
    )  # fmt: skip


def applied(outcome: Outcome, kind: str) -> int:
    return int(outcome.report["perturbations"]["applied"].get(kind, 0))
