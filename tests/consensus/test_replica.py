"""The replica state machine on its own: ordering of side effects, hygiene, view change."""

from __future__ import annotations

from collections import deque

import pytest

from consensus import (
    BlockExecuted,
    BlockPersisted,
    Broadcast,
    ChainHead,
    Commit,
    CommitBlock,
    ExecuteBlock,
    MessageReceived,
    NewView,
    PersistedState,
    PersistState,
    Phase,
    Prepare,
    ProposalReady,
    Replica,
    ReplicaConfig,
    RequestSync,
    Send,
    Tick,
    ViewChange,
    verify_seal,
)
from consensus.crypto import hash32, verify
from tests.consensus import helpers as t


def config(n: int, index: int | None, **kw: object) -> ReplicaConfig:
    signer = t.keys(n)[index].sign if index is not None else None
    return ReplicaConfig(
        index=index, sealers=t.sealers(n), signer=signer, verifier=verify, timeout_ticks=10, **kw
    )  # type: ignore[arg-type]


def executed(p: object, ok: bool = True) -> BlockExecuted:
    bh, sr = t.block_of(p)  # type: ignore[arg-type]
    return BlockExecuted(p.height, p.digest, bh, sr, ok)  # type: ignore[attr-defined]


class Cluster:
    """Delivers every action at once, FIFO; ``down`` nodes neither send nor receive."""

    def __init__(self, n: int, down: tuple[int, ...] = ()) -> None:
        self.n = n
        self.replicas = [Replica(config(n, i)) for i in range(n)]
        self.down = set(down)
        self.persisted: dict[int, PersistedState] = {}
        self.chains: dict[int, list[CommitBlock]] = {i: [] for i in range(n)}
        self.queue: deque[tuple[int, object]] = deque()
        self.log: list[tuple[int, object]] = []

    def feed(self, i: int, event: object) -> None:
        self.queue.append((i, event))
        self.run()

    def run(self) -> None:
        while self.queue:
            i, event = self.queue.popleft()
            if i in self.down:
                continue
            for action in self.replicas[i].step(event):  # type: ignore[arg-type]
                self.log.append((i, action))
                self.perform(i, action)

    def perform(self, i: int, action: object) -> None:
        if isinstance(action, Broadcast):
            data = action.message.encode()
            for j in range(self.n):
                if j != i:
                    self.queue.append((j, MessageReceived(data, i)))
        elif isinstance(action, Send):
            self.queue.append((action.to, MessageReceived(action.message.encode(), i)))
        elif isinstance(action, ExecuteBlock):
            self.queue.append((i, executed(action.proposal)))
        elif isinstance(action, PersistState):
            self.persisted[i] = action.state
        elif isinstance(action, CommitBlock):
            self.chains[i].append(action)
            self.queue.append((i, BlockPersisted(action.height, action.block_hash)))

    def propose(self, payload: bytes = b"txs") -> None:
        for i, r in enumerate(self.replicas):
            if i not in self.down and r.wants_proposal():
                self.feed(i, ProposalReady(payload))
                return
        raise AssertionError("nobody wants to propose")

    def tick(self, count: int = 1) -> None:
        for _ in range(count):
            for i in range(self.n):
                self.feed(i, Tick())


def test_single_sealer_commits_alone_in_documented_order() -> None:
    r = Replica(config(1, 0))
    assert r.wants_proposal() and r.is_leader()
    actions = r.step(ProposalReady(b"one tx"))
    assert [type(a) for a in actions] == [ExecuteBlock]
    p = actions[0].proposal  # type: ignore[union-attr]
    actions = r.step(executed(p))
    assert [type(a) for a in actions] == [PersistState, CommitBlock]
    cb = actions[1]
    assert isinstance(cb, CommitBlock)
    assert verify_seal(t.sealers(1), verify, 1, cb.block_hash, cb.state_root, cb.seal)
    assert r.height == 1  # not before the block is durable
    assert r.step(BlockPersisted(1, cb.block_hash)) == []
    assert r.height == 2 and r.head == ChainHead(1, cb.block_hash)


@pytest.mark.parametrize("n", [4, 7])
def test_normal_case_commits_the_same_sealed_block_everywhere(n: int) -> None:
    c = Cluster(n)
    for height in (1, 2, 3):
        c.propose(b"block %d" % height)
        hashes = {c.chains[i][-1].block_hash for i in range(n)}
        assert len(hashes) == 1 and all(len(c.chains[i]) == height for i in range(n))
    for block in c.chains[0]:
        assert verify_seal(
            t.sealers(n), verify, block.height, block.block_hash, block.state_root, block.seal
        )
    assert all(r.view == 0 and r.height == 4 for r in c.replicas)
    assert c.replicas[0].counters.messages_out["Prepare"] == 3


