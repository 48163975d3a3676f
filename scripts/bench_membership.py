"""Membership changes on real node processes: commit throughput across them, and how fast
a new member catches up over a long history that contains them.

Each part runs on a fresh chain of node processes over TCP in a temporary folder, made and
started by the launcher code ``ledgerlab up`` runs (``init_chain``, ``astart_nodes``); new
nodes are made by the steps of ``ledgerlab add-node`` (``expand.create_node``, then
``addObserver``, start, wait for sync, ``addSealer``). Every process started is stopped by
pid at the end, also on Ctrl-C.

1. ``changes``: 4 sealers, tx_count_limit 1,000, closed-loop DagTransfer load like
   ``ledgerlab bench`` (pre-signed ``userTransfer`` JSON-RPC batches of 200, at most 4,000
   in flight), sent to node1..node3 only (node0 is removed during the run). During it:
   add-node (node4 joins as observer, syncs, addSealer), then ``remove`` node0, then
   node4 is demoted (``addObserver`` of a sealer), with ``--steady`` seconds between
   changes. A client follows node1's blocks every 10 ms. Prints committed tx/s per second,
   the medians of the per-second rates in each phase, and the longest gap between two
   consecutive committed blocks (as seen by that client, and from the block timestamps),
   against the chain's ``consensus_timeout``. The sync wait is the verb's own
   (``membership._wait_synced``: until the new node is within one block of the live head;
   before the fix it waited for the head node1 had when the wait began);
   ``--promote caught-up`` waits for the same with this script's own poll.
   ``--history S``: seconds of load before add-node (default ``--steady``).
2. ``catchup``: 4 sealers with tx_count_limit 1 build ``--blocks`` one-transaction blocks
   while the sealer set changes every ``--blocks``/5 blocks (add node4, remove node0,
   demote node1, promote node1 again); then, on the idle chain, ``--syncs`` new nodes are
   added one after another as observers (add-node --observer) and each syncs the whole
   history from the node processes, checking every block's seal against the sealer set in
   force at its height and re-executing it. Prints each one's start-to-synced time and
   blocks/s, and the rate per stretch of history between changes.

    python -m scripts.bench_membership                        # both parts, about 3 min
    python -m scripts.bench_membership --part changes --history 40   # a longer history
    python -m scripts.bench_membership --part catchup --blocks 10000 --syncs 3
    python -m scripts.bench_membership --json result.json     # everything, per second
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from consensus.crypto import KeyPair
from node.rpc.client import CONSENSUS, AsyncRpcClient, RpcClient, RpcError, RpcTransportError
from scripts.benchmark import machine_info, scrape_metrics
from scripts.commands import membership
from scripts.launcher import accounts, cluster, expand, procs
from scripts.launcher.layout import Chain, NodeEntry, init_chain
from scripts.launcher.load import (
    TransferSigner,
    hex_int,
    node_client,
    read_balances,
    send_raw_body,
)

INITIAL_BALANCE = 1_000_000_000
FOLLOW_INTERVAL = 0.01
TX_GUESS = 8_000  # tx/s to pre-sign for (above what 2 cores commit), part 1
PORT_ROOM = 16  # consecutive ports per base: room for the nodes a run adds


def say(text: str) -> None:
    print(text, flush=True)


# ----------------------------------------------------------------------------- blocks seen


@dataclass(slots=True)
class Seen:
    number: int
    seen: float  # time.monotonic() when the follower got it
    timestamp: int  # header timestamp, ms
    txs: int
    ours: int
    sealers: int
    proposer: str  # node id (hex) of the sealer that proposed it


class Follower:
    """Every block of one node in order, with the time this client first saw it."""

    def __init__(
        self, chain: Chain, index: int, head: int, ours: Callable[[list[str]], int]
    ) -> None:
        self.chain = chain
        self.index = index
        self.head = head
        self.ours = ours
        self.blocks: list[Seen] = []
        self.by_number: dict[int, Seen] = {}
        self.changed = asyncio.Event()

    async def run(self) -> None:
        async with node_client(self.chain, self.index, timeout=30.0) as c:
            while True:
                try:
                    height = await c.block_number()
                    while self.head < height:
                        block = await c.get_block(self.head + 1)
                        now = time.monotonic()
                        self.head += 1
                        txs = [str(h) for h in block.get("transactions", [])]
                        sealers = block.get("sealerList", [])
                        s = Seen(
                            self.head,
                            now,
                            hex_int(block["timestamp"]),
                            len(txs),
                            self.ours(txs),
                            len(sealers),
                            str(sealers[hex_int(block["sealer"])]).removeprefix("0x"),
                        )
                        self.blocks.append(s)
                        self.by_number[s.number] = s
                        self.changed.set()
                except (RpcTransportError, RpcError):
                    await asyncio.sleep(0.2)
                await asyncio.sleep(FOLLOW_INTERVAL)

    async def until(self, number: int, timeout: float) -> Seen:
        deadline = time.monotonic() + timeout
        while number not in self.by_number:
            if time.monotonic() > deadline:
                raise BenchError(f"block {number} not seen on node{self.index} in {timeout} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.2)
        return self.by_number[number]


class BenchError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- the cluster


class Nodes:
    """One chain directory and the node processes this run started in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chain: Chain | None = None
        self.pids: dict[str, int] = {}
        self.key: KeyPair | None = None

    @property
    def c(self) -> Chain:
        assert self.chain is not None
        return self.chain

    async def create(self, nodes: int, tx_count_limit: int) -> None:
        rng = random.Random()
        p2p = procs.free_port_base(PORT_ROOM, rng)
        rpc = procs.free_port_base(PORT_ROOM, rng, avoid=range(p2p, p2p + PORT_ROOM))
        self.chain = init_chain(
            self.root, nodes=nodes, p2p_port=p2p, rpc_port=rpc, tx_count_limit=tx_count_limit
        )
        self.key = accounts.load_key(self.chain.accounts_dir / "admin.key")
        t0 = time.monotonic()
        result = await cluster.astart_nodes(self.chain, timeout=60)
        self.pids.update(result.started)
        say(
            f"  {nodes} sealer processes over TCP in {self.root}, tx_count_limit "
            f"{tx_count_limit}: up and connected in {time.monotonic() - t0:.1f} s"
        )

    def client(self, index: int, timeout: float = 30.0) -> AsyncRpcClient:
        return node_client(self.c, index, timeout=timeout)

    async def head(self, index: int) -> int:
        async with self.client(index) as c:
            return await c.block_number()

    async def change(self, via: int, method: str, node: NodeEntry) -> int:
        """One governor transaction to the Consensus precompile; the block that holds it."""
        assert self.key is not None
        async with self.client(via, timeout=30.0) as c:
            receipt = await c.send_tx(
                self.key, CONSENSUS, method, [node.node_id], wait=True, timeout=120.0
            )
        status = hex_int(receipt.get("status", 0))
        if status != 0:
            raise BenchError(f"{method} {node.name} failed with status {status}")
        return hex_int(receipt["blockNumber"])

    async def new_node(self) -> NodeEntry:
        self.chain, node = await asyncio.to_thread(expand.create_node, self.c)
        return node

    async def start(self, node: NodeEntry) -> None:
        result = await cluster.astart_nodes(self.c, [node], timeout=60)
        self.pids.update(result.started)

    def stop(self, name: str) -> None:
        pid = self.pids.pop(name, None)
        if pid is not None:
            procs.stop_pids([pid], timeout=10.0)
            for n in self.c.nodes:
                if n.name == name:
                    n.pid_path.unlink(missing_ok=True)

    def stop_all(self) -> None:
        if self.pids:
            procs.stop_pids(list(self.pids.values()), timeout=10.0)
        if self.chain is not None:
            for n in self.chain.nodes:
                if n.name in self.pids:
                    n.pid_path.unlink(missing_ok=True)
        self.pids = {}

    async def wait_synced(self, node: NodeEntry, via: int, timeout: float) -> int:
        """``ledgerlab add-node``'s own wait (:func:`membership._wait_synced`, in a thread):
        until ``node`` holds the head ``via`` had when the wait began."""

        def wait() -> int:
            entry = self.c.node(via)
            source = RpcClient(entry.rpc.rpartition(":")[0], entry.rpc_port, group=self.c.group_id)
            try:
                return membership._wait_synced(self.c, node, source, timeout)
            finally:
                source.close()

        return await asyncio.to_thread(wait)

    async def wait_caught_up(self, node: NodeEntry, via: int, timeout: float) -> int:
        """Until ``node`` is within one block of ``via``'s live head (``--promote caught-up``:
        what add-node would need to wait for so as not to promote a node that is behind)."""
        deadline = time.monotonic() + timeout
        async with self.client(node.index) as mine, self.client(via) as ref:
            while time.monotonic() < deadline:
                h, head = await mine.block_number(), await ref.block_number()
                if h >= head - 1:
                    return h
                await asyncio.sleep(0.1)
        raise BenchError(f"{node.name} did not catch up with node{via} in {timeout:.0f} s")

    async def create_users(self, via: int, users: list[str]) -> int:
        """userAdd for every user, all committed; the head after."""
        assert self.key is not None
        signer = TransferSigner(self.c, self.key)
        async with self.client(via) as c:
            head = await c.block_number()
            adds = [signer.sign("userAdd", [u, INITIAL_BALANCE], head + 500) for u in users]
            for start in range(0, len(adds), 200):
                for r in await c.send_raw_batch([raw for _, raw in adds[start : start + 200]]):
                    if isinstance(r, RpcError):
                        raise BenchError(f"userAdd refused: {r.reason or r.message}")
            for h, _ in adds:
                await c.wait_for_receipt(h, 120.0)
            return await c.block_number()

    async def heads_agree(self, members: Sequence[NodeEntry], timeout: float = 30.0) -> bool:
        """All ``members`` at one height with the same hash and state root."""
        deadline = time.monotonic() + timeout
        while True:
            heads = []
            for n in members:
                async with self.client(n.index) as c:
                    heads.append(await c.block_number())
            if len(set(heads)) == 1:
                blocks = []
                for n in members:
                    async with self.client(n.index) as c:
                        b = await c.get_block(heads[0])
                    blocks.append((b["hash"], b["stateRoot"]))
                return len(set(blocks)) == 1
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.3)

    async def view_changes(self, members: Sequence[NodeEntry]) -> dict[str, int]:
        out = {}
        for n in members:
            async with self.client(n.index) as c:
                out[n.name] = int((await c.consensus_status())["viewChanges"])
        return out


