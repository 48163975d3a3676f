"""The chaos workload: DagTransfer mints, burns and transfers through the RPC client, with
a record of every submission, acknowledgement and receipt.

* **submitted**: the signed bytes left for a node (recorded before they are sent);
* **acknowledged**: a node answered ``sendRawTransaction`` with the transaction's hash
  (it is in that node's pool);
* **receipt**: some node answered ``getTransactionReceipt`` with it (it is committed).

Like the client docs/node.md describes, the workload resends (the same signed bytes, to
another node) what has had no receipt for a while: the pool is memory only, so an
acknowledged transaction whose node crashed before gossiping it is gone unless resent.
The checker then asks that every acknowledged transaction committed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.rpc.client import DAG_TRANSFER, AsyncRpcClient, RpcError, RpcTransportError

BLOCK_LIMIT_MARGIN = 500
INITIAL_BALANCE = 1_000_000
OK_ON_RESEND = ("AlreadyKnown", "AlreadyInChain")


@dataclass(slots=True)
class TxRecord:
    """One transaction of the workload and what became of it."""

    hash: str
    raw: bytes = field(repr=False)
    method: str
    args: tuple[Any, ...]
    block_limit: int
    submitted_at: float
    sent_to: list[int] = field(default_factory=list)
    last_sent: float = 0.0
    acked_at: float | None = None
    acked_by: int | None = None
    refusals: Counter[str] = field(default_factory=Counter)
    receipt_at: float | None = None
    block_number: int | None = None
    block_hash: str | None = None
    status: int | None = None
    resends: int = 0
    expired: bool = False

    @property
    def acked(self) -> bool:
        return self.acked_at is not None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TxRecord:
        """A record back from :meth:`as_json`."""
        values = dict(doc)
        raw = bytes.fromhex(values.pop("raw", ""))
        refusals: Counter[str] = Counter(values.pop("refusals", {}))
        values["args"] = tuple(values["args"])
        return cls(raw=raw, refusals=refusals, **values)

    def as_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "raw": self.raw.hex(),
            "method": self.method,
            "args": list(self.args),
            "block_limit": self.block_limit,
            "submitted_at": self.submitted_at,
            "sent_to": self.sent_to,
            "last_sent": self.last_sent,
            "acked_at": self.acked_at,
            "acked_by": self.acked_by,
            "refusals": dict(self.refusals),
            "receipt_at": self.receipt_at,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "status": self.status,
            "resends": self.resends,
            "expired": self.expired,
        }


@dataclass(frozen=True, slots=True)
class WorkloadPlan:
    rate: float = 40.0  # transactions per second
    batch: int = 4  # transactions per sendRawTransaction batch
    users: int = 20
    resend_after: float = 8.0  # seconds without a receipt before the same bytes go again
    timeout: float = 3.0  # per RPC request
    seed: int = 0


Targets = Callable[[], Sequence[int]]  # nodes that may take submissions now
Address = Callable[[int], tuple[str, int]]  # node index -> RPC host, port


class Workload:
    """Submits, follows receipts and resends; every transaction goes in :attr:`records`."""

    def __init__(
        self,
        plan: WorkloadPlan,
        *,
        chain_id: str,
        group_id: str,
        key: KeyPair,
        targets: Targets,
        address: Address,
        head: Callable[[], int],
    ) -> None:
        self.plan = plan
        self.chain_id, self.group_id, self.key = chain_id, group_id, key
        self.targets, self.address, self.head = targets, address, head
        self.rng = random.Random(plan.seed)
        self.users = [f"c{i:03d}" for i in range(plan.users)]
        self.records: dict[str, TxRecord] = {}
        self.errors: Counter[str] = Counter()
        self._fresh = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending = asyncio.Semaphore(16)

    # -- building -----------------------------------------------------------------------

    def _build(self, method: str, args: list[Any]) -> TxRecord:
        block_limit = self.head() + BLOCK_LIMIT_MARGIN
        stx = Transaction.build(
            chain_id=self.chain_id,
            group_id=self.group_id,
            to=DAG_TRANSFER,
            method=method,
            args=args,
            block_limit=block_limit,
        ).sign(self.key)
        rec = TxRecord(
            "0x" + stx.hash.hex(), stx.encoded, method, tuple(args), block_limit, time.monotonic()
        )
        rec.last_sent = rec.submitted_at
        self.records[rec.hash] = rec
        return rec

    def _next_op(self) -> TxRecord:
        rng = self.rng
        roll = rng.random()
        amount = rng.randint(1, 100)
        if roll < 0.6:
            src, dst = rng.sample(self.users, 2)
            return self._build("userTransfer", [src, dst, amount])
        if roll < 0.75:
            return self._build("userSave", [rng.choice(self.users), amount])
        if roll < 0.9:
            return self._build("userDraw", [rng.choice(self.users), amount])
        self._fresh += 1
        user = f"n{self._fresh:05d}"
        self.users.append(user)
        return self._build("userAdd", [user, 1000])

    # -- sending ------------------------------------------------------------------------

    def _client(self, index: int) -> AsyncRpcClient:
        host, port = self.address(index)
        return AsyncRpcClient(host, port, group=self.group_id, timeout=self.plan.timeout)

    async def _send(self, records: Sequence[TxRecord], index: int, *, resend: bool) -> None:
        async with self._sending:
            for rec in records:
                rec.sent_to.append(index)
                rec.resends += resend
                rec.last_sent = time.monotonic()
            client = self._client(index)
            try:
                answers = await client.send_raw_batch([r.raw for r in records])
            except (RpcTransportError, RpcError, OSError) as exc:
                self.errors[type(exc).__name__] += 1
                return
            finally:
                with contextlib.suppress(Exception):
                    await client.close()
        now = time.monotonic()
        for rec, answer in zip(records, answers, strict=True):
            if isinstance(answer, RpcError):
                rec.refusals[answer.reason or str(answer.code)] += 1
                if answer.reason == "BlockLimitCheckFail":
                    rec.expired = True
                if not (resend and answer.reason in OK_ON_RESEND):
                    continue
            if rec.acked_at is None and (not isinstance(answer, RpcError) or resend):
                rec.acked_at, rec.acked_by = now, index

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def submit(self, records: Sequence[TxRecord], *, resend: bool = False) -> bool:
        targets = list(self.targets())
        if not targets:
            self.errors["no_target"] += 1
            return False
        if resend:  # another node than last time, when there is one
            last = records[0].sent_to[-1] if records[0].sent_to else None
            targets = [t for t in targets if t != last] or targets
        self._spawn(self._send(records, self.rng.choice(targets), resend=resend))
        return True

    async def create_users(self) -> list[TxRecord]:
        records = [self._build("userAdd", [u, INITIAL_BALANCE]) for u in self.users]
        for start in range(0, len(records), 10):
            self.submit(records[start : start + 10])
        return records

    async def run(self, stop: asyncio.Event) -> None:
        """Offer ``rate`` tx/s in batches until ``stop``."""
        interval = self.plan.batch / self.plan.rate
        next_at = time.monotonic()
        while not stop.is_set():
            self.submit([self._next_op() for _ in range(self.plan.batch)])
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- receipts and resends -----------------------------------------------------------

    def open_records(self) -> list[TxRecord]:
        """Submitted, no receipt yet, not expired."""
        return [r for r in self.records.values() if r.receipt_at is None and not r.expired]

    def pending_acked(self) -> int:
        return sum(1 for r in self.open_records() if r.acked)

    async def follow_receipts(self, stop: asyncio.Event, *, interval: float = 0.5) -> None:
        while not stop.is_set():
            await self.poll_receipts()
            self.resend_stale()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    async def poll_receipts(self) -> None:
        waiting = self.open_records()
        targets = list(self.targets())
        if not waiting or not targets:
            return
        client = self._client(self.rng.choice(targets))
        try:
            for start in range(0, len(waiting), 500):
                part = waiting[start : start + 500]
                answers = await client.batch(
                    [("getTransactionReceipt", [self.group_id, r.hash]) for r in part]
                )
                self._take_receipts(part, answers)
        except (RpcTransportError, RpcError, OSError) as exc:
            self.errors[f"receipts:{type(exc).__name__}"] += 1
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def _take_receipts(self, records: Sequence[TxRecord], answers: Sequence[Any]) -> None:
        now = time.monotonic()
        for rec, answer in zip(records, answers, strict=True):
            if not isinstance(answer, dict):
                continue
            rec.receipt_at = now
            rec.block_number = int(answer["blockNumber"], 16)
            rec.block_hash = str(answer["blockHash"])
            rec.status = int(answer["status"], 16)

    def resend_stale(self) -> None:
        now = time.monotonic()
        stale = [r for r in self.open_records() if now - r.last_sent > self.plan.resend_after]
        for start in range(0, len(stale), 50):
            self.submit(stale[start : start + 50], resend=True)

    async def drain(self, timeout: float) -> bool:
        """Until every submitted transaction has a receipt or expired; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.open_records():
            if time.monotonic() > deadline:
                return False
            await self.poll_receipts()
            self.resend_stale()
            await asyncio.sleep(0.5)
        return True

    # -- figures ------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        recs = list(self.records.values())
        return {
            "submitted": len(recs),
            "acknowledged": sum(r.acked for r in recs),
            "receipts": sum(r.receipt_at is not None for r in recs),
            "success_receipts": sum(r.status == 0 for r in recs),
            "failed_receipts": sum(r.status not in (None, 0) for r in recs),
            "resends": sum(r.resends for r in recs),
            "expired": sum(r.expired for r in recs),
            "never_acknowledged": sum(not r.acked for r in recs),
        }
