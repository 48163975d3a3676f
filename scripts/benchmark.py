"""The cluster benchmark behind ``ledgerlab bench``: real node processes, real JSON-RPC load.

Theory of operation
-------------------
1. *Chain*: a fresh chain directory (``scripts.launcher.layout.init_chain``, so the same
   certificates, genesis and configs as ``ledgerlab init``) on random free loopback ports,
   with ``tx_count_limit`` set from ``--block-txs``; N node processes are started and
   awaited with ``scripts.launcher.cluster.astart_nodes`` and stopped by pid at the end,
   whatever happened (the pids are ours; nothing is ended by name).
2. *Users*: ``--users`` DagTransfer accounts are created with ``userAdd`` and committed
   before anything is timed.
3. *Pre-signing* (client cost, not measured): K ``userTransfer`` transactions between
   random users, signed, hex-encoded and packed into ready-to-send JSON-RPC batch bodies
   (``--batch`` ``sendRawTransaction`` calls each), assigned round-robin to the nodes.
4. *Load*: ``--conns`` keep-alive HTTP connections per node post those bodies, either
   open-loop at ``--rate`` tx/s (each batch leaves at its due time, late or not) or
   closed-loop (``--rate 0``) with at most ``--window`` transactions submitted and not yet
   committed. A transaction's submit time is when its batch is written to the socket.
5. *Observation*: node0's blocks are followed (``getBlockNumber`` every 10 ms, then
   ``getBlockByNumber``), which gives every transaction's commit time as seen by the
   client, the blocks and their timestamps. Latency percentiles come from a sample of
   transactions (``--sample``) whose receipts are polled, in batches, on the node each was
   submitted to: submit to receipt visible.
6. *Checks*: every accepted transaction committed; all nodes at the same height with the
   same block hash and state root; the users' balances on every node add up to the minted
   supply (transfers move money, never create it); view changes counted from
   ``getConsensusStatus`` before and after.

Committed TPS is ``committed / (last commit seen - first submit)``; the chain's own view,
transactions over the span of block timestamps, is reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from scripts.errors import CommandError
from scripts.launcher import accounts, cluster, procs
from scripts.launcher.layout import DEFAULT_BROKER, Chain, init_chain
from scripts.launcher.load import (
    CommitTracker,
    TransferSigner,
    follow_blocks,
    hex_int,
    node_client,
    percentile,
    poll_until,
    read_balances,
    send_raw_body,
    wait_for_change,
    wait_until,
)

INITIAL_BALANCE = 1_000_000_000
BLOCK_LIMIT_MARGIN = 990
"""Pre-signed transfers get ``block_limit = node0's head + 990``: valid for almost the
txpool's whole 1,000-block window, yet still accepted by a node a few blocks behind node0
(a limit of head + 1000 is outside the window of a node one block behind)."""
FOLLOW_INTERVAL = 0.01
RECEIPT_POLL_INTERVAL = 0.02
RECEIPT_POLL_MAX = 200  # receipts asked per node per poll


class BenchFailed(CommandError):
    """The benchmark ran but the cluster did not do what it must (or could not start)."""


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """What one benchmark run does (the ``ledgerlab bench`` flags)."""

    nodes: int = 4
    txs: int = 20_000
    users: int = 1_000
    transport: str = "tcp"
    broker: str = DEFAULT_BROKER
    block_txs: int = 1_000
    rate: float = 0.0  # tx/s offered (open loop); 0 = closed loop with ``window``
    window: int = 0  # closed loop: max submitted-not-committed txs (0 = 4 blocks' worth)
    batch: int = 200  # sendRawTransaction calls per JSON-RPC batch
    conns: int = 2  # keep-alive connections per node
    sample: int = 400  # receipts sampled for latency
    timeout: float = 60.0  # give up when nothing commits for this long
    seed: int = 1
    profile: Path | None = None  # py-spy raw profiles of every node into this folder

    @property
    def in_flight_limit(self) -> int:
        if self.rate > 0:
            return 1 << 62
        return self.window or 4 * self.block_txs

    def check(self) -> None:
        """A :class:`CommandError` for values that cannot make a run."""
        if not 1 <= self.nodes <= 32:
            raise CommandError(f"--nodes must be 1..32, got {self.nodes}")
        if self.txs < 1:
            raise CommandError(f"--txs must be at least 1, got {self.txs}")
        if self.users < 2:
            raise CommandError(f"--users must be at least 2, got {self.users}")
        if self.transport not in ("tcp", "mqtt"):
            raise CommandError(f"--transport must be tcp or mqtt, got {self.transport!r}")
        if not 1 <= self.block_txs <= 10_000:
            raise CommandError(f"--block-txs must be 1..10000, got {self.block_txs}")
        if self.rate < 0:
            raise CommandError(f"--rate must be >= 0 (0 = closed loop), got {self.rate}")
        if self.window < 0 or not 1 <= self.batch <= 5_000 or not 1 <= self.conns <= 64:
            raise CommandError("--window >= 0, --batch 1..5000 and --conns 1..64, please")
        blocks = -(-self.txs // self.block_txs) + -(-self.users // self.block_txs)
        if blocks > BLOCK_LIMIT_MARGIN - 100:
            raise CommandError(
                f"{self.txs} transfers at {self.block_txs} per block need ~{blocks} blocks, "
                f"more than pre-signed transactions stay valid ({BLOCK_LIMIT_MARGIN} blocks)",
                hint="raise --block-txs or lower --txs",
            )


@dataclass(slots=True)
class _Tx:
    hash: str
    node: int
    submitted: float = 0.0
    committed: float = 0.0
    receipt: float = 0.0
    sampled: bool = False


@dataclass(slots=True)
class _Batch:
    node: int
    body: bytes
    txs: list[_Tx]


@dataclass(slots=True)
class BenchState:
    """What the run has seen so far (read by the progress display)."""

    total: int = 0
    submitted: int = 0
    accepted: int = 0
    committed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    head: int = 0
    blocks: list[tuple[int, int, int, float]] = field(default_factory=list)
    # (number, timestamp ms, bench txs, seen at)
    phase: str = "starting"
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def in_flight(self) -> int:
        return self.accepted - self.committed


def machine_info() -> dict[str, Any]:
    """CPU model, core count and load, so a figure is never quoted without its machine."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load],
    }


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class _Usage:
    """CPU seconds so far of the watched processes (None when unknown) and of this one."""

    processes: dict[str, float | None]
    own: os.times_result

    @classmethod
    def now(cls, watched: dict[str, int]) -> _Usage:
        return cls({name: cpu_seconds(pid) for name, pid in watched.items()}, os.times())

    def since(self, before: _Usage) -> dict[str, float]:
        """CPU seconds per process from ``before`` to this, and ``loadgen`` for this one."""
        node_cpu = {
            name: round(self.processes[name] - used, 2)  # type: ignore[operator]
            for name, used in before.processes.items()
            if used is not None and self.processes.get(name) is not None
        }
        own = (self.own.user + self.own.system) - (before.own.user + before.own.system)
        return {**node_cpu, "loadgen": round(own, 2)}


