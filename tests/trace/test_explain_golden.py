"""Golden files of `ledgerlab explain` on fixed-seed simulator traces.

The diagram of a height (or view change) is pinned byte for byte in tests/trace/golden/.
A deliberate change to the explainer, the trace or the protocol changes them: look at
the diff, then regenerate with

    LEDGERLAB_UPDATE_GOLDENS=1 .venv/bin/pytest -q tests/trace/test_explain_golden.py

(the test then rewrites the files and fails, so a regeneration is never silent).
Each case also checks the facts the explanation must contain, independently of layout.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from consensus.sim import Scenario
from scripts.trace.diagram import plain
from scripts.trace.story import Story, height_story, view_change_story
from tests.trace import scenarios

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("LEDGERLAB_UPDATE_GOLDENS") == "1"


def _height(h: int) -> Callable[[dict, list], Story]:
    return lambda header, records: height_story(header, records, h)


def _view(v: int) -> Callable[[dict, list], Story]:
    return lambda header, records: view_change_story(header, records, v)


CASES: dict[str, tuple[Callable[[], Scenario], Callable[[dict, list], Story], list[str]]] = {
    "normal_height_2": (
        scenarios.normal,
        _height(2),
        [
            "node2 leads view 0 at height 2",
            "now holds 3 = 2f+1 matching Prepares",
            "it saves the certificate before sending Commit",
            "holds 3 = 2f+1 Commits",
            "height 2 was decided in view 0",
        ],
    ),
    "view_change_1": (
        scenarios.view_change,
        _view(1),
        [
            "timer fired",
            "holds 3 = 2f+1 ViewChanges",
            "carry a certificate prepared in view 0, so the NewView must re-propose",
            "height 1 was then decided in view 1",
        ],
    ),
    "view_change_height_1": (
        scenarios.view_change,
        _height(1),
        ["✗ rule", "node0 holds 3 = 2f+1 Commits", "re-propose that block"],
    ),
    "equivocation_height_3": (
        scenarios.equivocation,
        _height(3),
        ["node3 EQUIVOCATES", "signs two different proposals", "Prepares in view 0 split"],
    ),
    "membership_height_3": (
        scenarios.membership,
        _height(3),
        [
            "the sealers are node0, node1, node2, node3, node4",
            "a quorum is n - f = 4",
            "holds 4 = n - f (n = 5, f = 1) matching Prepares",
        ],
    ),
    "sync_height_3": (
        scenarios.sync,
        _height(3),
        [
            "node2 crashes",
            "fetched block 3 from node0 by block sync",
            "fetched by block sync: node2",
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_explain_matches_golden(name: str) -> None:
    scenario, story_of, facts = CASES[name]
    header, records = scenarios.records_of(scenario())
    text = plain(story_of(header, records), width=110)
    for fact in facts:
        assert fact in " ".join(text.split()), f"{name}: missing {fact!r}"
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        pytest.fail(f"rewrote {path.name}: review the diff, then run without the variable")
    assert path.exists(), f"no golden {path.name}: run with LEDGERLAB_UPDATE_GOLDENS=1"
    assert text == path.read_text(encoding="utf-8")


def test_cli_explain_and_sim_explain_draw_the_same(tmp_path: Path) -> None:
    """`ledgerlab explain FILE --height H` on a `sim --trace` file = the golden."""
    from consensus.sim import run_scenario
    from consensus.sim.trace import JsonlTrace
    from scripts.trace.schema import read_trace

    path = tmp_path / "t.jsonl"
    with open(path, "w") as fh:
        run_scenario(scenarios.normal(), trace=JsonlTrace(fh))
    header, records = read_trace(path)
    text = plain(height_story(header, records, 2), width=110)
    assert text == (GOLDEN / "normal_height_2.txt").read_text(encoding="utf-8")