def _sign_chunk(
    chain_id: str, group_id: str, secret: bytes, users: list[str], limit: int, seed: int, n: int
) -> list[tuple[str, bytes]]:
    """Worker: ``n`` signed userTransfers (a process pool signs before the timed part)."""
    from node.ledger.tx import Transaction
    from node.rpc.client import DAG_TRANSFER

    key = KeyPair.from_secret(secret)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        src, dst = rng.sample(users, 2)
        stx = Transaction.build(
            chain_id=chain_id,
            group_id=group_id,
            to=DAG_TRANSFER,
            method="userTransfer",
            args=[src, dst, rng.randint(1, 100)],
            block_limit=limit,
        ).sign(key)
        out.append(("0x" + stx.hash.hex(), stx.encoded))
    return out


def presign(chain: Chain, key: KeyPair, users: list[str], limit: int, n: int) -> list[Any]:
    workers = max(1, os.cpu_count() or 1)
    per = -(-n // workers)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(
            _sign_chunk,
            *zip(
                *[
                    (chain.chain_id, chain.group_id, key.secret, users, limit, seed, per)
                    for seed in range(workers)
                ],
                strict=True,
            ),
        )
        return [tx for part in parts for tx in part][:n]


# ----------------------------------------------------------------------------- statistics


def per_second(blocks: Sequence[Seen], t0: float, t_end: float) -> list[int]:
    """Our transactions committed in each whole second [t0 + k, t0 + k + 1)."""
    out = [0] * max(1, math.ceil(t_end - t0))
    for b in blocks:
        k = int(b.seen - t0)
        if 0 <= k < len(out):
            out[k] += b.ours
    return out