def _view_counts(before: list[Any], after: list[Any]) -> dict[str, Any]:
    """View changes over the run from every node's ``getConsensusStatus``."""
    return {
        "view_changes": max(
            int(a["viewChanges"]) - int(b["viewChanges"])
            for a, b in zip(after, before, strict=True)
        ),
        "views": max(int(a["currentView"]) for a in after)
        - max(int(b["currentView"]) for b in before),
        "final_views": [int(a["currentView"]) for a in after],
    }


def _churn(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Per node, the P2P event counters that grew, by how much (nodes without any left out)."""
    return {
        name: delta
        for name, events in after.items()
        if (
            delta := {
                k: v - before.get(name, {}).get(k, 0)
                for k, v in events.items()
                if v > before.get(name, {}).get(k, 0)
            }
        )
    }


async def scrape_metrics(port: int, timeout: float = 5.0) -> dict[str, float]:
    """``GET /metrics`` of one node as ``{"name{label=\"x\"}": value}`` (empty on failure)."""
    out: dict[str, float] = {}
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            raw = await reader.read()
            writer.close()
    except (OSError, TimeoutError):
        return out
    for line in raw.partition(b"\r\n\r\n")[2].decode(errors="replace").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


def _ms_percentiles(values: Sequence[float]) -> dict[str, Any]:
    """Sample count and p50/p90/p99 of ``values`` (seconds) in milliseconds."""
    out: dict[str, Any] = {"samples": len(values)}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        out[name] = percentile(values, q) * 1000
    return out


class Benchmark:
    """One run of :class:`BenchPlan` against a chain it creates in ``root``."""

    def __init__(
        self,
        plan: BenchPlan,
        root: Path,
        *,
        on_change: Callable[[BenchState], None] | None = None,
        say: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.plan = plan
        self.root = root
        self.on_change = on_change
        self.say = say
        self.rng = random.Random(plan.seed)
        self.chain: Chain | None = None
        self.pids: dict[str, int] = {}
        self.state = BenchState(total=plan.txs)
        self.txs: list[_Tx] = []
        self.by_hash: dict[str, _Tx] = {}
        self.users: list[str] = []
        self.signer: TransferSigner | None = None
        self._profilers: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ plumbing

    def _client(self, index: int, timeout: float = 30.0) -> AsyncRpcClient:
        assert self.chain is not None
        return node_client(self.chain, index, timeout=timeout)

    def _changed(self) -> None:
        self.state.changed.set()
        if self.on_change is not None:
            self.on_change(self.state)

    async def _on_all(self, method: str, params: Sequence[Any]) -> list[Any]:
        """``method`` on every node (one short-lived connection each)."""
        assert self.chain is not None

        async def one(i: int) -> Any:
            async with self._client(i, timeout=10.0) as c:
                return await c.request(method, params)

        return await asyncio.gather(*(one(n.index) for n in self.chain.nodes))

    # ------------------------------------------------------------------ phases

    async def start_chain(self) -> None:
        plan = self.plan
        rng = random.Random()
        p2p = procs.free_port_base(plan.nodes, rng)
        rpc = procs.free_port_base(plan.nodes, rng, avoid=range(p2p, p2p + plan.nodes))
        self.state.phase = "creating the chain"
        self.chain = init_chain(
            self.root,
            nodes=plan.nodes,
            transport=plan.transport,
            broker=plan.broker,
            p2p_port=p2p,
            rpc_port=rpc,
            tx_count_limit=plan.block_txs,
        )
        key = accounts.load_key(self.chain.accounts_dir / "admin.key")
        self.signer = TransferSigner(self.chain, key)
        self.say(
            f"chain in {self.root}: {plan.nodes} sealers over {plan.transport}"
            + (f" via {plan.broker}" if plan.transport == "mqtt" else "")
            + f", P2P {p2p}+i, RPC {rpc}+i, tx_count_limit {plan.block_txs}"
        )
        self.state.phase = f"starting {plan.nodes} node processes"
        self._changed()
        t0 = time.monotonic()
        # all-or-nothing: if it fails, it has already stopped what it started
        result = await cluster.astart_nodes(self.chain, timeout=60)
        self.pids = dict(result.started)
        self.say(f"{plan.nodes} node processes up and connected in {time.monotonic() - t0:.1f} s")

    async def create_users(self) -> None:
        plan = self.plan
        st = self.state
        st.phase = f"creating {plan.users:,} users"
        self._changed()
        assert self.chain is not None and self.signer is not None
        async with self._client(0) as c:
            head = await c.block_number()
        self.users = [f"u{i:05d}" for i in range(plan.users)]
        adds = [
            self.signer.sign("userAdd", [u, INITIAL_BALANCE], head + BLOCK_LIMIT_MARGIN)
            for u in self.users
        ]
        hashes = [h for h, _ in adds]
        tracker = CommitTracker(head=head)  # from before the first submission: none is missed
        follower = asyncio.create_task(
            follow_blocks(self.chain, head, tracker.on_block, interval=0.05, timeout=30.0)
        )
        try:
            async with self._client(0) as c:
                for start in range(0, len(adds), plan.batch):
                    chunk = adds[start : start + plan.batch]
                    results = await c.send_raw_batch([raw for _, raw in chunk])
                    for res in results:
                        if isinstance(res, RpcError):
                            raise BenchFailed(f"userAdd refused: {res.reason or res.message}")
            done = await wait_until(
                lambda: tracker.all_committed(hashes), tracker.changed, plan.timeout
            )
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        if not done:
            raise BenchFailed(
                f"creating users: {plan.users - tracker.count_committed(hashes)} of {plan.users} "
                f"userAdd not committed after {plan.timeout:.0f} s",
                hint=f"node logs are in {self.root}",
            )
        st.head = tracker.head
        self.say(f"created {plan.users:,} users (block {st.head})")

    def presign(self) -> list[_Batch]:
        """Sign every transfer and build the JSON-RPC bodies (not timed)."""
        plan = self.plan
        self.state.phase = f"signing {plan.txs:,} transfers"
        self._changed()
        t0 = time.monotonic()
        assert self.chain is not None and self.signer is not None
        limit = self.state.head + BLOCK_LIMIT_MARGIN
        signed = [self.signer.transfer(self.rng, self.users, limit) for _ in range(plan.txs)]
        group = self.chain.group_id
        batches = []
        for b, start in enumerate(range(0, plan.txs, plan.batch)):
            chunk = signed[start : start + plan.batch]
            node = b % plan.nodes
            txs = [_Tx(h, node) for h, _ in chunk]
            batches.append(_Batch(node, send_raw_body(group, [raw for _, raw in chunk]), txs))
            self.txs += txs
        step = max(1, plan.txs // max(1, plan.sample)) if plan.sample else 0
        if step:
            for tx in self.txs[::step][: plan.sample]:
                tx.sampled = True
        self.by_hash = {tx.hash: tx for tx in self.txs}
        self.say(
            f"signed {plan.txs:,} transfers in {time.monotonic() - t0:.1f} s "
            f"({len(batches)} batches of {plan.batch}; signing is client cost, not timed)"
        )
        return batches

    # ------------------------------------------------------------------ the timed part

    async def _follow(self) -> None:
        """Commit times of our transactions from node0's blocks."""
        assert self.chain is not None
        await follow_blocks(
            self.chain, self.state.head, self._on_block, interval=FOLLOW_INTERVAL, timeout=30.0
        )

    def _on_block(self, number: int, block: dict[str, Any], seen: float) -> None:
        st = self.state
        ours = 0
        for h in block.get("transactions", []):
            tx = self.by_hash.get(str(h))
            if tx is not None and not tx.committed:
                tx.committed = seen
                ours += 1
        st.head = number
        st.committed += ours
        st.blocks.append((number, hex_int(block["timestamp"]), ours, seen))
        self._changed()

    async def _poll_receipts(self, node: int) -> None:
        """Receipt-visible times of the sampled transactions submitted to ``node``."""
        waiting = [tx for tx in self.txs if tx.sampled and tx.node == node]
        async with self._client(node) as c:
            while waiting:
                now_sent = [tx for tx in waiting if tx.submitted][:RECEIPT_POLL_MAX]
                if now_sent:
                    try:
                        results = await c.batch(
                            [("getTransactionReceipt", [c.group, tx.hash]) for tx in now_sent]
                        )
                    except (RpcTransportError, RpcError):
                        results = []
                    now = time.monotonic()
                    for tx, res in zip(now_sent, results, strict=False):
                        if isinstance(res, dict):
                            tx.receipt = now
                    waiting = [tx for tx in waiting if not tx.receipt]
                await asyncio.sleep(RECEIPT_POLL_INTERVAL)

    async def _send(self, queue: asyncio.Queue[_Batch | None], node: int, t0: float) -> None:
        plan = self.plan
        st = self.state
        limit = plan.in_flight_limit
        per_tx = 1.0 / plan.rate if plan.rate > 0 else 0.0
        async with self._client(node) as c:
            while True:
                batch = await queue.get()
                if batch is None:
                    return
                n = len(batch.txs)
                if per_tx:
                    due = t0 + (st.submitted + n) * per_tx
                    st.submitted += n  # reserve the slot before sleeping
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                else:
                    while st.in_flight + n > limit and st.in_flight > 0:
                        await wait_for_change(st.changed, 0.05)
                    st.submitted += n
                    st.accepted += n  # counted in flight until the answer says otherwise
                now = time.monotonic()
                for tx in batch.txs:
                    tx.submitted = now
                try:
                    payload = await c.post(batch.body)
                except (RpcTransportError, RpcError) as exc:
                    raise BenchFailed(f"node{node} refused a batch: {exc}") from None
                answers = json.loads(payload or b"[]")
                if per_tx:
                    st.accepted += n
                for answer in answers if isinstance(answers, list) else []:
                    if "error" in answer:
                        tx = batch.txs[int(answer.get("id", 0))]
                        err = answer["error"]
                        data = err.get("data")
                        reason = (data.get("reason") if isinstance(data, dict) else None) or str(
                            err.get("message", err.get("code"))
                        )
                        st.rejected[reason] += 1
                        st.accepted -= 1
                        tx.submitted = 0.0
                        tx.sampled = False
                self._changed()

    async def load(self, batches: list[_Batch]) -> dict[str, Any]:
        """Submit everything and wait until it has committed; the timed part."""
        assert self.chain is not None
        self.state.phase = self._load_phase()
        views_before = await self._on_all("getConsensusStatus", [self.chain.group_id])
        churn_before = await self._p2p_events()
        watched = {**self.pids, **({"mosquitto": p} if (p := _broker_pid(self.plan)) else {})}
        usage_before = _Usage.now(watched)
        self._start_profilers()
        t0, submit_done, done, usage_after = await self._timed(batches, watched)
        views_after = await self._on_all("getConsensusStatus", [self.chain.group_id])
        churn_after = await self._p2p_events()
        return {
            "t0": t0,
            "submit_seconds": submit_done - t0,
            "wall": done - t0,
            **_view_counts(views_before, views_after),
            "p2p_events": _churn(churn_before, churn_after),
            "cpu": usage_after.since(usage_before),
        }

    def _load_phase(self) -> str:
        plan = self.plan
        return (
            f"offering {plan.rate:,.0f} tx/s (open loop)"
            if plan.rate > 0
            else f"closed loop, at most {plan.in_flight_limit:,} txs in flight"
        )

    def _queues(self, batches: list[_Batch]) -> list[asyncio.Queue[_Batch | None]]:
        """One queue of batches per node, closed by one None per sending connection."""
        assert self.chain is not None
        queues: list[asyncio.Queue[_Batch | None]] = [asyncio.Queue() for _ in self.chain.nodes]
        for b in batches:
            queues[b.node].put_nowait(b)
        for q in queues:
            for _ in range(self.plan.conns):
                q.put_nowait(None)
        return queues

    async def _timed(
        self, batches: list[_Batch], watched: dict[str, int]
    ) -> tuple[float, float, float, _Usage]:
        """Send every batch and wait for the commits (the profilers are stopped after).

        Returns the start, the end of submission, the last commit, and the CPU time of the
        ``watched`` processes and of this one by then.
        """
        assert self.chain is not None
        queues = self._queues(batches)
        helpers = [asyncio.create_task(self._follow(), name="follow")]
        helpers += [
            asyncio.create_task(self._poll_receipts(n.index), name=f"receipts{n.index}")
            for n in self.chain.nodes
        ]
        t0 = time.monotonic()
        senders = [
            asyncio.create_task(self._send(queues[n.index], n.index, t0), name=f"send{n.index}")
            for n in self.chain.nodes
            for _ in range(self.plan.conns)
        ]
        try:
            await asyncio.gather(*senders)
            submit_done = time.monotonic()
            await self._wait_committed()
            done = time.monotonic()
            usage = _Usage.now(watched)
            # let the receipt pollers see the last receipts (bounded wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*helpers[1:]), 5.0)
        finally:
            for task in senders + helpers:
                task.cancel()
            await asyncio.gather(*senders, *helpers, return_exceptions=True)
            self._stop_profilers()
        return t0, submit_done, done, usage

    async def _wait_committed(self) -> None:
        """Until every accepted transfer has committed; fail after plan.timeout without one."""
        st = self.state
        last_progress, last_count = time.monotonic(), st.committed
        while st.committed < st.accepted:
            if st.committed != last_count:
                last_progress, last_count = time.monotonic(), st.committed
            elif time.monotonic() - last_progress > self.plan.timeout:
                raise BenchFailed(
                    f"only {st.committed:,} of {st.accepted:,} accepted transfers committed; "
                    f"nothing new for {self.plan.timeout:.0f} s",
                    hint=f"node logs are in {self.root} (kept)",
                )
            await wait_for_change(st.changed, 0.2)

    async def _p2p_events(self) -> dict[str, dict[str, int]]:
        """Per node: P2P disconnects and dropped frames by reason (from /metrics)."""
        assert self.chain is not None
        out: dict[str, dict[str, int]] = {}
        for node in self.chain.nodes:
            metrics = await scrape_metrics(node.rpc_port)
            out[node.name] = {
                ("disconnect " if "disconnects" in name else "dropped ")
                + name.partition('"')[2].rstrip('"}'): int(value)
                for name, value in metrics.items()
                if name.startswith(
                    (
                        "ledgerlab_p2p_disconnects_total",
                        "ledgerlab_p2p_dropped_total",
                        "ledgerlab_frames_dropped",
                    )
                )
            }
        return out

    # ------------------------------------------------------------------ profiling

    def _start_profilers(self) -> None:
        if self.plan.profile is None:
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.plan.profile.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.plan.profile / f"{name}.txt"
            self._profilers.append(
                subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--format", "raw", "-o", str(out)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def _stop_profilers(self) -> None:
        for p in self._profilers:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGINT)
        for p in self._profilers:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._profilers.clear()

    # ------------------------------------------------------------------ checks

    async def check(self) -> dict[str, Any]:
        """Same head on every node, and the minted supply intact on every node."""
        assert self.chain is not None
        st = self.state
        st.phase = "checking heads and total supply on every node"
        self._changed()
        group = self.chain.group_id
        heights: list[int] = []

        async def same_height() -> bool:
            nonlocal heights
            heights = [hex_int(h) for h in await self._on_all("getBlockNumber", [group])]
            return len(set(heights)) == 1

        await poll_until(same_height, 15)
        common = min(heights)
        blocks = await self._on_all("getBlockByNumber", [group, common, False])
        heads = {(b["hash"], b["stateRoot"]) for b in blocks}
        supply: list[int] = []
        for node in self.chain.nodes:
            async with self._client(node.index) as c:
                balances = await read_balances(c, self.users)
            if None in balances:
                user = self.users[balances.index(None)]
                raise BenchFailed(f"userBalance({user!r}) failed on {node.name}")
            supply.append(sum(b for b in balances if b is not None))
        return {
            "heights": heights,
            "common_height": common,
            "head_hash": blocks[0]["hash"],
            "state_root": blocks[0]["stateRoot"],
            "heads_identical": len(set(heights)) == 1 and len(heads) == 1,
            "supply": supply,
            "expected_supply": INITIAL_BALANCE * len(self.users),
        }

    # ------------------------------------------------------------------ whole run

    async def run(self) -> dict[str, Any]:
        await self.start_chain()
        await self.create_users()
        batches = self.presign()
        timing = await self.load(batches)
        checks = await self.check()
        return self.summarise(timing, checks)

    def summarise(self, timing: dict[str, Any], checks: dict[str, Any]) -> dict[str, Any]:
        plan, st = self.plan, self.state
        t0 = timing["t0"]
        committed = [tx for tx in self.txs if tx.committed]
        first_submit = min((tx.submitted for tx in self.txs if tx.submitted), default=t0)
        last_commit = max((tx.committed for tx in committed), default=first_submit)
        span = max(last_commit - first_submit, 1e-9)
        ours = [b for b in st.blocks if b[2]]
        chain_tps = None
        if len(ours) >= 2:
            ms = ours[-1][1] - ours[0][1]
            chain_tps = sum(b[2] for b in ours[1:]) / (ms / 1000) if ms > 0 else None
        sampled = [tx.receipt - tx.submitted for tx in self.txs if tx.receipt and tx.submitted]
        seen = [tx.committed - tx.submitted for tx in committed if tx.submitted]
        expected = checks["expected_supply"]
        return {
            "plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()},
            "machine": machine_info(),
            "submitted": plan.txs,
            "accepted": st.accepted,
            "rejected": dict(st.rejected),
            "committed": len(committed),
            "tps": len(committed) / span,
            "chain_tps": chain_tps,
            "seconds": span,
            "submit_seconds": timing["submit_seconds"],
            "offered_tps": plan.txs / timing["submit_seconds"]
            if timing["submit_seconds"] > 0
            else None,
            "latency_ms": {
                **_ms_percentiles(sampled),
                "max": max(sampled, default=0.0) * 1000,
            },
            "commit_seen_ms": _ms_percentiles(seen),
            "blocks": len(ours),
            "block_log": [  # [number, txs, seen (ms after the first submit), timestamp delta]
                [b[0], b[2], round((b[3] - first_submit) * 1000), b[1] - ours[0][1]] for b in ours
            ],
            "txs_per_block": len(committed) / len(ours) if ours else 0.0,
            "view_changes": timing["view_changes"],
            "views_advanced": timing["views"],
            "final_views": timing["final_views"],
            "p2p_events": timing["p2p_events"],
            "cpu_seconds": timing["cpu"],
            "node_cpu_us_per_tx": _node_cpu_per_tx(timing["cpu"], self.pids, len(committed)),
            "cpu_wall_seconds": timing["wall"],
            **checks,
            "supply_ok": all(s == expected for s in checks["supply"]),
            "ok": len(committed) == st.accepted == plan.txs
            and checks["heads_identical"]
            and all(s == expected for s in checks["supply"]),
        }

    async def aclose(self) -> None:
        self._stop_profilers()

    def stop_nodes(self) -> None:
        """Stop every node process this run started (by pid) and forget the pid files."""
        if self.pids:
            procs.stop_pids(list(self.pids.values()), timeout=10.0)
        if self.chain is not None:
            for n in self.chain.nodes:
                if n.name in self.pids:
                    n.pid_path.unlink(missing_ok=True)
        self.pids = {}


def _broker_pid(plan: BenchPlan) -> int | None:
    """The local Mosquitto's pid (to report its CPU), when the run goes through one."""
    if plan.transport != "mqtt" or not any(
        host in plan.broker for host in ("127.0.0.1", "localhost")
    ):
        return None
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if (entry / "comm").read_text().strip() == "mosquitto":
                        return int(entry.name)
    return None


def _node_cpu_per_tx(cpu: dict[str, float], pids: dict[str, int], txs: int) -> float | None:
    """Mean CPU microseconds one node process spent per committed transaction."""
    nodes = [v for k, v in cpu.items() if k in pids]
    if not nodes or not txs:
        return None
    return sum(nodes) / len(nodes) / txs * 1e6