def test_prepared_certificate_is_persisted_before_commit_is_sent() -> None:
    c = Cluster(4)
    c.propose()
    for i in range(4):
        kinds = [
            "persist" if isinstance(a, PersistState) else a.message.NAME
            for j, a in c.log
            if j == i and isinstance(a, PersistState | Broadcast)
        ]
        assert kinds.index("persist") < kinds.index("Commit")
        cert = c.persisted[i].prepared
        assert cert is not None and cert.height == 1


def test_invalid_proposal_gets_no_vote() -> None:
    n = 4
    r = Replica(config(n, 0))
    p = t.proposal(1, b"bad txs", bytes(32))
    actions = r.step(MessageReceived(t.preprepare(n, 1, 0, p).encode(), 1))
    assert [type(a) for a in actions] == [ExecuteBlock]
    assert r.step(executed(p, ok=False)) == []
    assert r.counters.drops["invalid_proposal"] == 1


def feed(r: Replica, msg: object) -> list[object]:
    return r.step(MessageReceived(msg.encode(), 9))  # type: ignore[attr-defined]


def test_hygiene_drops_are_counted_by_reason() -> None:
    n = 4
    r = Replica(config(n, 0))
    p = t.proposal(1)
    good = t.prepare(n, 2, 0, p)
    forged = Prepare(
        good.view,
        good.height,
        good.proposal_digest,
        good.block_hash,
        good.state_root,
        3,
        good.signature,
    )  # signed by 2, claims to be 3
    cases = [
        (b"\x00garbage", "malformed"),
        (Prepare(0, 1, p.digest, bytes(32), bytes(32), 7, good.signature), "non_sealer"),
        (t.prepare(n, 0, 0, p), "own_index"),
        (forged, "bad_signature"),
        (t.prepare(n, 2, 0, t.proposal(60)), "far_future"),
        (t.prepare(n, 2, 11, p), "far_future"),
        (t.preprepare(n, 2, 0, p), "not_leader"),
        (t.preprepare(n, 1, 0, t.proposal(1, b"x", hash32(b"other"))), "bad_parent"),
    ]
    for msg, reason in cases:
        before = r.counters.drops[reason]
        r.step(MessageReceived(msg if isinstance(msg, bytes) else msg.encode(), 9))
        assert r.counters.drops[reason] == before + 1, reason
    feed(r, good)
    feed(r, good)
    assert r.counters.drops["duplicate"] == 1
    assert r.evidence == []


def test_conflicting_votes_are_recorded_as_evidence() -> None:
    n = 4
    r = Replica(config(n, 0))
    a, b = t.proposal(1, b"a"), t.proposal(1, b"b")
    feed(r, t.prepare(n, 2, 0, a))
    feed(r, t.prepare(n, 2, 0, b))
    feed(r, t.preprepare(n, 1, 0, a))
    feed(r, t.preprepare(n, 1, 0, b))
    assert r.counters.drops["equivocation"] == 2 and r.counters.equivocations == 2
    assert [(e.sender, e.kind) for e in r.evidence] == [(2, "Prepare"), (1, "PrePrepare")]
    assert r.evidence[0].first.digest != r.evidence[0].second.digest


def test_stale_messages_after_commit_are_dropped() -> None:
    c = Cluster(4)
    c.propose()
    r = c.replicas[0]
    before = r.counters.drops["stale"]
    feed(r, t.prepare(4, 2, 0, t.proposal(1)))
    assert r.counters.drops["stale"] == before + 1


def test_lagging_replica_requests_sync() -> None:
    n = 4
    r = Replica(config(n, 0))
    actions = feed(r, t.prepare(n, 2, 0, t.proposal(5)))
    assert actions == [RequestSync(4, (2,))]
    # rate-limited: another claim right away does not repeat the request
    assert feed(r, t.prepare(n, 3, 0, t.proposal(6))) == []


def test_idle_chain_never_changes_view() -> None:
    r = Replica(config(4, 0))
    for _ in range(1000):
        assert r.step(Tick(txs_pending=False)) == []
    assert r.view == 0 and r.status().idle


def test_silent_leader_is_replaced_by_view_change() -> None:
    c = Cluster(4, down=(1,))  # leader of height 1 in view 0
    c.tick(11)  # the timer fires on every live replica
    kinds = [a for _, a in c.log if isinstance(a, PersistState | Broadcast)]
    first_vc = next(
        k
        for k, a in enumerate(kinds)
        if isinstance(a, Broadcast) and isinstance(a.message, ViewChange)
    )
    assert isinstance(kinds[first_vc - 1], PersistState)  # view persisted before announcing
    assert all(c.replicas[i].view == 1 and c.replicas[i].view_active for i in (0, 2, 3))
    assert any(isinstance(a, Broadcast) and isinstance(a.message, NewView) for _, a in c.log)
    c.propose()
    assert all(len(c.chains[i]) == 1 for i in (0, 2, 3))
    assert c.chains[0][0].seal.view == 1


