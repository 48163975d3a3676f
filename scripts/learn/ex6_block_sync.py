"""Exercise 6: a lagging node catches up by block sync, checking block certificates."""

from __future__ import annotations

from consensus.quorum import quorum
from consensus.sim import CrashSpec, Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, number
from scripts.learn.look import heights

LAGGING = 3


def restart_ms(seed: int) -> float:
    """When node 3 returns: 2500 ms for seed 1; other seeds move it (and the answer)."""
    return (3000.0, 2500.0, 3500.0, 2000.0)[seed % 4]


def scenario(seed: int) -> Scenario:
    return Scenario(
        nodes=4,
        blocks=10,
        seed=seed,
        tx_interval_ms=200,
        crashes=[CrashSpec(LAGGING, 300.0, restart_ms(seed))],
    )


def _lagging(run: Run) -> int:
    return run.main.scenario.crashes[0].node


def look(run: Run) -> list[str]:
    node = _lagging(run)
    out = [f"Node {node}'s life (crash, restart, sync requests, blocks fetched, own commits):"]
    for rec in run.records:
        if rec.get("node") != node:
            continue
        ev = rec["ev"]
        if ev == "crash":
            out.append(f"  {facts.ms(rec['t']):>10}  crashes")
        elif ev == "restart":
            out.append(f"  {facts.ms(rec['t']):>10}  restarts at height {rec['height']}")
        elif ev == "request_sync":
            out.append(
                f"  {facts.ms(rec['t']):>10}  asks to sync to height {rec['target']} "
                f"from {rec['peers']}"
            )
        elif ev == "synced":
            out.append(
                f"  {facts.ms(rec['t']):>10}  SYNCED height {rec['height']} (block "
                f"{rec['block']}, seal verified, re-executed)"
            )
        elif ev == "commit":
            out.append(f"  {facts.ms(rec['t']):>10}  commits height {rec['height']} by voting")
    return [*out, *heights(run.main)]


def question(run: Run) -> str:
    c = run.main.scenario.crashes[0]
    return (
        f"Node {c.node} was down from {c.at_ms:.0f} ms to {c.restart_ms:.0f} ms. Up to which "
        "height did it catch up by block sync (the last block it fetched instead of voting "
        "on it)?"
    )


def answer(run: Run) -> Answer:
    node = _lagging(run)
    c = run.main.scenario.crashes[0]
    got = facts.synced(run.records, node)
    if not got:
        return number(0, [f"node {node} fetched no block by sync in this run"])
    last = max(r["height"] for r in got)
    restart = next(
        (r for r in facts.events_of(run.records, "restart", node)), {"height": "?", "t": 0}
    )
    own = [r for r in facts.commits(run.records) if r["node"] == node and r["t"] > got[-1]["t"]]
    n = run.main.scenario.nodes
    why = [
        f"Node {node} restarted at {c.restart_ms:.0f} ms with height {restart['height']} "
        f"(only its committed blocks and last PersistState survive a crash).",
        f"The status exchange showed peers ahead; it fetched heights "
        f"{', '.join(str(r['height']) for r in got)} and caught up to height {last}.",
        f"It trusts no peer: each block's seal must hold {quorum(n)} valid Commit "
        "signatures of the sealers in force at that height (a quorum: f + 1 honest nodes "
        "persisted it), and it re-executes the block to the same hashes.",
    ]
    if own:
        why.append(
            f"From then on it voted again: its first own commit was height "
            f"{own[0]['height']} at {facts.ms(own[0]['t'])}."
        )
    return number(last, why)


EXERCISE = Exercise(
    number=6,
    title="A lagging node syncs with block certificates",
    intro="Node 3 crashes at 300 ms and restarts at 2500 ms (seed 1), far behind. It learns the "
    "others' height from their status messages and fetches the missing blocks, each one "
    "checked by its seal (the block certificate) before it is applied.",
    commands=lambda seed: [
        "ledgerlab sim --nodes 4 --blocks 10 --tx-interval-ms 200 "
        f"--crash {LAGGING}@300-{restart_ms(seed):.0f} --seed {seed}"
    ],
    scenario=scenario,
    look=look,
    diagram=lambda run: (
        "height",
        max((r["height"] for r in facts.synced(run.records, _lagging(run))), default=1),
    ),
    question=question,
    answer=answer,
    kind="number",
    think="Why is a quorum of Commit signatures the right certificate for sync, and not "
    "the Prepare signatures (see the note in docs/consensus.md, Protocol, step 5)?",
    reading=("docs/node.md#block-sync", "docs/consensus.md#protocol"),
)
