"""Hostile clients beside the honest workload (``ledgerlab chaos --hostile``).

Every few seconds, in turn, one of:

* **nonce_race**: two transactions with one nonce and different bodies, sent at the
  same moment to two different nodes (issue 9's second halt). At most one may commit;
  the chain must go on committing.
* **poison**: inputs that must be refused with a typed error and never reach a block:
  a ``userAdd`` whose 256-character name is 768 UTF-8 bytes (issue 9's first halt), 17
  arguments, a transaction over 8 KiB, random bytes, an impossible signature (``v`` = 9),
  another chain id, a block limit of 0 and one 5,000 blocks ahead (outside every node's
  ``(head, head + 1000]``, however far behind or ahead it is).
* **replay**: the exact bytes of transactions the honest workload already saw
  committed, sent again to random nodes while blocks commit. None may commit twice.
* **flood**: a burst of valid transactions, 2.5 times the pool capacity, at one node.
  The pool must refuse the excess with TxPoolIsFull and keep its memory bounded (the
  node's resident set is read from /proc before and after); what it admitted commits.

What each kind sent and how the nodes answered (by reason) goes in the report; the
checker (``scripts/chaos/checker.py``, the *hostile* checks) reads the hashes kept in
:class:`HostileEvidence` against the final chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.codec import pack
from consensus.crypto import KeyPair, hash32
from node.ledger.tx import MAX_ARG_BYTES, MAX_TX_SIZE
from node.rpc.client import DAG_TRANSFER, AsyncRpcClient, RpcError, RpcTransportError

KINDS = ("nonce_race", "poison", "replay", "flood")
POOL_CAPACITY = 1_000
"""Every node's txpool capacity in a ``--hostile`` run, so that a burst can fill it."""
MAX_FLOOD_CAPACITY = 10_000
"""``--dir``: a chain whose pools hold more is not flooded (bursts would be too long)."""
FLOOD_FACTOR = 2.5
INTERVAL = 3.0  # seconds between two hostile actions
FLOOD_EVERY = 6  # one action in this many is a flood
REPLAYS = 12
RACES = 3
BLOCK_LIMIT_MARGIN = 500


