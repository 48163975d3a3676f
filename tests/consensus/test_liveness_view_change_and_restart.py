"""Liveness through view changes and restarts: each test pins a hole that once existed."""

from __future__ import annotations

from consensus import (
    Broadcast,
    ExecuteBlock,
    MessageReceived,
    NewView,
    PeerConnected,
    PersistedState,
    Prepare,
    Replica,
    Send,
    Tick,
    ViewChange,
)
from consensus.codec import DecodeError
from consensus.messages import PreparedCertificate, decode_message
from consensus.sim.engine import run_scenario
from consensus.sim.scenario import random_scenario
from tests.consensus import helpers as t
from tests.consensus.lossy_cluster import LossyCluster
from tests.consensus.test_replica import config, executed


def _messages(actions: list[object]) -> list[object]:
    return [a.message for a in actions if isinstance(a, Broadcast | Send)]  # type: ignore[union-attr]


def test_restart_while_prepared_in_the_current_view_sends_only_well_formed_messages() -> None:
    # A sealer prepared block P in view 1 (so it persisted (view 1, certificate of view 1))
    # and crashed before the block was durable. Restarted, it must not announce a
    # ViewChange(1) carrying a view-1 certificate: every peer rejects that as malformed,
    # so nobody answers and the sealer cannot rejoin view 1.
    n = 4
    p = t.proposal(1, b"P")
    cert = t.certificate(n, 1, p, [0, 1, 2])
    r0 = Replica(config(n, 0), restored=PersistedState(1, cert))
    out = _messages(r0.start() + r0.step(Tick()))
    for m in out:
        try:
            decode_message(m.encode())  # type: ignore[attr-defined]
        except DecodeError as exc:
            raise AssertionError(f"restarted replica sent a malformed message: {exc}") from None

    # A peer active in view 1 answers; the restarted sealer gets back into view 1 and votes
    # for the proposal it had prepared (the only Prepare the amnesia rule allows there).
    leader = (1 + 1) % n
    vcs = [t.view_change(n, i, 1, 1) for i in (1, 2, 3)]
    peer = Replica(config(n, 3))
    peer.step(MessageReceived(t.new_view(n, leader, 1, 1, vcs, None).encode(), leader))
    assert peer.view == 1 and peer.view_active
    replies: list[object] = []
    for m in out:
        replies += _messages(peer.step(MessageReceived(m.encode(), 0)))  # type: ignore[attr-defined]
    for m in replies:
        r0.step(MessageReceived(m.encode(), 3))  # type: ignore[attr-defined]
    actions = r0.step(MessageReceived(t.preprepare(n, leader, 1, p).encode(), leader))
    actions += r0.step(executed(p)) if any(isinstance(a, ExecuteBlock) for a in actions) else []
    assert r0.view == 1 and r0.view_active
    assert any(isinstance(m, Prepare) and m.view == 1 for m in _messages(actions))


def test_no_malformed_messages_from_an_honest_restarted_sealer_seed_367() -> None:
    # ledgerlab sim --random-seed 367: four honest sealers, node 0 crashes and restarts in
    # view > 0 while prepared there; its peers counted its ViewChanges as malformed.
    s = random_scenario(367)
    assert not s.byzantine
    sim = run_scenario(s)
    malformed = sum(x.replica.counters.drops["malformed"] for x in sim.nodes if x.replica)
    assert malformed == 0


def test_replica_that_missed_the_new_view_gets_it_by_resending_its_view_change() -> None:
    # Leader 1 of height 1 is down; 0, 2, 3 move to view 1 and 2 sends NewView, which 0
    # loses. Half-way to its timeout 0 re-sends its ViewChange; the docs promise that peers
    # who have moved on answer with their NewView, so one lost message does not cost a
    # view. 2 and 3 need 0 to commit anything (quorum 3 of 4).
    n = 4
    c = LossyCluster(n, down=(1,))
    c.drop = lambda src, dst, msg: isinstance(msg, NewView) and dst == 0
    c.tick(11)
    assert [c.replicas[i].view for i in (0, 2, 3)] == [1, 1, 1]
    assert c.replicas[2].view_active and c.replicas[3].view_active
    assert not c.replicas[0].view_active
    c.drop = lambda src, dst, msg: False
    c.tick(8)  # past the half-way resend (timeout 15 ticks in view 1), before the timeout
    assert c.replicas[0].view == 1 and c.replicas[0].view_active
    c.propose(b"after the lost NewView")
    assert all(len(c.chains[i]) == 1 for i in (0, 2, 3))
    assert all(c.replicas[i].view == 1 for i in (0, 2, 3))


