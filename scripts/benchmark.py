"""The cluster benchmark behind ``ledgerlab bench``: real node processes, real JSON-RPC load.

Theory of operation
-------------------
1. *Chain*: either a fresh chain directory (``scripts.launcher.layout.init_chain``, so the
   same certificates, genesis and configs as ``ledgerlab init``) on random free loopback
   ports, with ``tx_count_limit`` from ``--block-txs``, whose N node processes are started
   and stopped by pid at the end whatever happened; or, with ``--dir`` naming a chain
   directory, a chain someone else runs (any hosts its ``chain.toml`` names), which is
   used as it is and left running.
2. *Users*: the load format's setup transactions (``--users`` DagTransfer accounts,
   :mod:`scripts.bench_load`) are committed before anything is timed.
3. *Ceiling*: right before the load, this machine's minimal per-transaction work is timed
   (:mod:`scripts.bench_ceiling`); ``ceiling_tps = cores / (nodes x cost)`` and
   ``ratio = committed_tps / ceiling_tps`` is the headline figure.
4. *Pre-signing* (client cost, not measured): the load transactions, signed and packed
   into ready-to-send JSON-RPC batch bodies (``--batch`` ``sendRawTransaction`` calls
   each), assigned round-robin to the nodes.
5. *Load*: ``--conns`` keep-alive HTTP connections per node post those bodies, either
   open-loop at a rate (each batch leaves at its due time, late or not) or closed-loop
   with at most ``--window`` transactions submitted and not yet committed; ``--duration``
   stops submitting after that many seconds, ``--warmup`` leaves the first seconds out of
   every figure. A transaction's submit time is when its batch is written to the socket.
6. *Observation*: node0's blocks are followed (``getBlockNumber`` every 10 ms, then
   ``getBlockByNumber``), which gives every transaction's commit time as seen by the
   client: latency is submit -> commit seen, for every transaction. Receipts of a sample
   (``--sample``) are polled on the node each was sent to, as a client would see them.
7. *Saturation* (``--max``): a closed-loop probe, then open-loop steps at rising
   multiples of its rate until a step is refused, falls behind, or its p99 passes
   ``--max-p99``; the best sustained rate is ``saturation_tps``, then one more step at
   90 % of it gives the p99 there (:mod:`scripts.bench_saturation`).
8. *Checks*: every accepted transaction committed; all nodes at the same height with the
   same block hash and state root; the format's conserved total (users' balances) intact
   on every node; view changes counted from ``getConsensusStatus`` before and after.

Committed TPS is ``committed / (last commit seen - first submit)`` (from the end of the
warm-up with ``--warmup``); the chain's own view, transactions over the span of block
timestamps, is reported beside it.
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from consensus.crypto import KeyPair
from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from node.runtime.config import ConfigError, NodeConfig
from node.runtime.tracing import FLUSH_EVERY_US
from scripts import bench_ceiling, bench_phases, bench_saturation
from scripts.bench_figures import cdf_ms, ms_percentiles, quarters, timeline
from scripts.bench_load import FORMATS, LoadFormat
from scripts.errors import CommandError
from scripts.launcher import accounts, cluster, procs
from scripts.launcher.layout import DEFAULT_BROKER, Chain, init_chain, load_chain
from scripts.launcher.load import (
    CommitTracker,
    Signed,
    follow_blocks,
    hex_int,
    node_client,
    poll_until,
    send_raw_body,
    wait_for_change,
    wait_until,
)
from scripts.trace.live import remembers, trace_env, trace_path

BLOCK_LIMIT_MARGIN = 990
"""Pre-signed transfers get ``block_limit = node0's head + 990``: valid for almost the
txpool's whole 1,000-block window, yet still accepted by a node a few blocks behind node0
(a limit of head + 1000 is outside the window of a node one block behind)."""
FOLLOW_INTERVAL = 0.01
RECEIPT_POLL_INTERVAL = 0.02
RECEIPT_POLL_MAX = 200  # receipts asked per node per poll
POOL_FULL = "TxPoolIsFull"
DURATION_HEADROOM = 1.3
"""``--duration`` without a rate pre-signs ceiling x duration x this: the ceiling bounds
what can commit, so the load never runs out before the time is up."""
PRESIGN_CAP = 300_000
"""At most this many transactions are pre-signed for one round (~1 KB each in the client)."""
SIGN_CHUNK = 500
"""Pre-signing gives the event loop a turn after each this many signatures (~30-70 ms)."""


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
    duration: float = 0.0  # seconds of load instead of ``txs`` (0 = send ``txs``)
    warmup: float = 0.0  # first seconds of the load left out of the figures
    saturate: bool = False  # --max: search the saturation rate
    step_seconds: float = 5.0  # --max: seconds per open-loop step
    max_p99_ms: float = 1_000.0  # --max: a step whose p99 passes this is past saturation
    attach: Path | None = None  # --dir: a running chain to load instead of starting one
    cores: int = 0  # cores the nodes have (0 = their CPU affinity, measured)
    fmt: str = "dag"  # load format (scripts.bench_load.FORMATS)
    pool_txs: int = 0  # txpool capacity of the nodes it starts (0 = the node default)
    ceiling_txs: int = bench_ceiling.DEFAULT_TXS
    phases: bool = False  # --phases: the nodes trace; time each consensus phase per round

    def in_flight_limit(self, rate: float) -> int:
        if rate > 0:
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
        if self.duration < 0 or self.warmup < 0:
            raise CommandError("--duration and --warmup must be >= 0 seconds")
        if self.duration and self.warmup >= self.duration:
            raise CommandError(
                f"--warmup {self.warmup:g} s leaves nothing of --duration {self.duration:g} s"
            )
        if self.saturate and self.rate:
            raise CommandError("--max searches the rate itself: leave out --rate")
        if self.step_seconds <= 0 or self.max_p99_ms <= 0 or self.cores < 0:
            raise CommandError("--step, --max-p99 and --cores must be positive")
        if self.fmt not in FORMATS:
            raise CommandError(f"--format must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        if self.pool_txs < 0:
            raise CommandError(f"--pool-txs must be >= 0, got {self.pool_txs}")
        if not self.duration and not self.saturate:
            self.check_blocks(self.txs, self.block_txs)

    def check_blocks(self, txs: int, block_txs: int) -> None:
        """Refuse a load that cannot commit before its pre-signed block_limit passes."""
        blocks = -(-txs // block_txs) + -(-self.users // block_txs)
        if blocks > BLOCK_LIMIT_MARGIN - 100:
            raise CommandError(
                f"{txs} transfers at {block_txs} per block need ~{blocks} blocks, "
                f"more than pre-signed transactions stay valid ({BLOCK_LIMIT_MARGIN} blocks)",
                hint="raise --block-txs or lower --txs / --duration",
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
    """What the current load round has seen so far (read by the progress display)."""

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


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``) in MiB, None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        return None
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
    """View changes over the round from every node's ``getConsensusStatus``."""
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


