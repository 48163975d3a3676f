"""Evidence of equivocation and the replica's memory bounds, pinned by deterministic tests."""

from __future__ import annotations

from consensus import (
    BlockPersisted,
    Broadcast,
    MessageReceived,
    Replica,
    RequestSync,
    Tick,
    ViewChange,
)
from consensus.crypto import hash32
from consensus.sim.engine import run_scenario
from consensus.sim.scenario import random_scenario
from tests.consensus import helpers as t
from tests.consensus.test_replica import config


def test_view_change_repeated_from_a_higher_height_is_not_equivocation() -> None:
    # Sealer 0 times out in view 0 at height 1 and asks for view 1. While it waits, block
    # sync brings it to height 2, and its next timeout repeats ViewChange(1) from height 2.
    # That is an honest sealer telling the truth twice, not a conflicting signature: it
    # must not end up in a peer's evidence list (evidence is for blaming Byzantine nodes).
    n = 4
    r0 = Replica(config(n, 0))
    peer = Replica(config(n, 1))
    vcs: list[ViewChange] = []
    for _ in range(60):
        for a in r0.step(Tick()):
            if isinstance(a, Broadcast) and isinstance(a.message, ViewChange):
                vcs.append(a.message)
        if vcs and r0.height == 1:
            r0.step(BlockPersisted(1, hash32(b"block 1 from sync")))
    assert {(vc.view, vc.height) for vc in vcs} == {(1, 1), (1, 2)}
    for vc in vcs:
        peer.step(MessageReceived(vc.encode(), 0))
    assert peer.evidence == [] and peer.counters.equivocations == 0


def test_honest_sealers_are_never_accused_in_the_simulator() -> None:
    # ledgerlab sim --random-seed 849 (4 honest sealers, lossy network) and 109 (n = 7,
    # one double-voter): honest sealers ended up in their peers' evidence lists.
    for seed in (849, 109):
        s = random_scenario(seed)
        sim = run_scenario(s)
        faulty = set(s.faulty_nodes())
        accused = {e.sender for x in sim.nodes if x.replica for e in x.replica.evidence} - faulty
        assert not accused, f"seed {seed}: honest sealers {sorted(accused)} accused"


def test_new_views_for_far_future_heights_are_not_stored() -> None:
    # Once the honest sealers broadcast ViewChange(1), Byzantine sealer 3 can wrap those
    # proofs into a valid NewView(1, H) for every H it leads in view 1 (H = 2, 6, 10, ...),
    # however far ahead. A replica waiting for view 1 stored each one (and forced a sync
    # request each time): unbounded memory from one traitor. The height window applies.
    n = 4
    r = Replica(config(n, 0))
    vcs = [t.view_change(n, i, 1, 1) for i in (0, 1, 2)]
    syncs = 0
    for k in range(300):
        h = 2 + 4 * k
        nv = t.new_view(n, 3, 1, h, vcs, None)
        syncs += sum(isinstance(a, RequestSync) for a in r.step(MessageReceived(nv.encode(), 3)))
    assert r.view == 1
    window = r.config.height_window
    assert len(r._new_views) <= window + 1  # the memory under test
    assert syncs <= window
    assert r.counters.drops["far_future"] > 0


def test_future_proposals_are_buffered_only_up_to_a_byte_budget() -> None:
    # A Byzantine leader may sign a large proposal for every future (height, view) it
    # leads; each one is valid and within the windows, so each would be buffered. The
    # buffer holds at most max_buffered_payload_bytes of proposals; the rest is counted.
    n = 4
    r = Replica(config(n, 0, max_buffered_payload_bytes=2500))
    future = [(h, v) for h in range(2, 8) for v in range(0, 4) if (v + h) % n == 3]
    for h, v in future[:5]:
        p = t.proposal(h, bytes([h]) * 1000, hash32(b"parent %d" % (h - 1)))
        r.step(MessageReceived(t.preprepare(n, 3, v, p).encode(), 3))
    assert r.counters.drops["buffer_full"] == 3
    held = [m for msgs in r._buffer.values() for m in msgs]
    assert len(held) == 2