def test_forged_copy_of_a_known_certificate_cannot_poison_every_new_view() -> None:
    # Sealer 3 (Byzantine) sends ViewChange(1) carrying an exact copy of an honest prepared
    # certificate's content with garbage signatures. The leader had just verified the
    # honest copy and cached it by content digest (which does not cover the signatures),
    # so it accepts the forgery and ships it inside its NewView; every other replica checks
    # the signatures, rejects the whole NewView, and the view is lost. Repeated in every
    # view (the certificate is carried forward), this stalls the chain with one traitor.
    n = 4
    p = t.proposal(1, b"prepared in view 0")
    good = t.certificate(n, 0, p, [0, 1, 2])
    bogus = PreparedCertificate(
        good.view,
        good.proposal,
        good.block_hash,
        good.state_root,
        tuple((i, bytes(65)) for i, _ in good.signatures),
    )
    assert bogus.digest == good.digest
    vc0 = t.view_change(n, 0, 1, 1, good)
    vc1 = t.view_change(n, 1, 1, 1)
    vc3 = t.view_change(n, 3, 1, 1, bogus)  # validly signed by 3: it signs the cert digest only
    leader = Replica(config(n, 2))  # leader of (view 1, height 1)
    follower = Replica(config(n, 1))
    sent: list[object] = []
    for vc in (vc0, vc3, vc1):
        sent += _messages(leader.step(MessageReceived(vc.encode(), vc.sender)))
    for vc in (vc0, vc3):
        follower.step(MessageReceived(vc.encode(), vc.sender))
    nvs = [m for m in sent if isinstance(m, NewView)]
    assert nvs, "the leader sent no NewView although it holds a quorum of valid ViewChanges"
    for m in sent:
        if isinstance(m, ViewChange | NewView):
            follower.step(MessageReceived(m.encode(), 2))
    assert follower.counters.drops["invalid_new_view"] == 0
    assert follower.view == 1 and follower.view_active


def test_a_sealer_restarted_twice_in_one_view_is_shown_the_way_again() -> None:
    # ledgerlab chaos on real processes: on an idle chain, a sealer restarted twice in
    # view 1 waited for good. Its second ViewChange(1) is the same bytes as the first (the
    # signature is deterministic) and peers answered only the first, so it never got
    # back into view 1: it could not vote there, and a height that needed its vote (it
    # led, or one other sealer was down) paid a view change.
    n = 4
    leader = (1 + 1) % n
    vcs = [t.view_change(n, i, 1, 1) for i in (1, 2, 3)]
    peer = Replica(config(n, 3))
    peer.step(MessageReceived(t.new_view(n, leader, 1, 1, vcs, None).encode(), leader))
    assert peer.view == 1 and peer.view_active

    def restart_and_ask() -> tuple[Replica, list[object]]:
        r0 = Replica(config(n, 0), restored=PersistedState(1, None))
        asked = [m for m in _messages(r0.start()) if isinstance(m, ViewChange)]
        assert asked, "a sealer restored in view 1 asks for it"
        answers: list[object] = []
        for m in asked:
            answers += _messages(peer.step(MessageReceived(m.encode(), 0)))  # type: ignore[attr-defined]
        return r0, answers

    _, answers = restart_and_ask()
    assert any(isinstance(m, NewView) for m in answers)
    # Asked again at once (a flood of the same ViewChange): not answered again.
    _, again = restart_and_ask()
    assert not any(isinstance(m, NewView) for m in again)
    # The second restart, once time has passed: answered, and the sealer is back in view 1.
    for _ in range(10):  # timeout_ticks = 10: past a quarter of any view's timeout
        peer.step(Tick())
    second, answers = restart_and_ask()
    replies = [m for m in answers if isinstance(m, NewView)]
    assert replies
    for m in replies:
        second.step(MessageReceived(m.encode(), 3))
    assert second.view == 1 and second.view_active


def test_a_sealer_that_connects_late_gets_the_view_change_it_missed() -> None:
    # Found on real processes: a chain restarted all at once in view 1 stalled for half a
    # timeout (a minute at consensus_timeout 120 s). Each sealer restored in view 1 sent
    # its ViewChange at start, before any link was up, so the leader of view 1, which had
    # been down for that view change and came back in view 0, heard none until the re-send.
    n = 4
    r0 = Replica(config(n, 0), restored=PersistedState(1, None))
    started = [m for m in _messages(r0.start()) if isinstance(m, ViewChange)]
    assert len(started) == 1 and not r0.view_active
    for peer in (1, 2, 3):  # each link that comes up gets the same ViewChange, to that peer
        (action,) = r0.step(PeerConnected(peer))
        assert isinstance(action, Send) and action.to == peer and action.message == started[0]
    assert r0.step(PeerConnected(0)) == [] and r0.step(PeerConnected(9)) == []

    # A sealer behind in view 0 joins once f + 1 of them reach it ...
    behind = Replica(config(n, 2))
    for i in (0, 1):
        vc = Replica(config(n, i), restored=PersistedState(1, None))
        (m,) = [x for x in _messages(vc.start()) if isinstance(x, ViewChange)]
        behind.step(MessageReceived(m.encode(), i))
    assert behind.view == 1

    # ... and a replica active in its view sends nothing when a link comes up.
    leader = (1 + 1) % n
    vcs = [t.view_change(n, i, 1, 1) for i in (1, 2, 3)]
    active = Replica(config(n, 3))
    active.step(MessageReceived(t.new_view(n, leader, 1, 1, vcs, None).encode(), leader))
    assert active.view_active and active.step(PeerConnected(0)) == []