def phase_rate(
    rates: list[int], blocks: Sequence[Seen], t0: float, a: float, b: float
) -> dict[str, Any]:
    """Median of the whole seconds inside [a, b) (times after t0) and the mean rate."""
    whole = rates[math.ceil(a) : max(math.ceil(a), math.floor(b))]
    txs = sum(s.ours for s in blocks if a <= s.seen - t0 < b)
    return {
        "from_s": round(a, 2),
        "to_s": round(b, 2),
        "seconds": round(b - a, 2),
        "whole_seconds": len(whole),
        "median_tps": statistics.median(whole) if whole else None,
        "min_tps": min(whole) if whole else None,
        "mean_tps": round(txs / (b - a)) if b > a else None,
    }


def gaps(blocks: Sequence[Seen]) -> list[tuple[int, float, float]]:
    """(block, seen gap s, timestamp gap s) between each block and the one before it."""
    return [
        (b.number, b.seen - a.seen, (b.timestamp - a.timestamp) / 1000)
        for a, b in itertools.pairwise(blocks)
    ]


# ----------------------------------------------------------------------------- part 1


@dataclass(slots=True)
class Change:
    what: str
    submitted: float  # seconds after the load began
    block: int = 0
    committed: float = 0.0  # when the follower saw that block
    extra: dict[str, Any] = field(default_factory=dict)


