"""Byzantine test modes of a real node: FOR TESTING ONLY (docs/node.md, Byzantine test modes).

A node started with ``[testing] byzantine = "B"`` in its config.toml (or ``python -m node
--byzantine B``) runs an honest replica, but what it sends to its peers goes through
:class:`Byzantine`, an adapter over the simulator's behaviours (:mod:`consensus.byzantine`):
``silent``, ``withhold``, ``bad-signature``, ``equivocate``, ``double-vote``, ``spam``. The
node's own state, storage, block sync, gossip and RPC stay honest; only consensus traffic
(the replica's Send and Broadcast actions) is transformed, plus the junk frames of
``spam``. Twins (two processes with one key) need no behaviour: see :func:`twin_config`.

What the runtime adds to the shared behaviours:

* Targets are node ids: a Broadcast goes to every connected peer (sorted, one frame each),
  a Send to its sealer.
* ``equivocate``'s other proposal is a *valid* one (:func:`alternative_proposal`: the same
  transactions in reverse order, stamped 1 ms later), so the half of the peers that get it
  can execute and vote for it; one peer of that half also gets the replica's version, so
  an honest node holds the proof (``replica.evidence``).
* ``spam`` bursts (every 50-400 ms) go to every peer as consensus frames; the garbage
  of each burst also goes out as a raw frame that is not even a node message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from consensus import Broadcast, Send
from consensus import byzantine as behaviours
from consensus.messages import Proposal
from node.ledger.chain import ProposalBody
from node.runtime import wire
from node.runtime.config import NodeConfig

if TYPE_CHECKING:
    from consensus import Replica
    from consensus.crypto import KeyPair
    from node.runtime.tracing import NodeTracer
    from node.transport import Transport

BEHAVIOURS = behaviours.BEHAVIOURS
EQUIVOCATION_OVERLAP = 1
"""Peers of the second half that get both PrePrepares (so one honest node can prove it)."""


class ByzantineHost(Protocol):
    """What the adapter reads of its node (``Node`` satisfies it)."""

    key: KeyPair
    index: int | None
    sealer_ids: list[str]
    transport: Transport
    replica: Replica
    tracer: NodeTracer | None


def alternative_proposal(proposal: Proposal) -> Proposal:
    """Another valid proposal for ``proposal``'s height and parent: the same transactions
    in reverse order, stamped one millisecond later (so it differs even with one tx)."""
    body = ProposalBody.decode(proposal.payload)
    other = ProposalBody(body.timestamp + 1, body.proposer, tuple(reversed(body.tx_hashes)))
    return Proposal(proposal.height, proposal.parent_hash, other.encode())


class Byzantine:
    """One node's outgoing consensus traffic under ``behaviour``; see the module docstring.

    ``stats`` counts what it did: ``frames`` sent, of which ``tampered`` differ from what
    the replica asked for; ``suppressed`` messages that reached nobody although peers were
    connected (silent, withhold); ``spam`` junk frames.
    """

    def __init__(self, behaviour: str, host: ByzantineHost, *, seed: int | None = None) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown Byzantine behaviour {behaviour!r}")
        self.behaviour = behaviour
        self.host = host
        self.rng = random.Random(seed if seed is not None else host.key.public_key)
        self.stats: Counter[str] = Counter()

    @classmethod
    def of(cls, config: NodeConfig, host: ByzantineHost) -> Byzantine | None:
        """The adapter ``config`` asks for, or None for an honest node."""
        if config.byzantine is None:
            return None
        return cls(config.byzantine, host, seed=config.byzantine_seed)

    def send(self, action: Send | Broadcast) -> None:
        """Perform ``action`` the Byzantine way (instead of the honest broadcast/send)."""
        host = self.host
        msg = action.message
        if isinstance(action, Send):
            if not 0 <= action.to < len(host.sealer_ids):
                return
            targets = [host.sealer_ids[action.to]]
        else:
            targets = sorted(host.transport.peers())
        me = host.index
        forge_as = [i for i in range(len(host.sealer_ids)) if i != me]
        honest = msg.encode()
        sent = 0
        tracer = host.tracer
        traced: list[tuple[str, bytes]] = []
        for peer, data, _kind in behaviours.outgoing(
            self.behaviour,
            msg,
            targets,
            signer=host.key.sign,
            rng=self.rng,
            forge_as=forge_as,
            alternative=alternative_proposal,
            both=EQUIVOCATION_OVERLAP,
        ):
            host.transport.send(peer, wire.encode(wire.Consensus(data)))
            if tracer is not None:
                traced.append((peer, data))
            sent += 1
            if data != honest:
                self.stats["tampered"] += 1
        self.stats["frames"] += sent
        if tracer is not None:
            tracer.byzantine(self.behaviour, msg, traced, targets)
        if not sent and targets:
            self.stats["suppressed"] += 1

    def loops(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Extra long-lived loops the node runs under its supervisor."""
        return [("spam", self._spam_loop)] if self.behaviour == "spam" else []

    async def _spam_loop(self) -> None:
        host = self.host
        while True:
            await asyncio.sleep(behaviours.spam_interval_ms(self.rng) / 1000)
            me = host.index
            if me is None:
                continue
            r = host.replica
            for data, kind in behaviours.spam_burst(r.height, r.view, me, host.key.sign, self.rng):
                host.transport.broadcast(wire.encode(wire.Consensus(data)))
                self.stats["spam"] += 1
                if kind == "garbage":
                    host.transport.broadcast(data)  # not even a node frame
                    self.stats["spam"] += 1

    def status(self) -> dict[str, object]:
        return {"behaviour": self.behaviour, **self.stats}


def twin_config(
    original: NodeConfig,
    home: Path,
    *,
    p2p_listen: str,
    rpc_listen: str,
    peers: tuple[str, ...],
    refuse: tuple[str, ...],
    name: str | None = None,
) -> NodeConfig:
    """A Twin of ``original``: FOR TESTING ONLY. The same consensus key and certificate
    (its ``conf`` folder, by absolute path), its own folder ``home`` (data, log), listen
    addresses, the peer addresses it dials, and ``refuse``: node ids (hex) of the peers
    it must not talk to, added to its blacklist.

    Why the blacklist: the TCP transport keeps one connection per node id, and when a
    second connection with a new boot nonce claims the same id the newest wins (that is
    how a restarted peer is let back in). An honest node that dials the original's
    address while the other twin dials it would flip between the twins. Each twin refuses
    the other's peers, so every honest node talks to exactly one of them, steadily; an
    honest node's dials to the twin that refuses it fail ("you are blacklisted").
    """
    genesis = original.path(original.genesis).resolve()
    conf = original.path(original.conf_dir).resolve()
    return dataclasses.replace(
        original,
        home=home,
        name=name or f"{original.name}-twin",
        genesis=genesis,
        conf_dir=conf,
        data_dir=Path("data"),
        log_file=Path("log/node.log"),
        p2p_listen=p2p_listen,
        rpc_listen=rpc_listen,
        peers=tuple(peers),
        blacklist=tuple(dict.fromkeys((*original.blacklist, *refuse))),
    )


__all__ = ["BEHAVIOURS", "Byzantine", "alternative_proposal", "twin_config"]