def test_new_view_re_proposes_a_block_prepared_in_the_old_view() -> None:
    n = 4
    c = Cluster(n)
    # stop Commits from reaching anyone: everyone prepares block A in view 0, nobody commits
    orig = c.perform

    def no_commits(i: int, action: object) -> None:
        if isinstance(action, Broadcast) and isinstance(action.message, Commit):
            return
        orig(i, action)

    c.perform = no_commits  # type: ignore[method-assign]
    c.propose(b"block A")
    assert all(r.prepared_certificate is not None for r in c.replicas)
    digest_a = c.replicas[0].prepared_certificate.proposal.digest  # type: ignore[union-attr]
    c.perform = orig  # type: ignore[method-assign]
    c.tick(11)
    assert all(len(c.chains[i]) == 1 for i in range(n))
    assert {c.chains[i][0].proposal.digest for i in range(n)} == {digest_a}
    assert c.chains[0][0].seal.view == 1


def test_new_view_that_drops_a_prepared_block_is_rejected() -> None:
    n = 4
    p = t.proposal(1, b"prepared")
    cert = t.certificate(n, 0, p, [0, 1, 2])
    vcs = [t.view_change(n, 0, 1, 1, cert), t.view_change(n, 1, 1, 1), t.view_change(n, 3, 1, 1)]
    leader = (1 + 1) % n  # leader of view 1, height 1 = 2
    r = Replica(config(n, 3))
    feed(r, t.new_view(n, leader, 1, 1, vcs, None))  # hides the certificate
    assert r.counters.drops["invalid_new_view"] == 1 and r.view == 0
    feed(r, t.new_view(n, leader, 1, 1, vcs, t.proposal(1, b"other")))
    assert r.counters.drops["invalid_new_view"] == 2
    actions = feed(r, t.new_view(n, leader, 1, 1, vcs, p))
    assert r.view == 1 and r.view_active
    assert isinstance(actions[0], PersistState) and actions[0].state.view == 1
    assert any(isinstance(a, ExecuteBlock) and a.proposal == p for a in actions)
    # too few proofs
    r2 = Replica(config(n, 3))
    feed(r2, t.new_view(n, leader, 1, 1, vcs[:2], p))
    assert r2.counters.drops["invalid_new_view"] == 1


def test_f_plus_one_view_changes_make_a_replica_join() -> None:
    n = 4
    r = Replica(config(n, 0))
    assert feed(r, t.view_change(n, 1, 3, 1)) == []
    actions = feed(r, t.view_change(n, 2, 5, 1))
    assert r.view == 3  # the lowest view among the f + 1 highest
    assert isinstance(actions[0], PersistState)
    assert isinstance(actions[1], Broadcast) and isinstance(actions[1].message, ViewChange)


def test_restarted_replica_does_not_sign_a_different_prepare_in_its_restored_view() -> None:
    n = 4
    a, b = t.proposal(1, b"a"), t.proposal(1, b"b")
    # before the crash it may have voted for a; after restart, b arrives in view 0
    r = Replica(config(n, 0), restored=PersistedState(0, None))
    feed(r, t.preprepare(n, 1, 0, b))
    assert r.step(executed(b)) == []  # abstains
    # with a certificate for b it may (re)vote for b
    cert = t.certificate(n, 0, b, [1, 2, 3])
    r2 = Replica(config(n, 0), restored=PersistedState(0, cert))
    feed(r2, t.preprepare(n, 1, 0, b))
    out = r2.step(executed(b))
    assert any(isinstance(x, Broadcast) and isinstance(x.message, Prepare) for x in out)
    del a


def test_the_first_signature_in_each_slot_is_made_durable_before_it_leaves() -> None:
    n = 4
    r = Replica(config(n, 0))
    b = t.proposal(1, b"b")
    feed(r, t.preprepare(n, 1, 0, b))
    out = r.step(executed(b))
    kinds = [type(getattr(x, "message", x)).__name__ for x in out]
    assert kinds[:2] == ["PersistState", "Prepare"]
    state = out[0].state  # type: ignore[union-attr]
    assert state.signed == (0, 1)
    assert PersistedState.decode(state.encode()) == state
    # restarted from that state, it abstains for a different proposal in that very slot
    r2 = Replica(config(n, 0), restored=state)
    c = t.proposal(1, b"c")
    feed(r2, t.preprepare(n, 1, 0, c))
    assert r2.step(executed(c)) == []