class ChangesRun:
    """4 sealers under closed-loop load while the sealer set changes three times."""

    def __init__(self, nodes: Nodes, args: argparse.Namespace) -> None:
        self.nodes = nodes
        self.args = args
        self.users = [f"u{i:05d}" for i in range(args.users)]
        self.pending: dict[str, float] = {}
        self.committed = 0
        self.accepted = 0
        self.rejected: dict[str, int] = {}
        self.changes: list[Change] = []
        self.t0 = 0.0
        self.stop = asyncio.Event()
        self.ran_out: float | None = None
        self.loadavg_before = [round(x, 2) for x in os.getloadavg()]
        self.new_heights: list[tuple[float, int]] = []
        self.watch: asyncio.Task[None] | None = None

    def _ours(self, hashes: list[str]) -> int:
        n = 0
        for h in hashes:
            if self.pending.pop(h, None) is not None:
                n += 1
        self.committed += n
        return n

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def _send(self, index: int, batches: list[list[Any]], limit: int) -> None:
        group = self.nodes.c.group_id
        async with self.nodes.client(index, timeout=60.0) as c:
            while not self.stop.is_set():
                if not batches:
                    if self.ran_out is None:
                        self.ran_out = self.now()
                    return
                batch = batches.pop()
                while self.accepted - self.committed + len(batch) > limit:
                    await asyncio.sleep(0.005)
                self.accepted += len(batch)
                sent = time.monotonic()
                for h, _ in batch:
                    self.pending[h] = sent
                payload = await c.post(send_raw_body(group, [raw for _, raw in batch]))
                for answer in json.loads(payload or b"[]"):
                    if "error" in answer:
                        err = answer["error"]
                        data = err.get("data")
                        reason = (data.get("reason") if isinstance(data, dict) else None) or str(
                            err.get("message")
                        )
                        self.rejected[reason] = self.rejected.get(reason, 0) + 1
                        self.accepted -= 1
                        self.pending.pop(batch[int(answer["id"])][0], None)

    async def _watch(self, node: NodeEntry) -> None:
        """The new node's height every 0.2 s (how far behind it is when it is promoted)."""
        async with self.nodes.client(node.index, timeout=10.0) as c:
            while True:
                with contextlib.suppress(RpcTransportError, RpcError, OSError):
                    self.new_heights.append((self.now(), await c.block_number()))
                await asyncio.sleep(0.2)

    async def _change(self, via: int, what: str, method: str, node: NodeEntry) -> Change:
        ch = Change(what, self.now())
        self.changes.append(ch)
        ch.block = await self.nodes.change(via, method, node)
        say(f"  {ch.submitted:6.1f} s  {what}: in block {ch.block}")
        return ch

    async def scenario(self, follower: Follower) -> None:
        steady = self.args.steady
        nodes = self.nodes
        await asyncio.sleep(self.args.history or steady)
        # add-node: create, addObserver, start, sync, addSealer (what `ledgerlab add-node` does)
        node4 = await nodes.new_node()
        say(f"  {self.now():6.1f} s  created {node4.name}")
        ch = await self._change(1, f"addObserver {node4.name}", "addObserver", node4)
        t_start = self.now()
        await nodes.start(node4)
        t_up = self.now()
        self.watch = asyncio.create_task(self._watch(node4))
        target = await nodes.wait_synced(node4, 1, 300)
        if self.args.promote == "caught-up":
            target = await nodes.wait_caught_up(node4, 1, 300)
        t_synced = self.now()
        ch.extra = {"started_s": t_start, "up_s": t_up, "synced_s": t_synced, "target": target}
        say(
            f"  {t_up:6.1f} s  {node4.name} up ({t_up - t_start:.1f} s to start), synced to "
            f"{target} at {t_synced:.1f} s"
        )
        await self._change(1, f"addSealer {node4.name}", "addSealer", node4)
        await asyncio.sleep(steady)
        await self._change(1, "remove node0", "remove", nodes.c.node(0))
        await asyncio.sleep(steady)
        await self._change(1, f"addObserver {node4.name} (demote)", "addObserver", node4)
        await asyncio.sleep(steady)

    async def run(self) -> dict[str, Any]:
        args, nodes = self.args, self.nodes
        await nodes.create(4, args.block_txs)
        head = await nodes.create_users(1, self.users)
        say(f"  created {len(self.users):,} users (block {head})")
        assert nodes.key is not None
        t = time.monotonic()
        txs = args.txs or int(TX_GUESS * ((args.history or args.steady) + 3 * args.steady + 30))
        signed = presign(nodes.c, nodes.key, self.users, head + 990, txs)
        say(
            f"  pre-signed {len(signed):,} transfers in {time.monotonic() - t:.1f} s "
            "(client cost, not timed)"
        )
        batches = [signed[i : i + args.batch] for i in range(0, len(signed), args.batch)]
        batches.reverse()  # pop() from the end takes them in order
        del signed
        members = [nodes.c.node(i) for i in range(4)]
        views_before = await nodes.view_changes(members)
        follower = Follower(nodes.c, 1, head, self._ours)
        follow = asyncio.create_task(follower.run())
        self.t0 = time.monotonic()
        senders = [
            asyncio.create_task(self._send(i, batches, args.window))
            for i in (1, 2, 3)
            for _ in range(args.conns)
        ]
        try:
            await self.scenario(follower)
            self.stop.set()
            t_stop = self.now()
            await asyncio.gather(*senders)
            deadline = time.monotonic() + 60
            while self.pending and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            t_end = self.now()
            for ch in self.changes:
                ch.committed = (await follower.until(ch.block, 30)).seen - self.t0
        finally:
            self.stop.set()
            for task in senders:
                task.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            helpers = [t for t in (follow, self.watch) if t is not None]
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        final = [nodes.c.node(i) for i in (1, 2, 3, 4)]
        views_after = await nodes.view_changes(final)
        agree = await nodes.heads_agree(final)
        supply = []
        for n in final:
            async with nodes.client(n.index) as c:
                supply.append(sum(b or 0 for b in await read_balances(c, self.users)))
        async with nodes.client(1) as c:
            timeout_s = int(await c.system_config("consensus_timeout"))
        return self.summary(follower, t_stop, t_end, timeout_s, agree, supply, views_before,
                            views_after)  # fmt: skip

    def _lag(self, blocks: Sequence[Seen], promoted: Change) -> dict[str, Any]:
        """How far behind the new sealer was when its addSealer block committed, and when
        it was first within one block of node1's head afterwards."""
        seen = [b.seen - self.t0 for b in blocks]

        def head_at(t: float) -> int:
            i = bisect.bisect_right(seen, t)
            return blocks[i - 1].number if i else 0

        after = [(t, h) for t, h in self.new_heights if t >= promoted.committed]
        if not after:
            return {}
        h_first = after[0][1]
        caught = next((t for t, h in after if h >= head_at(t) - 1), None)
        return {
            "new_sealer_height": h_first,
            "new_sealer_behind_blocks": max(0, promoted.block - h_first),
            "new_sealer_caught_up_s": None if caught is None else round(caught, 2),
            "new_sealer_behind_for_s": None
            if caught is None
            else round(caught - promoted.committed, 2),
        }

    def summary(
        self,
        follower: Follower,
        t_stop: float,
        t_end: float,
        timeout_s: int,
        agree: bool,
        supply: list[int],
        views_before: dict[str, int],
        views_after: dict[str, int],
    ) -> dict[str, Any]:
        t0 = self.t0
        blocks = [b for b in follower.blocks if b.seen >= t0 and b.seen - t0 <= t_end]
        rates = per_second(blocks, t0, t0 + t_stop)
        # gaps only while transfers were offered: none are stalls after the load ran out
        offered = self.ran_out if self.ran_out is not None else t_end
        g = gaps([b for b in blocks if b.seen - t0 <= offered])
        obs, sealer = self.changes[0], self.changes[1]
        remove, demote = self.changes[2], self.changes[3]
        synced = obs.extra["synced_s"]
        phases = {
            "4 sealers (node0-3), before add-node": phase_rate(
                rates, blocks, t0, 1.0, obs.submitted
            ),
            "add-node: addObserver -> node4 synced": phase_rate(
                rates, blocks, t0, obs.submitted, synced
            ),
            "addSealer node4 (submit -> commit)": phase_rate(
                rates, blocks, t0, sealer.submitted, sealer.committed
            ),
            "5 sealers (node0-4)": phase_rate(
                rates, blocks, t0, sealer.committed, remove.submitted
            ),
            "remove node0 (submit -> commit)": phase_rate(
                rates, blocks, t0, remove.submitted, remove.committed
            ),
            "4 sealers (node1-4)": phase_rate(
                rates, blocks, t0, remove.committed, demote.submitted
            ),
            "demote node4 (submit -> commit)": phase_rate(
                rates, blocks, t0, demote.submitted, demote.committed
            ),
            "3 sealers (node1-3)": phase_rate(rates, blocks, t0, demote.committed, t_stop),
        }
        sealer.extra = self._lag(blocks, sealer)
        numbers = [b.number for b in blocks]
        around = []
        for c in self.changes:
            i = bisect.bisect_left(numbers, c.block)
            window = [x for x in g if c.block - 1 <= x[0] <= c.block + 6]
            around.append(
                {
                    "change": c.what,
                    "submitted_s": round(c.submitted, 2),
                    "block": c.block,
                    "committed_s": round(c.committed, 2),
                    "submit_to_commit_s": round(c.committed - c.submitted, 2),
                    "gap_into_boundary_s": next(
                        (round(x[1], 3) for x in g if x[0] == c.block + 1), None
                    ),
                    "max_gap_near_s": round(max((x[1] for x in window), default=0.0), 3),
                    "max_ts_gap_near_s": round(max((x[2] for x in window), default=0.0), 3),
                    "txs_in_block": blocks[i].ours if i < len(blocks) else None,
                    **c.extra,
                }
            )
        names = {n.node_id: n.name for n in self.nodes.c.nodes}
        by_number = {b.number: b for b in blocks}
        top = sorted(g, key=lambda x: -x[1])[:5]
        worst = top[0] if top else (0, 0.0, 0.0)
        worst_ts = max(g, key=lambda x: x[2]) if g else (0, 0.0, 0.0)
        expected = INITIAL_BALANCE * len(self.users)
        return {
            "machine": machine_info() | {"loadavg_before": self.loadavg_before},
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "plan": {k: v for k, v in vars(self.args).items() if k != "func"},
            "consensus_timeout_s": timeout_s,
            "load_seconds": round(t_stop, 2),
            "ran_out_of_txs_at_s": self.ran_out,
            "committed": sum(b.ours for b in blocks),
            "accepted": self.accepted,
            "rejected": self.rejected,
            "uncommitted": len(self.pending),
            "blocks": len(blocks),
            "per_second_tps": rates,
            "phases": phases,
            "changes": around,
            "max_gap": {"block": worst[0], "seen_s": round(worst[1], 3)},
            "top_gaps": [
                {
                    "block": n,
                    "seen_s": round(a, 3),
                    "timestamp_s": round(ts, 3),
                    "proposer": names.get(by_number[n].proposer, by_number[n].proposer[:8]),
                    "sealers": by_number[n].sealers,
                }
                for n, a, ts in top
            ],
            "max_timestamp_gap": {"block": worst_ts[0], "s": round(worst_ts[2], 3)},
            "stall_over_timeout": worst[1] > timeout_s,
            "view_changes": {k: views_after[k] - views_before.get(k, 0) for k in views_after},
            "heads_identical": agree,
            "supply_ok": all(s == expected for s in supply),
            "block_log": [asdict(b) | {"seen": round(b.seen - t0, 3)} for b in blocks],
            "new_node_heights": [(round(t, 2), h) for t, h in self.new_heights],
        }