async def scrape_metrics(
    port: int, timeout: float = 5.0, host: str = "127.0.0.1"
) -> dict[str, float]:
    """``GET /metrics`` of one node as ``{"name{label=\"x\"}": value}`` (empty on failure)."""
    out: dict[str, float] = {}
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
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


def signing_key(chain: Chain) -> KeyPair:
    """A key the chain's genesis lets spend DagTransfer load (see docs/performance.md).

    Open mode (no asset admins): the chain's ``accounts/admin.key`` if present, else a
    fresh throw-away key. Permissioned: the first key in ``accounts/`` that genesis names
    as an asset admin.
    """
    genesis = chain.genesis() if chain.genesis_path.is_file() else None
    admins = set(genesis.asset_admins) if genesis is not None else set()
    if not admins and genesis is not None:
        admin = chain.accounts_dir / "admin.key"
        return accounts.load_key(admin) if admin.is_file() else KeyPair.generate()
    keys = accounts.list_accounts(chain.accounts_dir) if chain.accounts_dir.is_dir() else []
    for _name, key in keys:
        if key.address in admins:
            return key
    raise BenchFailed(
        f"no key in {chain.accounts_dir} may create DagTransfer users on this chain",
        hint="permissioned genesis: put an asset admin's key there (ledgerlab accounts); "
        "open mode needs genesis.toml in the chain directory",
    )