def test_a_restart_in_a_slot_it_never_signed_in_votes_and_proposes_at_once() -> None:
    n = 4
    # It signed at height 5 (view 0), committed it, and restarted at height 6: it can
    # not have signed anything at (0, 6), so it votes there without waiting for a view.
    head = ChainHead(5, hash32(b"h"))
    state = PersistedState(0, None, signed=(0, 5))
    r = Replica(config(n, 1), restored=state, head=head)
    b = t.proposal(6, b"b", parent=head.block_hash)
    feed(r, t.preprepare(n, 2, 0, b))
    out = r.step(executed(b))
    assert any(isinstance(x, Broadcast) and isinstance(x.message, Prepare) for x in out)
    # the leader of (0, 6) proposes at once too (leader_of(0, 6) with n = 4 is 2)
    leader = Replica(config(n, 2), restored=state, head=head)
    assert leader.wants_proposal()
    # state from the previous version (no signed slot) stays conservative
    old = Replica(config(n, 2), restored=PersistedState(0, None), head=head)
    assert not old.wants_proposal()


def test_restored_view_is_kept_and_announced() -> None:
    n = 4
    assert Replica(config(n, 2)).phase is Phase.ACTIVE
    r = Replica(config(n, 2), restored=PersistedState(3, None), head=ChainHead(5, hash32(b"h")))
    assert r.view == 3 and not r.view_active and r.height == 6
    assert r.phase is Phase.AWAITING_NEW_VIEW
    assert r.step(Tick()) == [], "nothing is announced before start()"
    actions = r.start()
    assert isinstance(actions[0], Broadcast) and isinstance(actions[0].message, ViewChange)
    assert actions[0].message.view == 3 and actions[0].message.height == 6
    # a peer that already runs view 3 answers with its NewView, which activates us
    feed(r, t.prepare(n, 1, 0, t.proposal(6)))
    assert r.counters.drops["stale"] == 1


def test_observer_follows_without_signing() -> None:
    n = 4
    c = Cluster(n)
    obs = Replica(config(n, None))
    c.propose()
    out = []
    for j, action in c.log:
        if isinstance(action, Broadcast):
            out += obs.step(MessageReceived(action.message.encode(), j))
    assert all(isinstance(a, ExecuteBlock) for a in out)
    p = out[0].proposal  # type: ignore[union-attr]
    final = obs.step(executed(p))
    assert [type(a) for a in final] == [CommitBlock]
    assert not obs.wants_proposal()


def test_misuse_raises() -> None:
    r = Replica(config(1, 0))
    with pytest.raises(ValueError):
        r.step(ProposalReady(b""))
    with pytest.raises(TypeError):
        r.step("tick")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ReplicaConfig(index=0, sealers=t.sealers(4), signer=None, verifier=verify)
    with pytest.raises(ValueError):
        ReplicaConfig(index=4, sealers=t.sealers(4), signer=t.keys(4)[0].sign, verifier=verify)


def test_new_view_for_a_higher_height_does_not_let_a_lagging_replica_vote() -> None:
    # A NewView for height 3 says nothing about heights 1 and 2: a replica still at height
    # 1 must catch up by sync, not accept a fresh proposal for height 1 in the new view.
    n = 4
    vcs = [t.view_change(n, i, 1, 3) for i in (0, 1, 2)]
    leader = (1 + 3) % n
    r = Replica(config(n, 3))
    actions = feed(r, t.new_view(n, leader, 1, 3, vcs, None))
    assert r.view == 1 and not r.view_active
    assert any(isinstance(a, RequestSync) and a.target_height >= 2 for a in actions)
    p = t.proposal(1, b"rewrite history")
    out = feed(r, t.preprepare(n, (1 + 1) % n, 1, p))
    assert not any(isinstance(a, ExecuteBlock | Broadcast) for a in out)


def test_new_view_with_a_forged_certificate_is_rejected() -> None:
    n = 4
    p = t.proposal(1, b"forged")
    cert = t.certificate(n, 0, p, [0, 1, 2])
    bad_sigs = tuple((i, bytes(65)) for i, _ in cert.signatures)
    forged = type(cert)(cert.view, cert.proposal, cert.block_hash, cert.state_root, bad_sigs)
    vcs = [t.view_change(n, 0, 1, 1, forged), t.view_change(n, 1, 1, 1), t.view_change(n, 3, 1, 1)]
    r = Replica(config(n, 3))
    feed(r, t.new_view(n, (1 + 1) % n, 1, 1, vcs, p))
    assert r.counters.drops["invalid_new_view"] == 1 and r.view == 0