def report_changes(r: dict[str, Any]) -> None:
    say(
        f"\ncommit throughput across membership changes ({r['load_seconds']:.0f} s of load; "
        f"load average {r['machine']['loadavg_before'][0]} before, {r['loadavg_after'][0]} after)"
    )
    say("  per second tx/s: " + " ".join(str(x) for x in r["per_second_tps"]))
    say(f"  {'phase':<42} {'median tx/s':>11} {'min':>6} {'mean':>6} {'seconds':>8}")
    for name, p in r["phases"].items():
        med = "-" if p["median_tps"] is None else f"{p['median_tps']:,.0f}"
        low = "-" if p["min_tps"] is None else f"{p['min_tps']:,}"
        say(f"  {name:<42} {med:>11} {low:>6} {p['mean_tps'] or 0:>6,} {p['seconds']:>8.1f}")
    for c in r["changes"]:
        say(
            f"  {c['change']:<30} block {c['block']:>5}  submit->commit "
            f"{c['submit_to_commit_s']:.2f} s  gap into block {c['block'] + 1}: "
            f"{c['gap_into_boundary_s']} s  max gap into blocks {c['block']}..{c['block'] + 7}: "
            f"{c['max_gap_near_s']} s"
        )
    lag = next((c for c in r["changes"] if "new_sealer_behind_blocks" in c), None)
    if lag is not None:
        say(
            f"  when {lag['change']} committed (block {lag['block']}) the new sealer was at "
            f"block {lag['new_sealer_height']} ({lag['new_sealer_behind_blocks']} behind); "
            f"within one block of the head {lag['new_sealer_behind_for_s']} s later"
        )
    say(
        "  longest gaps: "
        + "; ".join(
            f"into {x['block']} {x['seen_s']} s (timestamps {x['timestamp_s']} s, proposer "
            f"{x['proposer']}, {x['sealers']} sealers)"
            for x in r["top_gaps"]
        )
    )
    mg = r["max_gap"]
    say(
        f"  longest gap between consecutive commits: {mg['seen_s']:.3f} s (seen, into block "
        f"{mg['block']}); from timestamps {r['max_timestamp_gap']['s']:.3f} s; "
        f"consensus_timeout {r['consensus_timeout_s']} s -> "
        + ("STALL LONGER THAN THE TIMEOUT" if r["stall_over_timeout"] else "no stall past it")
    )
    say(
        f"  committed {r['committed']:,} of {r['accepted']:,} accepted in {r['blocks']} blocks; "
        f"refused {r['rejected'] or 0}; view changes {r['view_changes']}; heads identical "
        f"{r['heads_identical']}; supply intact {r['supply_ok']}"
        + (
            f"; LOAD RAN OUT at {r['ran_out_of_txs_at_s']:.1f} s"
            if r["ran_out_of_txs_at_s"]
            else ""
        )
    )


