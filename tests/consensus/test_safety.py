"""Safety of the PBFT core under Byzantine leaders, lost messages and restarts: each test pins
a hole that once existed (deterministic, no simulator)."""

from __future__ import annotations

from consensus import (
    Broadcast,
    Commit,
    ExecuteBlock,
    MessageReceived,
    PersistedState,
    PersistState,
    Prepare,
    PrePrepare,
    ProposalReady,
    Replica,
    verify_seal,
)
from consensus.crypto import verify
from consensus.messages import Message, Seal
from tests.consensus import helpers as t
from tests.consensus.lossy_cluster import LossyCluster
from tests.consensus.test_replica import config, executed


def test_prepare_quorum_of_an_abandoned_block_is_not_a_valid_seal() -> None:
    # n = 4, sealer 3 Byzantine. Leader 1 proposes B in view 0; the PrePrepare never
    # reaches 0, so only 1 and 2 sign Prepare(B). Sealer 3 collects both and adds its own:
    # a quorum of Prepare signatures for B, although no honest sealer ever prepared B.
    # The honest three then change view and commit B2 at height 1. A seal must prove that
    # its block was *committed*: otherwise block sync (which checks nothing but
    # verify_seal) accepts B from sealer 3 and forks a syncing node off the chain.
    n = 4
    c = LossyCluster(n, down=(3,))
    c.drop = lambda src, dst, msg: isinstance(msg, PrePrepare) and dst == 0 and msg.view == 0
    c.propose(b"block B")
    pp = next(
        a.message for _, a in c.log if isinstance(a, Broadcast) and a.message.NAME == "PrePrepare"
    )
    assert isinstance(pp, PrePrepare)
    b = pp.proposal
    honest_prepares = [
        a.message
        for j, a in c.log
        if isinstance(a, Broadcast) and isinstance(a.message, Prepare) and a.message.view == 0
    ]
    assert {m.sender for m in honest_prepares} == {1, 2}
    assert all(r.prepared_certificate is None for r in c.replicas[:3])
    c.drop = lambda src, dst, msg: False
    c.tick(11)  # view change to 1: nobody prepared B, so the new leader proposes afresh
    c.propose(b"block B2")
    blocks = {c.chains[i][0].proposal.digest for i in range(3)}
    assert len(blocks) == 1 and b.digest not in blocks  # the honest chain has B2 at height 1
    committed = c.chains[0][0]
    assert verify_seal(
        t.sealers(n), verify, 1, committed.block_hash, committed.state_root, committed.seal
    )
    assert not any(  # no honest sealer ever sent a Commit for B
        isinstance(a, Broadcast)
        and isinstance(a.message, Commit)
        and a.message.proposal_digest == b.digest
        for _, a in c.log
    )

    # Sealer 3's forged "seal" for B: the two honest Prepare signatures plus its own.
    own = t.prepare(n, 3, 0, b)
    sigs = sorted([(m.sender, m.signature) for m in honest_prepares] + [(3, own.signature)])
    fake = Seal(0, b.digest, tuple(sigs))
    bh, sr = t.block_of(b)
    assert not verify_seal(t.sealers(n), verify, 1, bh, sr, fake)


class Runtime:
    """Plays the runtime for one replica: keeps only the latest PersistState, like a disk."""

    def __init__(self, n: int, index: int) -> None:
        self.n, self.index = n, index
        self.stored: PersistedState | None = None
        self.replica = Replica(config(n, index))
        self.sent: list[Message] = []

    def step(self, event: object) -> None:
        for a in self.replica.step(event):  # type: ignore[arg-type]
            self.perform(a)

    def perform(self, a: object) -> None:
        if isinstance(a, PersistState):
            self.stored = a.state
        elif isinstance(a, Broadcast):
            self.sent.append(a.message)
        elif isinstance(a, ExecuteBlock):
            self.step(executed(a.proposal))

    def crash_and_restart(self) -> None:
        """Only the stored PersistState (and the chain, still at genesis) survive."""
        self.replica = Replica(config(self.n, self.index), restored=self.stored)
        for a in self.replica.start():
            self.perform(a)


def test_fresh_replica_that_voted_and_crashed_does_not_vote_twice() -> None:
    # A sealer that has never persisted anything signs Prepare(A) in (view 0, height 1) and
    # crashes before it is prepared. Nothing durable says it voted, so after the restart it
    # must still refuse to sign a Prepare for another proposal B of the same (view, height):
    # otherwise an equivocating leader plus this amnesia gives f + 1 double votes.
    n = 4
    rt = Runtime(n, 0)
    a, b = t.proposal(1, b"a"), t.proposal(1, b"b")
    rt.step(MessageReceived(t.preprepare(n, 1, 0, a).encode(), 1))
    assert any(isinstance(m, Prepare) and m.proposal_digest == a.digest for m in rt.sent)
    rt.crash_and_restart()
    rt.sent.clear()
    rt.step(MessageReceived(t.preprepare(n, 1, 0, b).encode(), 1))
    assert not any(isinstance(m, Prepare) for m in rt.sent), "signed Prepare(B) after Prepare(A)"


def test_fresh_leader_that_proposed_and_crashed_does_not_propose_again() -> None:
    # The same amnesia for the leader: PrePrepare(A), crash before any PersistState, then a
    # second, different PrePrepare for the same (view, height) from an honest node.
    n = 4
    rt = Runtime(n, 1)  # leader of (view 0, height 1)
    rt.step(ProposalReady(b"a"))
    assert [m.NAME for m in rt.sent][:1] == ["PrePrepare"]
    rt.crash_and_restart()
    rt.sent.clear()
    assert not rt.replica.wants_proposal()
    rt.step(ProposalReady(b"b"))
    assert not any(isinstance(m, PrePrepare) for m in rt.sent)