class Benchmark:
    """One run of :class:`BenchPlan`: against a chain it creates in ``root``, or the
    running chain at ``plan.attach``."""

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
        self.pids: dict[str, int] = {}  # node processes this run started
        self.node_pids: dict[str, int] = {}  # every node process on this host (watched)
        self.state = BenchState(total=plan.txs)
        self.txs: list[_Tx] = []
        self.by_hash: dict[str, _Tx] = {}
        self.load_format: LoadFormat | None = None
        self.block_txs = plan.block_txs
        self.ceiling: bench_ceiling.Ceiling | None = None
        self.ceiling_after: bench_ceiling.Ceiling | None = None
        self.rounds: list[dict[str, Any]] = []
        self._profilers: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ plumbing

    @property
    def nodes(self) -> int:
        return len(self.chain.nodes) if self.chain is not None else self.plan.nodes

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

    # ------------------------------------------------------------------ the chain

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
            chain_id="1" if plan.fmt == "fisco" else "chain0",  # FISCO clients' ids
            group_id="1" if plan.fmt == "fisco" else "group0",
        )
        if plan.pool_txs:
            self._set_pool_capacity(plan.pool_txs)
        self._make_load(signing_key(self.chain))
        self.say(
            f"chain in {self.root}: {plan.nodes} sealers over {plan.transport}"
            + (f" via {plan.broker}" if plan.transport == "mqtt" else "")
            + f", P2P {p2p}+i, RPC {rpc}+i, tx_count_limit {plan.block_txs}"
            + (f", txpool capacity {plan.pool_txs:,}" if plan.pool_txs else "")
        )
        self.state.phase = f"starting {plan.nodes} node processes"
        self._changed()
        t0 = time.monotonic()
        # all-or-nothing: if it fails, it has already stopped what it started
        env = trace_env if plan.phases else None  # the traces --phases reads
        result = await cluster.astart_nodes(self.chain, timeout=60, env=env)
        self.pids = dict(result.started)
        self.node_pids = dict(self.pids)
        self.say(f"{plan.nodes} node processes up and connected in {time.monotonic() - t0:.1f} s")

    def _set_pool_capacity(self, capacity: int) -> None:
        assert self.chain is not None
        for node in self.chain.nodes:
            try:
                config = replace(NodeConfig.load(node.config_path), txpool_capacity=capacity)
            except ConfigError as exc:
                raise BenchFailed(f"--pool-txs {capacity}: {exc}") from None
            node.config_path.write_text(config.to_toml(), encoding="utf-8")

    def _make_load(self, key: KeyPair) -> None:
        assert self.chain is not None
        self.load_format = FORMATS[self.plan.fmt](self.chain, key, self.plan.users)

    async def attach_chain(self) -> None:
        """Use the running chain at ``plan.attach``: every node must answer."""
        assert self.plan.attach is not None
        self.chain = chain = load_chain(self.plan.attach)
        untraced = [n.name for n in chain.nodes if not remembers(n)]
        if self.plan.phases and untraced:
            raise CommandError(
                f"--phases reads the nodes' traces, and {', '.join(untraced)} do not trace",
                hint=f"restart the chain with tracing on: ledgerlab up --dir {chain.root} --trace",
            )
        self._make_load(signing_key(chain))
        probes = await asyncio.gather(*(cluster.probe(n, chain.group_id, 5.0) for n in chain.nodes))
        down = [n.name for n, p in zip(chain.nodes, probes, strict=True) if p is None]
        if down:
            raise BenchFailed(
                f"{', '.join(down)} of {chain.root} do not answer JSON-RPC",
                hint=f"start them (ledgerlab up --dir {chain.root}) or check the addresses "
                "in chain.toml",
            )
        local = procs.running_nodes(chain)
        self.node_pids = {chain.node(i).name: pid for i, pid in local.items()}
        async with self._client(0) as c:
            limit = await c.request("getSystemConfigByKey", [chain.group_id, "tx_count_limit"])
        self.block_txs = int(limit)
        self.say(
            f"attached to {chain.root}: {len(chain.nodes)} nodes over {chain.transport}, "
            f"tx_count_limit {self.block_txs}; {len(local)} node process(es) on this host "
            "(CPU and memory are reported for those)"
        )

    # ------------------------------------------------------------------ users, ceiling

    async def create_users(self) -> None:
        plan = self.plan
        st = self.state
        st.phase = f"creating {plan.users:,} users"
        self._changed()
        assert self.chain is not None and self.load_format is not None
        async with self._client(0) as c:
            head = await c.block_number()
        adds = self.load_format.setup_txs(head + BLOCK_LIMIT_MARGIN)
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
                f"creating users: {len(adds) - tracker.count_committed(hashes)} of {len(adds)} "
                f"setup transactions not committed after {plan.timeout:.0f} s",
                hint=f"node logs are in {self.root}",
            )
        st.head = tracker.head
        self.say(f"created {plan.users:,} users (block {st.head})")

    async def measure_ceiling(self) -> bench_ceiling.Ceiling:
        """Time the minimal per-tx work now, right before the load (same machine state)."""
        cores = self.plan.cores or bench_ceiling.cores_of(list(self.node_pids.values()))
        c = self.ceiling = await self._time_minimal_work("measuring the ceiling", cores)
        self.say(
            f"ceiling: minimal work {c.cost_us:.1f} µs per tx per node, {c.busy_cores} of "
            f"{c.cores} cores for {c.nodes} nodes -> {c.tps:,.0f} tx/s"
        )
        return c

    async def measure_ceiling_after(self) -> bench_ceiling.Ceiling:
        """The same minimal work again right after the load: on a shared machine the cores'
        speed moves with the neighbours' load (the minimal work measured 57-112 µs per tx
        minutes apart on one guest), and the headline ratio, against the ceiling before,
        is only as good as that speed held. Reported beside it, not instead of it."""
        assert self.ceiling is not None
        self.ceiling_after = await self._time_minimal_work(
            "measuring the ceiling again", self.ceiling.cores
        )
        return self.ceiling_after

    async def _time_minimal_work(self, phase: str, cores: int) -> bench_ceiling.Ceiling:
        self.state.phase = phase
        self._changed()
        return await bench_ceiling.ameasure(
            nodes=self.nodes, cores=cores, txs=self.plan.ceiling_txs
        )

    # ------------------------------------------------------------------ pre-signing

    async def presign(self, count: int) -> list[_Batch]:
        """Sign ``count`` load transactions and build the JSON-RPC bodies (not timed);
        starts a new round (the state keeps only the head).

        It signs :data:`SIGN_CHUNK` at a time and gives the event loop a turn in between:
        Ctrl-C under ``asyncio.run`` is a cancel that lands at the next ``await``, and
        100,000 signatures in one piece are 7 s of CPU (30 s on a busy machine).
        """
        plan = self.plan
        self.state = BenchState(total=count, head=self.state.head)
        self.txs, self.by_hash = [], {}
        self.state.phase = f"signing {count:,} transactions"
        self._changed()
        t0 = time.monotonic()
        assert self.chain is not None and self.load_format is not None
        limit = self.state.head + BLOCK_LIMIT_MARGIN
        make = self.load_format.load_tx
        signed: list[Signed] = []
        for start in range(0, count, SIGN_CHUNK):
            signed += [make(self.rng, limit) for _ in range(min(SIGN_CHUNK, count - start))]
            await asyncio.sleep(0)
        group = self.chain.group_id
        indexes = [n.index for n in self.chain.nodes]
        batches = []
        for b, start in enumerate(range(0, count, plan.batch)):
            chunk = signed[start : start + plan.batch]
            node = indexes[b % len(indexes)]
            txs = [_Tx(h, node) for h, _ in chunk]
            batches.append(_Batch(node, send_raw_body(group, [raw for _, raw in chunk]), txs))
            self.txs += txs
            await asyncio.sleep(0)
        step = max(1, count // max(1, plan.sample)) if plan.sample else 0
        if step:
            for tx in self.txs[::step][: plan.sample]:
                tx.sampled = True
        self.by_hash = {tx.hash: tx for tx in self.txs}
        self.say(
            f"signed {count:,} transactions in {time.monotonic() - t0:.1f} s "
            f"({len(batches)} batches of {plan.batch}; signing is client cost, not timed)"
        )
        return batches

    def load_size(self, rate: float, seconds: float) -> int:
        """Transactions to pre-sign for ``seconds`` of load at ``rate`` (0: closed loop)."""
        assert self.ceiling is not None
        per_s = rate if rate > 0 else self.ceiling.tps * DURATION_HEADROOM
        count = max(self.plan.batch, int(per_s * seconds))
        if count > PRESIGN_CAP:
            self.say(
                f"pre-signing {PRESIGN_CAP:,} transactions, not {count:,} (client memory): the "
                "load ends early if they are used up before the time is"
            )
        return min(count, PRESIGN_CAP)

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

    async def _send(
        self,
        queue: asyncio.Queue[_Batch | None],
        node: int,
        t0: float,
        rate: float,
        deadline: float,
    ) -> None:
        st = self.state
        limit = self.plan.in_flight_limit(rate)
        per_tx = 1.0 / rate if rate > 0 else 0.0
        async with self._client(node) as c:
            while True:
                batch = await queue.get()
                if batch is None or time.monotonic() >= deadline:
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
                    if time.monotonic() >= deadline:
                        return
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

    async def load(
        self, batches: list[_Batch], *, rate: float = 0.0, seconds: float = 0.0
    ) -> dict[str, Any]:
        """Submit the batches (for at most ``seconds`` when given) and wait until every
        accepted transaction has committed; the timed part of one round."""
        assert self.chain is not None
        self.state.phase = self._load_phase(rate)
        views_before = await self._on_all("getConsensusStatus", [self.chain.group_id])
        churn_before = await self._p2p_events()
        watched = {
            **self.node_pids,
            **({"mosquitto": p} if (p := _broker_pid(self.chain)) else {}),
        }
        usage_before = _Usage.now(watched)
        self._start_profilers()
        t0, submit_done, done, usage_after = await self._timed(batches, watched, rate, seconds)
        views_after = await self._on_all("getConsensusStatus", [self.chain.group_id])
        churn_after = await self._p2p_events()
        return {
            "t0": t0,
            "rate": rate,
            "submit_seconds": submit_done - t0,
            "wall": done - t0,
            **_view_counts(views_before, views_after),
            "p2p_events": _churn(churn_before, churn_after),
            "cpu": usage_after.since(usage_before),
        }

    def _load_phase(self, rate: float) -> str:
        return (
            f"offering {rate:,.0f} tx/s (open loop)"
            if rate > 0
            else f"closed loop, at most {self.plan.in_flight_limit(rate):,} txs in flight"
        )

    def _queues(self, batches: list[_Batch]) -> dict[int, asyncio.Queue[_Batch | None]]:
        """One queue of batches per node, closed by one None per sending connection."""
        assert self.chain is not None
        queues: dict[int, asyncio.Queue[_Batch | None]] = {
            n.index: asyncio.Queue() for n in self.chain.nodes
        }
        for b in batches:
            queues[b.node].put_nowait(b)
        for q in queues.values():
            for _ in range(self.plan.conns):
                q.put_nowait(None)
        return queues

    async def _timed(
        self, batches: list[_Batch], watched: dict[str, int], rate: float, seconds: float
    ) -> tuple[float, float, float, _Usage]:
        """Send the batches and wait for the commits (the profilers are stopped after).

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
        deadline = t0 + seconds if seconds > 0 else float("inf")
        senders = [
            asyncio.create_task(
                self._send(queues[n.index], n.index, t0, rate, deadline), name=f"send{n.index}"
            )
            for n in self.chain.nodes
            for _ in range(self.plan.conns)
        ]
        try:
            await asyncio.gather(*senders)
            submit_done = time.monotonic()
            if rate > 0:  # slots reserved by senders that stopped at the deadline
                self.state.submitted = sum(1 for tx in self.txs if tx.submitted) + sum(
                    self.state.rejected.values()
                )
            await self._wait_committed()
            done = time.monotonic()
            usage = _Usage.now(watched)
            # let the receipt pollers see the last receipts (bounded wait)
            for tx in self.txs:
                if tx.sampled and not tx.submitted:
                    tx.sampled = False  # never sent (the deadline came first)
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
                    hint=f"node logs are in {self.root} (kept)" if self.pids else None,
                )
            await wait_for_change(st.changed, 0.2)

    async def _p2p_events(self) -> dict[str, dict[str, int]]:
        """Per node: P2P disconnects and dropped frames by reason (from /metrics)."""
        assert self.chain is not None
        out: dict[str, dict[str, int]] = {}
        for node in self.chain.nodes:
            metrics = await scrape_metrics(node.rpc_port, host=node.rpc.rpartition(":")[0])
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

    # ------------------------------------------------------------------ one round's figures

    def round_figures(self, timing: dict[str, Any]) -> dict[str, Any]:
        """Throughput and latency of the round just loaded (after the warm-up)."""
        st = self.state
        t0 = timing["t0"]
        start = t0 + self.plan.warmup
        sent = [tx for tx in self.txs if tx.submitted]
        first_submit = min((tx.submitted for tx in sent), default=t0)
        last_submit = max((tx.submitted for tx in sent), default=t0)
        start = max(start, first_submit)
        committed = [tx for tx in sent if tx.committed and tx.committed >= start]
        last_commit = max((tx.committed for tx in committed), default=start)
        span = max(last_commit - start, 1e-9)
        measured = [tx for tx in committed if tx.submitted >= start] or committed
        latency = [tx.committed - tx.submitted for tx in measured]
        receipts = [
            tx.receipt - tx.submitted for tx in sent if tx.receipt and tx.submitted >= start
        ]
        bucket, curve = timeline([tx.committed for tx in sent if tx.committed], first_submit)
        ours = [b for b in st.blocks if b[2]]
        chain_tps = None
        if len(ours) >= 2:
            ms = ours[-1][1] - ours[0][1]
            chain_tps = sum(b[2] for b in ours[1:]) / (ms / 1000) if ms > 0 else None
        return {
            "rate": timing["rate"],
            "submitted": st.submitted,
            "accepted": st.accepted,
            "rejected": dict(st.rejected),
            "committed": st.committed,
            "measured_txs": len(committed),
            "committed_tps": round(len(committed) / span, 1) if committed else 0.0,
            "chain_tps": chain_tps,
            "seconds": round(span, 3),
            "submit_seconds": round(timing["submit_seconds"], 3),
            "offered_tps": round(st.submitted / (last_submit - t0), 1)
            if last_submit > t0
            else None,
            "latency_ms": ms_percentiles(latency),
            "latency_cdf_ms": cdf_ms(latency),
            **quarters([(tx.submitted, tx.committed) for tx in measured]),
            "receipt_latency_ms": ms_percentiles(receipts),
            "timeline_bucket_s": bucket,
            "timeline": curve,
            "blocks": len(ours),
            "block_log": [  # [number, txs, seen (ms after the first submit), timestamp delta]
                [b[0], b[2], round((b[3] - first_submit) * 1000), b[1] - ours[0][1]] for b in ours
            ],
            "view_changes": timing["view_changes"],
            "views_advanced": timing["views"],
            "final_views": timing["final_views"],
            "p2p_events": timing["p2p_events"],
            "cpu_seconds": timing["cpu"],
            "cpu_wall_seconds": round(timing["wall"], 3),
        }

    async def run_round(self, count: int, *, rate: float, seconds: float) -> dict[str, Any]:
        batches = await self.presign(count)
        timing = await self.load(batches, rate=rate, seconds=seconds)
        figures = self.round_figures(timing)
        if self.plan.phases:
            figures["phases_ms"] = await self._phases(timing["t0"] + self.plan.warmup)
        self.rounds.append(figures)
        return figures

    async def _phases(self, start: float) -> dict[str, Any]:
        """Where the blocks of the round since ``start`` (monotonic) spent their time,
        from the nodes' traces (scripts/bench_phases.py)."""
        assert self.chain is not None
        await asyncio.sleep(2 * FLUSH_EVERY_US / 1e6)  # the nodes' last records reach disk
        to_wall = time.time() - time.monotonic()
        records = bench_phases.read_records(trace_path(n) for n in self.chain.nodes)
        start_us = int((start + to_wall) * 1e6)
        return bench_phases.phases(records, start_us, int(time.time() * 1e6), len(self.chain.nodes))

    # ------------------------------------------------------------------ saturation

    async def saturate(self) -> dict[str, Any]:
        """The ``--max`` search (:mod:`scripts.bench_saturation`) on this chain."""
        plan = self.plan

        async def round_at(rate: float) -> dict[str, Any]:
            if not rate:
                self.say(f"probe: closed loop for {plan.step_seconds:g} s")
            return await self.run_round(
                self.load_size(rate, plan.step_seconds), rate=rate, seconds=plan.step_seconds
            )

        return await bench_saturation.search(round_at, max_p99_ms=plan.max_p99_ms, say=self.say)

    # ------------------------------------------------------------------ profiling

    def _start_profilers(self) -> None:
        if self.plan.profile is None:
            return
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.plan.profile.mkdir(parents=True, exist_ok=True)
        for name, pid in self.node_pids.items():
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
        """Same head on every node, and the conserved total intact on every node."""
        assert self.chain is not None and self.load_format is not None
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
                total = await self.load_format.read_total(c)
            if total is None:
                raise BenchFailed(f"reading the users' balances failed on {node.name}")
            supply.append(total)
        return {
            "heights": heights,
            "common_height": common,
            "head_hash": blocks[0]["hash"],
            "state_root": blocks[0]["stateRoot"],
            "heads": {
                n.name: {"height": h, "hash": b["hash"], "state_root": b["stateRoot"]}
                for n, h, b in zip(self.chain.nodes, heights, blocks, strict=True)
            },
            "consistent": len(set(heights)) == 1 and len(heads) == 1,
            "supply": supply,
            "expected_supply": self.load_format.expected_total,
        }

    # ------------------------------------------------------------------ whole run

    async def prepare(self) -> None:
        """The chain (started or attached), the users and the ceiling."""
        if self.plan.attach is not None:
            await self.attach_chain()
        else:
            await self.start_chain()
        await self.create_users()
        await self.measure_ceiling()

    async def measure(self) -> dict[str, Any] | None:
        """The load: the saturation search with ``--max`` (returned), else one round; then
        the ceiling again (:meth:`measure_ceiling_after`)."""
        plan = self.plan
        saturation = None
        if plan.saturate:
            saturation = await self.saturate()
        else:
            if plan.duration:
                count = self.load_size(plan.rate, plan.duration)
                plan.check_blocks(count, self.block_txs)
            else:
                count = plan.txs
            await self.run_round(count, rate=plan.rate, seconds=plan.duration)
        await self.measure_ceiling_after()
        return saturation

    async def run(self) -> dict[str, Any]:
        await self.prepare()
        saturation = await self.measure()
        checks = await self.check()
        return self.summarise(checks, saturation)

    def summarise(
        self, checks: dict[str, Any], saturation: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The report: the headline round's figures, the ceiling, the checks."""
        plan = self.plan
        assert self.chain is not None and self.ceiling is not None and self.rounds
        headline = dict(
            self.rounds[-1] if saturation is None else bench_saturation.headline_step(saturation)
        )
        if saturation is not None and saturation["saturation_tps"]:
            headline["committed_tps"] = saturation["saturation_tps"]  # sustained, see saturate
        submitted = sum(r["submitted"] for r in self.rounds)
        accepted = sum(r["accepted"] for r in self.rounds)
        committed = sum(r["committed"] for r in self.rounds)
        rejected: Counter[str] = Counter()
        cpu: Counter[str] = Counter()
        for r in self.rounds:
            rejected.update(r["rejected"])
            cpu.update(r["cpu_seconds"])
        expected = checks["expected_supply"]
        supply_ok = all(s == expected for s in checks["supply"])
        bad_refusals = {
            k: v for k, v in rejected.items() if k != POOL_FULL or not self._open_loop()
        }
        per_node = {
            n.name: {
                "cpu_s": round(cpu[n.name], 2) if n.name in cpu else None,
                "rss_mb": peak_rss_mb(self.node_pids[n.name]) if n.name in self.node_pids else None,
                "pid": self.node_pids.get(n.name),
            }
            for n in self.chain.nodes
        }
        ceiling = self.ceiling.tps
        per_tx = _node_cpu_per_tx(dict(cpu), self.node_pids, committed)
        node_cpu = sum(v for k, v in cpu.items() if k in self.node_pids)
        wall = sum(r["cpu_wall_seconds"] for r in self.rounds)
        return {
            "plan": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()},
            "machine": machine_info(),
            "nodes": len(self.chain.nodes),
            "transport": self.chain.transport,
            "block_txs": self.block_txs,
            "format": plan.fmt,
            "attached": plan.attach is not None,
            "cores": self.ceiling.cores,
            "ceiling": self.ceiling.as_dict(),
            "ceiling_tps": round(ceiling, 1),
            **{k: v for k, v in headline.items() if k not in ("rejected", "submitted")},
            "ratio": round(headline["committed_tps"] / ceiling, 4),
            **self._ceiling_after_figures(headline["committed_tps"]),
            "submitted": submitted,
            "accepted": accepted,
            "committed": committed,
            "rejected": dict(rejected),
            "saturation_tps": saturation["saturation_tps"] if saturation else None,
            "saturation": saturation,
            "view_changes": sum(r["view_changes"] for r in self.rounds),
            "cpu_seconds": dict(cpu),
            "per_node": per_node,
            "node_cpu_us_per_tx": per_tx,
            "cores_used": round(node_cpu / wall, 2) if wall > 0 and node_cpu else None,
            "cpu_ratio": round(self.ceiling.cost_us / per_tx, 4) if per_tx else None,
            "rounds": len(self.rounds),
            **checks,
            "supply_ok": supply_ok,
            "ok": committed == accepted and not bad_refusals and checks["consistent"] and supply_ok,
        }

    def _ceiling_after_figures(self, committed_tps: float) -> dict[str, Any]:
        """The ceiling measured after the load, its drift from the one before (after / before
        cost: above 1 the machine got slower), and the ratio against it."""
        after, before = self.ceiling_after, self.ceiling
        if after is None or before is None:
            return {"ceiling_after": None, "ceiling_drift": None, "ratio_after": None}
        return {
            "ceiling_after": after.as_dict(),
            "ceiling_drift": round(after.cost_us / before.cost_us, 3),
            "ratio_after": round(committed_tps / after.tps, 4),
        }

    def _open_loop(self) -> bool:
        return self.plan.rate > 0 or self.plan.saturate

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


def _broker_pid(chain: Chain) -> int | None:
    """The local Mosquitto's pid (to report its CPU), when the run goes through one."""
    if chain.transport != "mqtt" or not any(
        host in chain.broker for host in ("127.0.0.1", "localhost")
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
    return round(sum(nodes) / len(nodes) / txs * 1e6, 2)


__all__ = [
    "BenchFailed",
    "BenchPlan",
    "BenchState",
    "Benchmark",
    "machine_info",
    "scrape_metrics",
]