# ----------------------------------------------------------------------------- part 2


class CatchupRun:
    """A long history of 1-tx blocks across sealer-set changes, then new members sync it."""

    def __init__(self, nodes: Nodes, args: argparse.Namespace) -> None:
        self.nodes = nodes
        self.args = args
        self.users = [f"u{i:03d}" for i in range(20)]
        self.stop = asyncio.Event()
        self.changes: list[dict[str, Any]] = []
        self.t0 = 0.0

    async def _load(self, targets: Sequence[int]) -> None:
        """Keep about ``window`` transfers pending at node2: one per block, no idle gap."""
        nodes = self.nodes
        assert nodes.key is not None
        signer = TransferSigner(nodes.c, nodes.key)
        rng = random.Random(2)
        clients = [nodes.client(i, timeout=30.0) for i in targets]
        watch = nodes.client(targets[0], timeout=30.0)
        turn = 0
        try:
            while not self.stop.is_set():
                try:
                    pending = await watch.pending_tx_size()
                    if pending < self.args.window_catchup:
                        head = await watch.block_number()
                        n = self.args.window_catchup - pending
                        raws = [signer.transfer(rng, self.users, head + 500)[1] for _ in range(n)]
                        await clients[turn % len(clients)].send_raw_batch(raws)
                        turn += 1
                except (RpcTransportError, RpcError):
                    pass
                await asyncio.sleep(0.05)
        finally:
            for c in (*clients, watch):
                await c.close()

    async def _at(self, height: int) -> None:
        while await self.nodes.head(2) < height:
            await asyncio.sleep(0.2)

    async def _change(self, method: str, node: NodeEntry) -> None:
        t = time.monotonic() - self.t0
        block = await self.nodes.change(2, method, node)
        self.changes.append(
            {"change": f"{method} {node.name}", "block": block, "at_s": round(t, 1)}
        )
        say(f"  {t:6.1f} s  {method} {node.name}: in block {block}")

    async def build(self) -> dict[str, Any]:
        nodes, step = self.nodes, self.args.blocks // 5
        await nodes.create(4, 1)
        await nodes.create_users(2, self.users)
        self.t0 = time.monotonic()
        load = asyncio.create_task(self._load([2, 3]))
        try:
            await self._at(step)
            node4 = await nodes.new_node()
            await self._change("addObserver", node4)
            await nodes.start(node4)
            await nodes.wait_synced(node4, 2, 300)
            await self._change("addSealer", node4)
            await self._at(2 * step)
            await self._change("remove", nodes.c.node(0))
            await self._at(3 * step)
            await self._change("addObserver", nodes.c.node(1))  # demote
            await self._at(4 * step)
            await self._change("addSealer", nodes.c.node(1))  # promote again
            await self._at(self.args.blocks)
        finally:
            self.stop.set()
            await asyncio.gather(load, return_exceptions=True)
        async with nodes.client(2) as c:
            while await c.pending_tx_size():
                await asyncio.sleep(0.2)
            height = await c.block_number()
            sealers = await c.sealers()
        took = time.monotonic() - self.t0
        members = [nodes.c.node(i) for i in (1, 2, 3, 4)]
        agree = await nodes.heads_agree(members)
        say(
            f"  built {height:,} blocks in {took:.0f} s ({height / took:.0f} blocks/s); "
            f"heads identical on node1-4: {agree}; sealers now "
            + ", ".join(nodes.c.name_of(s) or s[:8] for s in sealers)
        )
        return {"height": height, "build_s": round(took, 1), "changes": self.changes,
                "heads_identical": agree}  # fmt: skip

    async def sync_one(self) -> dict[str, Any]:
        """add-node --observer on the idle chain, timed from the process start to synced."""
        nodes = self.nodes
        node = await nodes.new_node()
        block = await nodes.change(2, "addObserver", node)
        target = await nodes.head(2)
        samples: list[tuple[float, int]] = []
        t0 = time.monotonic()
        start = asyncio.create_task(nodes.start(node))
        up: float | None = None
        async with nodes.client(node.index, timeout=2.0) as c:
            while True:
                try:
                    h = await c.block_number()
                except (RpcTransportError, RpcError, OSError):
                    await asyncio.sleep(0.05)
                    continue
                now = time.monotonic() - t0
                up = now if up is None else up
                samples.append((now, h))
                if h >= target:
                    break
                await asyncio.sleep(0.1)
        await start
        took = samples[-1][0]
        first = next(((t, h) for t, h in samples if h > 0), samples[-1])
        async with nodes.client(node.index) as c, nodes.client(2) as ref:
            ok = (await c.get_block(target))["hash"] == (await ref.get_block(target))["hash"]
        metrics = await scrape_metrics(node.rpc_port)
        stats = {
            k.partition('"')[2].rstrip('"}'): int(v)
            for k, v in metrics.items()
            if k.startswith("ledgerlab_sync_total")
        }
        rpc_h = samples[0][1]
        spans = []
        edges = [0, *[c["block"] for c in self.changes], target]
        for a, b in itertools.pairwise(edges):
            ta, tb = _time_at(samples, a), _time_at(samples, b)
            if ta is not None and tb is not None and tb > ta:
                spans.append({"from": a, "to": b, "blocks_per_s": round((b - a) / (tb - ta))})
        nodes.stop(node.name)  # leave the next one the same peers
        return {
            "node": node.name,
            "observer_block": block,
            "target": target,
            "rpc_up_s": round(up or 0.0, 2),
            "height_at_rpc_up": rpc_h,
            "synced_s": round(took, 2),
            "blocks_per_s_from_start": round(target / took),
            "blocks_per_s_after_rpc_up": round((target - rpc_h) / (took - (up or 0.0)))
            if took > (up or 0)
            else None,
            "first_block_seen_s": round(first[0], 2),
            "spans": spans,
            "head_hash_matches": ok,
            "sync_stats": stats,
        }