@dataclass(slots=True)
class HostileEvidence:
    """The hashes the checks look for in the final chain ("0x" hex)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    pills: dict[str, str] = field(default_factory=dict)  # hash -> pill name
    pill_answers: dict[str, str] = field(default_factory=dict)  # hash -> "ack" or reason
    replays: list[str] = field(default_factory=list)
    bursts: list[dict[str, Any]] = field(default_factory=list)


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


class HostileClient:
    """Runs the hostile actions of the module docstring until told to stop."""

    def __init__(
        self,
        *,
        chain_id: str,
        group_id: str,
        targets: Callable[[], Sequence[int]],
        address: Callable[[int], tuple[str, int]],
        head: Callable[[], int],
        committed: Callable[[], list[bytes]],
        pid_of: Callable[[int], int | None],
        seed: int,
        capacity: int | None = POOL_CAPACITY,
    ) -> None:
        """``capacity``: the nodes' txpool capacity; None: too large to flood (no floods)."""
        self.chain_id, self.group_id = chain_id, group_id
        self.targets, self.address, self.head = targets, address, head
        self.committed, self.pid_of = committed, pid_of
        self.rng = random.Random(f"hostile-{seed}")
        self.key = KeyPair.generate(self.rng)
        self.capacity = capacity
        self.evidence = HostileEvidence()
        self.sent: Counter[str] = Counter()
        self.answers: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
        self.errors: Counter[str] = Counter()
        self._turn = 0

    # -- building -----------------------------------------------------------------------

    def _raw(
        self,
        method: str,
        args: list[Any],
        *,
        nonce: str | None = None,
        block_limit: int | None = None,
        chain_id: str | None = None,
    ) -> bytes:
        """Signed bytes built as docs/wire-format.md says, with no client-side checks."""
        body = pack(
            [
                0,
                self.chain_id if chain_id is None else chain_id,
                self.group_id,
                nonce or secrets.token_hex(16),
                self.head() + BLOCK_LIMIT_MARGIN if block_limit is None else block_limit,
                DAG_TRANSFER,
                method,
                args,
            ]
        )
        return b"\x99" + body[1:] + b"\xc4\x41" + self.key.sign(hash32(body))

    def _pills(self) -> dict[str, bytes]:
        save = ["h-pill", _u256(1)]
        valid = self._raw("userSave", save)
        return {
            "long_name": self._raw("userAdd", ["€" * MAX_ARG_BYTES, _u256(1)]),
            "too_many_args": self._raw("userSave", ["h-pill"] * 17),
            "oversize": self._raw("userAdd", ["h-" + "x" * 200, _u256(1)]) + b"\0" * MAX_TX_SIZE,
            "garbage": self.rng.randbytes(200),
            "bad_signature": valid[:-1] + b"\x09",
            "other_chain": self._raw("userSave", save, chain_id="not-this-chain"),
            "expired": self._raw("userSave", save, block_limit=0),
            "beyond_window": self._raw("userSave", save, block_limit=self.head() + 5000),
        }

    # -- sending ------------------------------------------------------------------------

    async def _send(self, index: int, raws: list[bytes]) -> list[str | RpcError] | None:
        host, port = self.address(index)
        client = AsyncRpcClient(host, port, group=self.group_id, timeout=10.0)
        try:
            return await client.send_raw_batch(raws)
        except (RpcTransportError, OSError) as exc:
            self.errors[type(exc).__name__] += 1
            return None
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def _count(self, kind: str, answers: Sequence[str | RpcError] | None, n: int) -> list[str]:
        """Tally the answers; the label of each ("ack" or the refusal's reason)."""
        self.sent[kind] += n
        if answers is None:
            self.answers[kind]["unreachable"] += n
            return ["unreachable"] * n
        labels = [
            a.reason or f"code {a.code}" if isinstance(a, RpcError) else "ack" for a in answers
        ]
        self.answers[kind].update(labels)
        return labels

    # -- the actions --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), INTERVAL)
            if stop.is_set() or not self.targets():
                continue
            self._turn += 1
            if self._turn % FLOOD_EVERY == 0 and self.capacity is not None:
                await self.flood()
            else:
                await (self.nonce_race, self.poison, self.replay)[self._turn % 3]()

    async def nonce_race(self) -> None:
        targets = list(self.targets())
        if len(targets) < 2:
            return
        for _ in range(RACES):
            a, b = self.rng.sample(targets, 2)
            nonce = secrets.token_hex(16)
            x = self._raw("userSave", ["h-race-x", _u256(7)], nonce=nonce)
            y = self._raw("userSave", ["h-race-y", _u256(9)], nonce=nonce)
            got = await asyncio.gather(self._send(a, [x]), self._send(b, [y]))
            self._count("nonce_race", got[0], 1)
            self._count("nonce_race", got[1], 1)
            self.evidence.pairs.append(("0x" + hash32(x).hex(), "0x" + hash32(y).hex()))

    async def poison(self) -> None:
        pills = self._pills()
        target = self.rng.choice(list(self.targets()))
        answers = await self._send(target, list(pills.values()))
        labels = self._count("poison", answers, len(pills))
        for (name, raw), label in zip(pills.items(), labels, strict=True):
            h = "0x" + hash32(raw).hex()
            self.evidence.pills[h] = name
            self.evidence.pill_answers[h] = label

    async def replay(self) -> None:
        done = self.committed()
        if not done:
            return
        raws = self.rng.sample(done, min(REPLAYS, len(done)))
        targets = list(self.targets())
        for raw in raws:
            answers = await self._send(self.rng.choice(targets), [raw])
            self._count("replay", answers, 1)
            self.evidence.replays.append("0x" + hash32(raw).hex())

    async def flood(self) -> None:
        target = self.rng.choice(list(self.targets()))
        assert self.capacity is not None
        count = int(self.capacity * FLOOD_FACTOR)
        raws = await asyncio.to_thread(
            lambda: [self._raw("userSave", ["h-flood", _u256(1)]) for _ in range(count)]
        )
        before = _rss_kib(self.pid_of(target))
        answers = await self._send(target, raws)
        labels = self._count("flood", answers, count)
        after = _rss_kib(self.pid_of(target))
        self.evidence.bursts.append(
            {
                "node": f"node{target}",
                "sent": count,
                "admitted": labels.count("ack"),
                "pool_full": labels.count("TxPoolIsFull"),
                "rss_before_kib": before,
                "rss_after_kib": after,
                "admitted_hashes": [
                    "0x" + hash32(r).hex() for r, lab in zip(raws, labels, strict=True)
                    if lab == "ack"
                ],
            }
        )

    # -- figures ------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        return {
            kind: {"sent": self.sent[kind], "answers": dict(self.answers[kind])}
            for kind in KINDS
        } | {
            "bursts": [
                {k: v for k, v in b.items() if k != "admitted_hashes"}
                for b in self.evidence.bursts
            ],
            "errors": dict(self.errors),
        }


def _rss_kib(pid: int | None) -> int | None:
    """The resident set of process ``pid`` in KiB (None if unknown)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
