"""Membership changes carried by BlockPersisted: who votes, how indices move, what is held."""

from __future__ import annotations

import pytest

from consensus import (
    BlockPersisted,
    Broadcast,
    Commit,
    MessageReceived,
    PersistedState,
    Prepare,
    PrePrepare,
    Replica,
    ReplicaConfig,
    Tick,
    ViewChange,
    commit_digest,
    prepare_digest,
    preprepare_digest,
    viewchange_digest,
)
from consensus.crypto import KeyPair, hash32, verify
from consensus.membership import reindex, remap
from tests.consensus import helpers as t
from tests.consensus.test_replica import executed

KEYS = t.keys(6)  # the universe: sealers are picked from these by key
PUB = [k.public_key for k in KEYS]
H1 = hash32(b"block-1")


def replica(me: int, members: list[int]) -> Replica:
    """Node ``me`` (universe index) with ``members`` (universe indices) sealing at height 1."""
    sealers = [PUB[i] for i in members]
    index = members.index(me) if me in members else None
    cfg = ReplicaConfig(
        index=index,
        sealers=sealers,
        signer=KEYS[me].sign,
        verifier=verify,
        timeout_ticks=10,
        node_key=PUB[me],
    )
    return Replica(cfg)


def persisted(height: int, members: list[int], block_hash: bytes = H1) -> BlockPersisted:
    return BlockPersisted(height, block_hash, sealers=tuple(PUB[i] for i in members))


def signed_prepare(key: KeyPair, sender: int, view: int, p: t.Proposal) -> Prepare:
    bh, sr = t.block_of(p)
    sig = key.sign(prepare_digest(view, p.height, p.digest, bh, sr))
    return Prepare(view, p.height, p.digest, bh, sr, sender, sig)


def signed_commit(key: KeyPair, sender: int, view: int, p: t.Proposal) -> Commit:
    bh, sr = t.block_of(p)
    sig = key.sign(commit_digest(view, p.height, p.digest, bh, sr))
    return Commit(view, p.height, p.digest, bh, sr, sender, sig)


def signed_preprepare(key: KeyPair, sender: int, view: int, p: t.Proposal) -> PrePrepare:
    return PrePrepare(view, p, sender, key.sign(preprepare_digest(view, p.height, p.digest)))


def test_remap_and_reindex_follow_keys() -> None:
    old, new = PUB[:4], [PUB[1], PUB[2], PUB[3], PUB[4]]
    moves = remap(old, new)
    assert moves == {1: 0, 2: 1, 3: 2}
    p = t.proposal(2, parent=H1)
    vote = signed_prepare(KEYS[3], 3, 0, p)
    moved = reindex(vote, moves)
    assert moved is not None and moved.sender == 2 and moved.digest == vote.digest
    assert reindex(signed_prepare(KEYS[0], 0, 0, p), moves) is None  # its key left


def test_an_observer_added_by_a_block_votes_from_the_next_height() -> None:
    r = replica(4, [0, 1, 2, 3])
    assert r.index is None
    out = r.step(persisted(1, [0, 1, 2, 3, 4]))
    assert r.index == 4 and r.sealers[4] == PUB[4]
    assert r.progress().quorum == 4  # n = 5, f = 1
    assert r.counters.membership_changes == 1
    assert any(type(a).__name__ == "PersistState" for a in out)  # its view is now a promise
    # leader of (view 0, height 2) among 5 is index 2 = universe node 2
    p = t.proposal(2, parent=H1)
    r.step(MessageReceived(signed_preprepare(KEYS[2], 2, 0, p)))
    actions = r.step(executed(p))
    prepares = [a.message for a in actions if isinstance(a, Broadcast)]
    assert [type(m) for m in prepares] == [Prepare] and prepares[0].sender == 4


def test_a_removed_sealer_stops_voting_at_the_boundary() -> None:
    r = replica(0, [0, 1, 2, 3])
    assert r.index == 0
    r.step(persisted(1, [1, 2, 3]))
    assert r.index is None and r.status().index is None
    p = t.proposal(2, parent=H1)
    leader = r.leader_of(0, 2)  # among [1, 2, 3]
    r.step(MessageReceived(signed_preprepare(KEYS[[1, 2, 3][leader]], leader, 0, p)))
    actions = r.step(executed(p))
    assert not [a for a in actions if isinstance(a, Broadcast)]  # an observer never signs


def test_votes_for_the_next_height_signed_under_the_new_list_are_held_then_counted() -> None:
    """Sealer 0 is removed by block 1: node 4 joins and everyone renumbers. Votes for
    height 2 that arrive while we are still at height 1 cannot be verified yet."""
    r = replica(1, [0, 1, 2, 3])
    new = [1, 2, 3, 4]
    p = t.proposal(2, parent=H1)
    view = 0
    leader = [1, 2, 3, 4].index(new[(view + 2) % 4])
    # index 2 under the new list is node 3; under the old list index 2 is node 2: fails
    early = [signed_prepare(KEYS[u], new.index(u), view, p) for u in (3, 4)]
    for vote in early:
        r.step(MessageReceived(vote.encode()))
    assert r.counters.held == 2 and r.counters.drops["bad_signature"] == 0
    r.step(persisted(1, new))
    assert r.index == 0
    r.step(MessageReceived(signed_preprepare(KEYS[new[leader]], leader, view, p)))
    out = r.step(executed(p))
    # our Prepare plus the two held ones make 3 = quorum(4): prepared, so we Commit
    assert [type(a.message) for a in out if isinstance(a, Broadcast)] == [Prepare, Commit]