def _time_at(samples: list[tuple[float, int]], height: int) -> float | None:
    """When ``height`` was reached, linearly between the two samples around it."""
    for (ta, ha), (tb, hb) in itertools.pairwise(samples):
        if ha <= height <= hb and hb > ha:
            return ta + (tb - ta) * (height - ha) / (hb - ha)
    return None


def report_catchup(r: dict[str, Any]) -> None:
    b = r["build"]
    say(
        f"\ncatch-up of a new observer over {b['height']:,} blocks (load average "
        f"{r['machine']['loadavg_before'][0]} before, {r['loadavg_after'][0]} after)"
    )
    say("  changes: " + "; ".join(f"{c['change']} @ {c['block']}" for c in b["changes"]))
    for s in r["syncs"]:
        spans = ", ".join(f"{x['from']}-{x['to']}: {x['blocks_per_s']}/s" for x in s["spans"])
        say(
            f"  {s['node']}: synced {s['target']:,} blocks in {s['synced_s']:.1f} s from process "
            f"start ({s['blocks_per_s_from_start']:,} blocks/s; RPC up at {s['rpc_up_s']:.1f} s "
            f"at height {s['height_at_rpc_up']}); head hash matches {s['head_hash_matches']}; "
            f"sync {s['sync_stats']}"
        )
        say(f"    by stretch: {spans}")
    if r["syncs"]:
        med = statistics.median(s["synced_s"] for s in r["syncs"])
        say(f"  median {med:.1f} s = {b['height'] / med:,.0f} blocks/s")


