"""Exercise 7: switch a safety rule off (--break) and watch the checker catch the fork."""

from __future__ import annotations

from consensus.sim import DropRule, Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, word
from scripts.learn.look import invariants

RULE = "skip-reproposal"
SAFETY = ("agreement", "validity", "integrity")
"""The checker's safety invariants (consensus/sim/checker.py); liveness is not one: a
broken safety rule is caught by what went wrong, not by what stopped happening."""


def scenario(seed: int, rule: str | None = RULE) -> Scenario:
    """As ``ledgerlab sim --drop-commits-to 1,2,3``: only node 0 gets the Commits of the
    first 400 ms, so it alone commits height 1 before the others change views."""
    return Scenario(
        nodes=4,
        blocks=5,
        seed=seed,
        break_rule=rule,
        drop_rules=[DropRule(kinds=("Commit",), dst=(1, 2, 3), end_ms=400)],
        status_ms=0.0,
        timeout_ms=500.0,
    )


def sweep(seed: int) -> list[Scenario]:
    """The broken run, and the same run with the rule on."""
    return [scenario(seed, RULE), scenario(seed, None)]


def look(run: Run) -> list[str]:
    broken, intact = run.runs[0], run.runs[1]
    out = [f"With --break {broken.scenario.break_rule}, height 1 was committed as:"]
    for c in facts.commits(broken.records, 1):
        out.append(
            f"  {facts.ms(c['t']):>10}  node {c['node']}: block {c['block']} in view {c['view']}"
        )
    return [
        *out,
        "The checker, rule switched off:",
        *invariants(broken),
        "The same run with the rule on:",
        *invariants(intact),
    ]


def question(run: Run) -> str:
    return (
        "Which SAFETY invariant (nothing bad ever happens; liveness is not one) did the "
        "checker report as FAILED in the broken run?"
    )


def answer(run: Run) -> Answer:
    broken, intact = run.runs[0], run.runs[1]
    inv = broken.summary["invariants"]
    failed = {name for name, r in inv.items() if not r["ok"] and name in SAFETY}
    why = [f"{name}: {inv[name]['detail']}" for name in sorted(failed)]
    if not inv.get("liveness", {"ok": True})["ok"]:
        why.append(
            f"liveness FAILED too ({inv['liveness']['detail']}), but liveness says good "
            "things keep happening; safety says nothing bad happens, and a fork is bad."
        )
    early = facts.commits(broken.records, 1)
    blocks = sorted({c["block"] for c in early})
    if len(blocks) > 1:
        first = early[0]
        why.append(
            f"Node {first['node']} committed height 1 as block {first['block']} in view "
            f"{first['view']}; the others timed out and their ViewChanges carried its "
            "prepared certificate, but the broken NewView rule ignored it, so the new "
            f"leader proposed afresh: two blocks at height 1 ({', '.join(blocks)})."
        )
    why.append(
        "With the rule on the same messages are lost, yet the checker says: "
        + ", ".join(f"{k} {r['status']}" for k, r in intact.summary["invariants"].items())
        + ". The NewView re-proposes the highest prepared certificate, so a block that "
        "may have committed somewhere is the only block that can commit there."
    )
    if not failed:
        why = ["the checker reported no safety failure in this run", *why]
    return word(failed, why)


EXERCISE = Exercise(
    number=7,
    title="Switch a safety rule off and watch the checker catch the fork",
    intro="The same replica with one rule switched off (--break skip-reproposal: a "
    "NewView never carries the highest prepared block). Commits to nodes 1-3 are lost "
    "for 400 ms, so node 0 alone commits height 1 before a view change.",
    commands=lambda seed: [
        f"ledgerlab sim --break {RULE} --drop-commits-to 1,2,3 --blocks 5 --seed {seed}",
        f"ledgerlab sim --drop-commits-to 1,2,3 --blocks 5 --seed {seed}",
    ],
    scenario=scenario,
    sweep=sweep,
    look=look,
    diagram=lambda run: ("height", 1),
    question=question,
    answer=answer,
    kind="word",
    think="Try the other broken rule, --break small-quorum, with a partition "
    "(--partition '0,1|2,3@0-3000'). Which quorum intersection argument does it break?",
    reading=("docs/consensus.md#view-change", "docs/consensus.md#the-simulator"),
)
