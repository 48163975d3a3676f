"""DagTransfer load against a running chain: the one copy ``ledgerlab demo`` and
``ledgerlab bench`` share.

Both sign transactions with the chain's admin key, send them as JSON-RPC batches of
``sendRawTransaction``, learn when they commit by following node0's blocks, wait on that
with a deadline, read the users' balances back and report latency percentiles. The
policies (how fast to send, what counts as failure, what to print) stay with each
command; the machinery lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction, decode_values
from node.rpc.calldata import encode_call
from node.rpc.client import DAG_TRANSFER, AsyncRpcClient, RpcError, RpcTransportError
from scripts.launcher.layout import Chain

Signed = tuple[str, bytes]  # ("0x" tx hash, encoded signed transaction)


def node_client(chain: Chain, index: int, *, timeout: float = 10.0) -> AsyncRpcClient:
    """A JSON-RPC client for node ``index`` of ``chain`` (at its RPC address)."""
    node = chain.node(index)
    host = node.rpc.rpartition(":")[0]
    return AsyncRpcClient(host, node.rpc_port, group=chain.group_id, timeout=timeout)


def new_root(directory: Path | None, prefix: str) -> tuple[Path, Path | None]:
    """(chain folder, temporary parent to delete afterwards or None)."""
    if directory is not None:
        return directory, None
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    return parent / "chain", parent


def hex_int(value: Any) -> int:
    """A number the node sent as ``0x`` hex (or already as an int)."""
    return int(value, 16) if isinstance(value, str) else int(value)


# ---------------------------------------------------------------------- signing


class TransferSigner:
    """Signs DagTransfer calls for one chain with one key (client cost: done up front)."""

    def __init__(self, chain: Chain, key: KeyPair) -> None:
        self.chain_id = chain.chain_id
        self.group_id = chain.group_id
        self.key = key

    def sign(self, method: str, args: list[Any], block_limit: int) -> Signed:
        stx = Transaction.build(
            chain_id=self.chain_id,
            group_id=self.group_id,
            to=DAG_TRANSFER,
            method=method,
            args=args,
            block_limit=block_limit,
        ).sign(self.key)
        return "0x" + stx.hash.hex(), stx.encoded

    def transfer(self, rng: random.Random, users: Sequence[str], block_limit: int) -> Signed:
        """``userTransfer`` of 1..100 between two distinct random users."""
        src, dst = rng.sample(users, 2)
        return self.sign("userTransfer", [src, dst, rng.randint(1, 100)], block_limit)


def send_raw_body(group_id: str, raws: Sequence[bytes]) -> bytes:
    """A ready-to-post JSON-RPC batch of ``sendRawTransaction`` calls, ids 0..n-1."""
    group = json.dumps(group_id)
    parts = [
        f'{{"jsonrpc":"2.0","id":{i},"method":"sendRawTransaction",'
        f'"params":[{group},"0x{raw.hex()}"]}}'
        for i, raw in enumerate(raws)
    ]
    return ("[" + ",".join(parts) + "]").encode()


# ---------------------------------------------------------------------- commits


async def follow_blocks(
    chain: Chain,
    head: int,
    on_block: Callable[[int, dict[str, Any], float], None],
    *,
    interval: float,
    timeout: float = 10.0,
) -> None:
    """Call ``on_block(number, block, seen)`` for every block of node0 after ``head``, in
    order, until cancelled; ``seen`` is when the client got it (its commit time as seen
    by the client). A node that does not answer is asked again a little later."""
    async with node_client(chain, 0, timeout=timeout) as client:
        while True:
            try:
                height = await client.block_number()
                while head < height:
                    block = await client.get_block(head + 1)
                    head += 1
                    on_block(head, block, time.monotonic())
            except (RpcTransportError, RpcError):
                await asyncio.sleep(0.2)
            await asyncio.sleep(interval)


@dataclass(slots=True)
class CommitTracker:
    """Submitted and committed transactions by hash, fed by :func:`follow_blocks`."""

    head: int = 0
    submitted: dict[str, float] = field(default_factory=dict)  # tx hash -> submit time
    committed: dict[str, float] = field(default_factory=dict)  # tx hash -> commit seen
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def in_flight(self) -> int:
        return len(self.submitted) - len(self.committed)

    def count_committed(self, hashes: Sequence[str]) -> int:
        return sum(h in self.committed for h in hashes)

    def all_committed(self, hashes: Sequence[str]) -> bool:
        return all(h in self.committed for h in hashes)

    def on_block(self, number: int, block: dict[str, Any], seen: float) -> None:
        for h in block.get("transactions", []):
            self.committed.setdefault(str(h), seen)
        self.head = number
        self.changed.set()


# ---------------------------------------------------------------------- waiting


async def wait_for_change(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set anew, or ``timeout`` seconds (it is cleared first)."""
    event.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


async def wait_until(
    done: Callable[[], bool],
    event: asyncio.Event,
    timeout: float,
    *,
    tick: Callable[[], None] | None = None,
    poll: float = 0.5,
) -> bool:
    """Wake on ``event`` (or every ``poll`` s) until ``done()``; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not done():
        if tick is not None:
            tick()
        if time.monotonic() > deadline:
            return False
        await wait_for_change(event, poll)
    return True


async def poll_until(
    check: Callable[[], Awaitable[bool]], timeout: float, *, interval: float = 0.2
) -> bool:
    """Ask ``check()`` every ``interval`` s until it is true; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# ---------------------------------------------------------------------- results


async def read_balances(
    client: AsyncRpcClient, users: Sequence[str], *, chunk: int = 500
) -> list[int | None]:
    """Every user's ``userBalance`` on one node, in batches of read-only calls; ``None``
    where the call failed or its output is not ``[balance]``."""
    to = "0x" + DAG_TRANSFER.hex()
    calls = [
        ("call", [client.group, {"to": to, "data": "0x" + encode_call("userBalance", [u]).hex()}])
        for u in users
    ]
    out: list[int | None] = []
    for start in range(0, len(calls), chunk):
        for res in await client.batch(calls[start : start + chunk]):
            out.append(_balance(res))
    return out


def _balance(res: Any) -> int | None:
    if not isinstance(res, dict) or hex_int(res.get("status", 1)) != 0:
        return None
    try:
        values = decode_values(bytes.fromhex(str(res.get("output", "0x"))[2:]), max_items=64)
    except ValueError:
        return None
    return int(values[0]) if values else None


def percentile(
    values: Sequence[float], q: float, *, rule: Literal["nearest", "floor"] = "nearest"
) -> float:
    """The ``q`` quantile of ``values`` (0.0 for none), one of the values themselves.

    ``nearest`` takes sorted index ``round(q * (n - 1))`` (the benchmark's figures);
    ``floor`` takes ``int(q * n)`` (the demo's). Each command keeps its rule so that its
    figures stay comparable with earlier runs.
    """
    if not values:
        return 0.0
    ordered = sorted(values)
    n = len(ordered)
    index = round(q * (n - 1)) if rule == "nearest" else int(q * n)
    return ordered[min(n - 1, index)]