# ----------------------------------------------------------------------------- main


async def _part(args: argparse.Namespace, name: str, keep: list[Nodes]) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"ledgerlab-bench-{name}-")) / "chain"
    nodes = Nodes(root)
    keep.append(nodes)
    if name == "changes":
        say("part 1: commit throughput across membership changes")
        result = await ChangesRun(nodes, args).run()
        report_changes(result)
    else:
        say("part 2: catch-up of a new member over a history with membership changes")
        loadavg = [round(x, 2) for x in os.getloadavg()]
        run = CatchupRun(nodes, args)
        build = await run.build()
        syncs = []
        for _ in range(args.syncs):
            syncs.append(await run.sync_one())
            s = syncs[-1]
            say(f"  {s['node']} synced {s['target']:,} blocks in {s['synced_s']:.1f} s")
        result = {
            "machine": machine_info() | {"loadavg_before": loadavg},
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "build": build,
            "syncs": syncs,
        }
        report_catchup(result)
    nodes.stop_all()
    if not args.keep:
        shutil.rmtree(root.parent, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("changes", "catchup", "both"), default="both")
    parser.add_argument("--steady", type=float, default=8.0, help="seconds between changes")
    parser.add_argument(
        "--history", type=float, default=0.0, help="seconds of load before add-node (--steady)"
    )
    parser.add_argument(
        "--promote",
        choices=("add-node", "caught-up"),
        default="add-node",
        help="part 1: addSealer once add-node's wait ends (default), or once the new node "
        "is within one block of the live head",
    )
    parser.add_argument(
        "--txs",
        type=int,
        default=0,
        help="pre-signed transfers, part 1 (default: 8,000 per second the scenario lasts)",
    )
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--block-txs", type=int, default=1_000, help="tx_count_limit, part 1")
    parser.add_argument("--window", type=int, default=4_000, help="max in flight, part 1")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--conns", type=int, default=2, help="connections per node, part 1")
    parser.add_argument("--blocks", type=int, default=10_000, help="history length, part 2")
    parser.add_argument("--window-catchup", type=int, default=60, help="pending, part 2")
    parser.add_argument("--syncs", type=int, default=3, help="new members timed, part 2")
    parser.add_argument("--json", default=None, metavar="FILE")
    parser.add_argument("--keep", action="store_true", help="keep the chain folders")
    args = parser.parse_args(argv)

    m = machine_info()
    say(f"machine: {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}, "
        f"load average {m['loadavg_before'][0]}")  # fmt: skip
    started: list[Nodes] = []

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    results: dict[str, Any] = {}
    try:
        for name in ("changes", "catchup") if args.part == "both" else (args.part,):
            results[name] = asyncio.run(_part(args, name, started))
    finally:
        signal.signal(signal.SIGTERM, old)
        for nodes in started:
            nodes.stop_all()  # by pid; after a failure the folders stay for the logs
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
        say(f"results written to {args.json}")
    bad = results.get("changes", {})
    if bad and (
        bad["stall_over_timeout"]
        or bad["ran_out_of_txs_at_s"]
        or not bad["heads_identical"]
        or not bad["supply_ok"]
    ):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