def test_held_messages_for_a_height_that_came_without_a_change_are_dropped() -> None:
    r = replica(1, [0, 1, 2, 3])
    p = t.proposal(2, parent=H1)
    r.step(MessageReceived(signed_prepare(KEYS[5], 2, 0, p).encode()))  # not anyone's
    assert r.counters.held == 1
    r.step(BlockPersisted(1, H1))
    assert r.counters.drops["bad_signature"] == 1


def test_held_messages_are_bounded() -> None:
    cfg_r = replica(1, [0, 1, 2, 3])
    limit = cfg_r.config.max_held_messages
    p = t.proposal(2, parent=H1)
    for view in range(limit + 5):
        vote = signed_prepare(KEYS[5], 2, view % 5, t.proposal(2, payload=bytes([view % 251])))
        cfg_r.step(MessageReceived(vote))
    assert cfg_r.counters.held == limit
    assert cfg_r.counters.drops["buffer_full"] == 5
    del p


def test_buffered_votes_move_with_their_signers_key() -> None:
    """A verified vote for a later height (buffered) whose signer stays but is renumbered
    counts under its new index; one whose signer left is dropped."""
    r = replica(3, [0, 1, 2, 3])
    p3 = t.proposal(3, parent=hash32(b"block-2"))
    kept = signed_commit(KEYS[2], 2, 0, p3)  # node 2 is index 2 now, index 1 after
    gone = signed_commit(KEYS[0], 0, 0, p3)
    r.step(MessageReceived(kept))
    r.step(MessageReceived(gone))
    r.step(BlockPersisted(1, H1))
    r.step(persisted(2, [1, 2, 3], hash32(b"block-2")))
    assert r.index == 2
    assert r.counters.drops["non_sealer"] == 1  # node 0's commit left with its key
    # replayed at height 3 into its round under the new index
    assert [dict(v) for v in r._slot.rounds[0].commits.values()] == [{1: kept.signature}]


def test_view_changes_move_with_their_signers_key() -> None:
    r = replica(1, [0, 1, 2, 3])
    vc = ViewChange(1, 2, None, 3, KEYS[3].sign(viewchange_digest(1, 2, None)))
    r.step(MessageReceived(vc))
    r.step(persisted(1, [1, 2, 3, 4]))
    assert {s: v.sender for s, v in r._vc_latest.items()} == {2: 2}


def test_an_invalid_sealer_list_is_our_bug_and_changes_nothing() -> None:
    r = replica(1, [0, 1, 2, 3])
    for bad in ((), (PUB[0], PUB[0]), (b"short",)):
        with pytest.raises(ValueError):
            r.step(BlockPersisted(1, H1, sealers=bad))
        assert r.height == 1 and r.sealers == tuple(PUB[:4])


def test_a_node_without_a_signer_cannot_be_made_a_sealer() -> None:
    cfg = ReplicaConfig(index=None, sealers=PUB[:4], signer=None, verifier=verify, node_key=PUB[4])
    r = Replica(cfg)
    with pytest.raises(ValueError):
        r.step(persisted(1, [0, 1, 2, 3, 4]))
    assert r.height == 1 and r.index is None


def test_evidence_names_the_key_not_only_the_index() -> None:
    r = replica(1, [0, 1, 2, 3])
    p = t.proposal(1)
    other = t.proposal(1, payload=b"other")
    leader = r.leader_of(0, 1)
    r.step(MessageReceived(signed_preprepare(KEYS[leader], leader, 0, p)))
    r.step(executed(p))
    r.step(MessageReceived(signed_prepare(KEYS[2], 2, 0, p)))
    r.step(MessageReceived(signed_prepare(KEYS[2], 2, 0, other)))
    assert r.evidence and r.evidence[0].sender_key == PUB[2]


def test_a_sealer_demoted_during_a_view_change_stops_waiting_for_a_new_view() -> None:
    """It asked for view 1 and was then removed: as an observer it waits for nothing (a
    stall report would last for ever), and its view does not go back down."""
    r = replica(0, [0, 1, 2, 3])
    for _ in range(10 * 3):  # the timeout fires: view change to 1
        r.step(Tick(txs_pending=True))
    assert r.view == 1 and not r.view_active
    r.step(persisted(1, [1, 2, 3]))
    assert r.index is None and r.view == 1 and r.view_active
    assert not r.status().timer_running


def test_an_observer_restored_in_a_view_above_0_is_not_waiting() -> None:
    cfg = ReplicaConfig(
        index=None, sealers=PUB[:4], signer=KEYS[4].sign, verifier=verify, node_key=PUB[4]
    )
    r = Replica(cfg, restored=PersistedState(5, None, None))
    assert r.view == 5 and r.view_active
    assert r.start() == []


def test_a_re_promoted_sealer_does_not_vote_in_a_view_no_new_view_justified() -> None:
    """Demoted while waiting for NewView(1), then made a sealer again: it waits for that
    NewView (or a later one) before it votes in view 1, like any sealer that left a view."""
    r = replica(0, [0, 1, 2, 3])
    for _ in range(10 * 3):
        r.step(Tick(txs_pending=True))
    r.step(persisted(1, [1, 2, 3]))
    assert r.view_active
    r.step(persisted(2, [1, 2, 3, 0], hash32(b"block-2")))
    assert r.index == 3 and r.view == 1 and not r.view_active
