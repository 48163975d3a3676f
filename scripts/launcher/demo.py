"""``ledgerlab demo``: a real 4-node chain on loopback, driven end to end in about a minute.

Script: init a chain in a fresh folder (free ports), start 4 node processes, create the
users, then three traffic phases while a live table shows every node --

1. *burst*: all nodes up, transfers sent as fast as the chain takes them (a bounded
   number in flight): this measures throughput;
2. *one node down*: stop node3 and keep sending at a steady rate: with n = 4, f = 1,
   the other three still form a quorum (3 = 2f + 1), so blocks keep coming (a round
   whose leader is the stopped node waits for a view change first);
3. *catch-up*: restart node3, keep sending, and watch it fetch the blocks it missed.

Commits are observed by following node0's blocks, which gives each transfer's
submit-to-commit latency. At the end every node must report the same block hash at the
same height, no transaction may have failed, and the users' balances must add up to the
supply that was minted (transfers move money, never create it).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from scripts.errors import CommandError
from scripts.launcher import accounts, cluster, procs
from scripts.launcher import status as status_mod
from scripts.launcher.layout import Chain, NodeEntry, init_chain
from scripts.launcher.load import (
    CommitTracker,
    Signed,
    TransferSigner,
    follow_blocks,
    new_root,
    node_client,
    percentile,
    poll_until,
    read_balances,
    wait_for_change,
    wait_until,
)

INITIAL_BALANCE = 1_000_000
BLOCK_LIMIT_MARGIN = 500


@dataclass(frozen=True, slots=True)
class DemoPlan:
    users: int
    burst: int  # transfers in phase 1
    paced_rate: float  # transfers per second in phases 2 and 3
    down_seconds: float  # phase 2 length
    catchup_seconds: float  # phase 3 length (at least; it also waits for the catch-up)
    window: int  # transfers in flight at most
    chunk: int  # transfers per JSON-RPC batch
    timeout: float  # give up waiting for commits after this long per phase

    @property
    def total(self) -> int:
        paced = int(self.paced_rate * self.down_seconds) + int(
            self.paced_rate * self.catchup_seconds
        )
        return self.burst + paced


FULL = DemoPlan(
    users=100,
    burst=3000,
    paced_rate=100,
    down_seconds=10,
    catchup_seconds=8,
    window=1500,
    chunk=100,
    timeout=90,
)
SHORT = DemoPlan(
    users=20,
    burst=200,
    paced_rate=40,
    down_seconds=4,
    catchup_seconds=3,
    window=400,
    chunk=50,
    timeout=45,
)


class DemoFailed(CommandError):
    pass


class Demo:
    def __init__(
        self, plan: DemoPlan, *, console: Console, seed: int, root: Path, keep: bool
    ) -> None:
        self.plan = plan
        self.console = console
        self.rng = random.Random(seed)
        self.root = root
        self.keep = keep
        self.chain: Chain | None = None
        self.tracker = CommitTracker()
        self.tps = status_mod.TpsTracker()
        self.statuses: list[status_mod.NodeStatus] = []
        self.phase = "starting"
        self.down: set[int] = set()
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.clients: dict[int, AsyncRpcClient] = {}
        self.signer: TransferSigner | None = None
        self.users: list[str] = []
        self.phase_stats: list[tuple[str, int, float]] = []  # (phase, committed, seconds)

    # ------------------------------------------------------------------ display

    def renderable(self) -> Group:
        parts: list[Any] = [Panel(self.phase, title="ledgerlab demo", expand=False)]
        parts.append(self.progress)
        if self.chain is not None and self.statuses:
            parts.append(status_mod.render(self.chain, self.statuses, title="nodes"))
        return Group(*parts)

    def say(self, text: str) -> None:
        self.console.print(text)

    async def refresh_status(self, live: Live) -> None:
        assert self.chain is not None
        while True:
            with contextlib.suppress(Exception):
                self.statuses = await status_mod.collect(self.chain, tracker=self.tps, timeout=1.0)
            live.update(self.renderable(), refresh=True)
            await asyncio.sleep(1.0)

    # ------------------------------------------------------------------ chain plumbing

    def client(self, index: int) -> AsyncRpcClient:
        assert self.chain is not None
        if index not in self.clients:
            self.clients[index] = node_client(self.chain, index, timeout=10.0)
        return self.clients[index]

    async def drop_client(self, index: int) -> None:
        client = self.clients.pop(index, None)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()

    def live_nodes(self) -> list[int]:
        assert self.chain is not None
        return [n.index for n in self.chain.nodes if n.index not in self.down]

    async def submit(self, raws: list[Signed], node_index: int) -> None:
        """Send one batch; on a transport failure try the next live node."""
        candidates = [node_index] + [i for i in self.live_nodes() if i != node_index]
        for index in candidates:
            now = time.monotonic()
            try:
                results = await self.client(index).send_raw_batch([r for _, r in raws])
            except RpcTransportError:
                await self.drop_client(index)
                continue
            for (h, _), res in zip(raws, results, strict=True):
                if isinstance(res, RpcError):
                    self.tracker.rejected[res.reason or str(res.code)] += 1
                else:
                    self.tracker.submitted[h] = now
            return
        raise DemoFailed("no node accepted transactions (all live nodes refused the connection)")

    def transfer(self) -> Signed:
        assert self.signer is not None
        return self.signer.transfer(self.rng, self.users, self.tracker.head + BLOCK_LIMIT_MARGIN)

    async def wait_committed(
        self,
        hashes: list[str],
        what: str,
        timeout: float,
        tick: Callable[[], None] | None = None,
    ) -> None:
        t = self.tracker
        if not await wait_until(lambda: t.all_committed(hashes), t.changed, timeout, tick=tick):
            raise DemoFailed(
                f"{what}: only {t.count_committed(hashes)} of {len(hashes)} transactions "
                f"committed after {timeout:.0f} s",
                hint=f"the chain seems stuck; node logs are kept in {self.root}",
            )

    # ------------------------------------------------------------------ phases

    async def send_paced(
        self, count: int, *, rate: float | None, task: Any, min_seconds: float = 0.0
    ) -> list[str]:
        """Send ``count`` transfers (at ``rate``/s, or as fast as the window allows)."""
        plan = self.plan
        sent: list[str] = []
        start = time.monotonic()
        rr = 0
        while len(sent) < count:
            while self.tracker.in_flight >= plan.window:
                await wait_for_change(self.tracker.changed, 0.5)
                self.update_progress(task)
            n = min(plan.chunk, count - len(sent))
            if rate is not None:
                due = start + (len(sent) + n) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            batch = [self.transfer() for _ in range(n)]
            live = self.live_nodes()
            await self.submit(batch, live[rr % len(live)])
            rr += 1
            sent += [h for h, _ in batch if h in self.tracker.submitted]
            self.update_progress(task)
        left = min_seconds - (time.monotonic() - start)
        if left > 0:
            await asyncio.sleep(left)
        return sent

    def update_progress(self, task: Any) -> None:
        self.progress.update(task, completed=len(self.tracker.committed) - self.user_txs)

    user_txs = 0

    async def run(self) -> dict[str, Any]:
        console = self.console
        rng = random.Random(self.rng.random())
        p2p = procs.free_port_base(4, rng)
        rpc = procs.free_port_base(4, rng, avoid=range(p2p, p2p + 4))
        self.say(f"[bold]1.[/] a fresh 4-node chain in {self.root} (P2P {p2p}+i, RPC {rpc}+i)")
        chain = init_chain(self.root, nodes=4, p2p_port=p2p, rpc_port=rpc)
        self.chain = chain
        self.signer = TransferSigner(chain, accounts.load_key(chain.accounts_dir / "admin.key"))
        t0 = time.monotonic()
        await cluster.astart_nodes(chain, timeout=60)
        self.say(
            f"   4 node processes up and connected in {time.monotonic() - t0:.1f} s "
            f"(sealers node0..node3, f = 1)"
        )
        result: dict[str, Any] = {}
        with Live(self.renderable(), console=console, auto_refresh=False, transient=False) as live:
            tasks = [
                asyncio.create_task(
                    follow_blocks(chain, 0, self.tracker.on_block, interval=0.05), name="follow"
                ),
                asyncio.create_task(self.refresh_status(live), name="status"),
            ]
            try:
                result = await self._phases(live)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(Exception):
                    self.statuses = await status_mod.collect(chain, tracker=self.tps)
                live.update(self.renderable(), refresh=True)
        if not self.console.is_terminal:
            self.console.line()
        return result

    async def _phases(self, live: Live) -> dict[str, Any]:
        assert self.chain is not None
        await self._create_users()
        task = self.progress.add_task("transfers committed", total=self.plan.total)
        burst = await self._burst(task)
        victim = self.chain.node(3)
        down, h_stop = await self._one_node_down(task, victim)
        up = await self._restart(task, victim, h_stop)
        self.phase = "checking: same blocks on every node, total supply unchanged"
        all_transfers = burst + down + up
        return await self.check(all_transfers)

    async def _create_users(self) -> None:
        """Users: ``plan.users`` accounts with INITIAL_BALANCE each, committed."""
        plan = self.plan
        t = self.tracker
        self.phase = f"creating {plan.users} users with {INITIAL_BALANCE:,} each"
        users_task = self.progress.add_task("users created", total=plan.users)
        self.users = [f"user{i:03d}" for i in range(plan.users)]
        assert self.signer is not None
        limit = t.head + BLOCK_LIMIT_MARGIN
        adds = [self.signer.sign("userAdd", [u, INITIAL_BALANCE], limit) for u in self.users]
        for start in range(0, len(adds), plan.chunk):
            await self.submit(adds[start : start + plan.chunk], 0)
        add_hashes = [h for h, _ in adds]

        def users_progress() -> None:
            self.progress.update(users_task, completed=t.count_committed(add_hashes))

        await self.wait_committed(add_hashes, "creating users", plan.timeout, users_progress)
        self.progress.update(users_task, completed=plan.users)
        self.user_txs = len(t.committed)
        self.say(f"[bold]2.[/] created {plan.users} users (block {t.head})")

    async def _burst(self, task: Any) -> list[str]:
        """Phase 1: transfers as fast as the chain takes them, all four nodes up."""
        plan = self.plan
        t = self.tracker
        self.phase = f"phase 1/3: {plan.burst:,} transfers as fast as the chain takes them"
        h0 = t.head
        burst = await self.send_paced(plan.burst, rate=None, task=task)
        await self.wait_committed(burst, "burst", plan.timeout)
        burst_time = max(t.committed[h] for h in burst) - min(t.submitted[h] for h in burst)
        self.phase_stats.append(("all 4 nodes up (burst)", len(burst), burst_time))
        self.update_progress(task)
        self.say(
            f"[bold]3.[/] burst: {len(burst):,} transfers committed in {burst_time:.1f} s "
            f"= [bold]{len(burst) / burst_time:,.0f} tx/s[/] (blocks {h0 + 1}..{t.head})"
        )
        return burst

    async def _one_node_down(self, task: Any, victim: NodeEntry) -> tuple[list[str], int]:
        """Phase 2: ``victim`` stopped, paced transfers to the other three.

        Returns the transfers and the head when the node was stopped.
        """
        plan = self.plan
        t = self.tracker
        self.phase = f"phase 2/3: {victim.name} stopped — 3 of 4 sealers keep committing (f = 1)"
        await asyncio.to_thread(procs.stop_nodes, [victim], 10.0)
        self.down.add(victim.index)
        await self.drop_client(victim.index)
        h_stop, s_down = t.head, time.monotonic()
        self.say(
            f"[bold]4.[/] stopped {victim.name} at block {h_stop}; sending on to the other three"
        )
        down_n = int(plan.paced_rate * plan.down_seconds)
        down = await self.send_paced(
            down_n, rate=plan.paced_rate, task=task, min_seconds=plan.down_seconds
        )
        await self.wait_committed(down, "with one node down", plan.timeout)
        down_time = time.monotonic() - s_down
        self.phase_stats.append((f"{victim.name} down", len(down), down_time))
        self.say(
            f"   with {victim.name} down: {len(down):,} transfers committed, "
            f"blocks {h_stop + 1}..{t.head} ({len(down) / down_time:,.0f} tx/s at the offered "
            f"{plan.paced_rate:.0f} tx/s)"
        )
        return down, h_stop

    async def _restart(self, task: Any, victim: NodeEntry, h_stop: int) -> list[str]:
        """Phase 3: ``victim`` restarted; paced transfers while it catches up."""
        plan = self.plan
        assert self.chain is not None
        self.phase = f"phase 3/3: {victim.name} restarted — catching up from its peers"
        behind_at_start = self.tracker.head
        s_up = time.monotonic()
        await cluster.astart_nodes(self.chain, [victim], timeout=60)
        self.say(
            f"[bold]5.[/] restarted {victim.name} ({behind_at_start - h_stop} blocks behind); "
            "it fetches the missing blocks from its peers"
        )
        up_n = int(plan.paced_rate * plan.catchup_seconds)
        catch_task = asyncio.create_task(self.wait_caught_up(victim, s_up))
        up = await self.send_paced(
            up_n, rate=plan.paced_rate, task=task, min_seconds=plan.catchup_seconds
        )
        await self.wait_committed(up, "after the restart", plan.timeout)
        self.phase_stats.append((f"{victim.name} catching up", len(up), time.monotonic() - s_up))
        caught_up = await catch_task
        self.down.discard(victim.index)
        self.update_progress(task)
        self.say(f"   {victim.name} caught up in {caught_up:.1f} s")
        return up

    async def wait_caught_up(self, node: NodeEntry, since: float) -> float:
        """Seconds from ``since`` until ``node`` reaches the height followed on node0."""
        assert self.chain is not None

        async def caught_up() -> bool:
            with contextlib.suppress(RpcTransportError, RpcError):
                return await client.block_number() >= self.tracker.head
            return False

        async with node_client(self.chain, node.index, timeout=5) as client:
            if await poll_until(caught_up, self.plan.timeout):
                return time.monotonic() - since
        raise DemoFailed(
            f"{node.name} did not catch up within {self.plan.timeout:.0f} s",
            hint=f"see {node.log_path}",
        )

    async def check(self, transfers: list[str]) -> dict[str, Any]:
        assert self.chain is not None
        chain = self.chain
        t = self.tracker
        # Every node at the same height with the same hash.
        heights = {}
        for n in chain.nodes:
            heights[n.index] = await self.client(n.index).block_number()
        common = min(heights.values())
        hashes = {i: await self.client(i).block_hash(common) for i in heights}
        if len(set(hashes.values())) != 1:
            raise DemoFailed(f"nodes disagree on block {common}: {hashes}")
        # No failed transactions, and the supply adds up on every node.
        totals = await self.client(0).total_transaction_count()
        balances: dict[int, list[int]] = {}
        for n in chain.nodes:
            vals = await read_balances(self.client(n.index), self.users)
            balances[n.index] = [-1 if v is None else v for v in vals]
        expected = INITIAL_BALANCE * len(self.users)
        supply = {i: sum(v) for i, v in balances.items()}
        latencies = [t.committed[h] - t.submitted[h] for h in transfers]
        return {
            "heights": heights,
            "common": common,
            "hash": hashes[0],
            "tx_sum": totals.get("txSum", 0),
            "failed": totals.get("failedTxSum", 0),
            "supply": supply,
            "expected_supply": expected,
            "same_balances": all(v == balances[0] for v in balances.values()),
            "latencies": latencies,
            "transfers": len(transfers),
        }

    async def close(self) -> None:
        for index in list(self.clients):
            await self.drop_client(index)


def report(console: Console, demo: Demo, result: dict[str, Any]) -> bool:
    lat = result["latencies"]
    table = Table(title="results", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, count, seconds in demo.phase_stats:
        table.add_row(
            f"throughput, {name}", f"{count:,} tx in {seconds:.1f} s = {count / seconds:,.0f} tx/s"
        )
    table.add_row(
        "latency submit → commit",
        f"p50 {percentile(lat, 0.5, rule='floor') * 1000:,.0f} ms · "
        f"p95 {percentile(lat, 0.95, rule='floor') * 1000:,.0f} ms · "
        f"max {max(lat, default=0.0) * 1000:,.0f} ms (over {len(lat):,} transfers)",
    )
    table.add_row(
        "blocks",
        f"all 4 nodes hold block {result['common']} with hash {result['hash'][:18]}…",
    )
    failed = result["failed"]
    table.add_row(
        "transactions",
        f"{result['tx_sum']:,} committed, {failed} failed"
        + (
            ", rejected: " + ", ".join(f"{k} {v}" for k, v in demo.tracker.rejected.items())
            if demo.tracker.rejected
            else ""
        ),
    )
    expected = result["expected_supply"]
    supply_ok = all(v == expected for v in result["supply"].values()) and result["same_balances"]
    mark = "[green]✓[/]" if supply_ok else "[red]✗[/]"
    table.add_row(
        "total supply",
        f"{mark} {expected:,} = {len(demo.users)} users x {INITIAL_BALANCE:,} on every node"
        if supply_ok
        else f"{mark} expected {expected:,}, got {result['supply']}",
    )
    console.print(table)
    return supply_ok and failed == 0


def run(
    *,
    short: bool,
    keep: bool,
    seed: int,
    directory: Path | None,
    console: Console,
) -> int:
    plan = SHORT if short else FULL
    root, parent = new_root(directory, "ledgerlab-demo-")
    demo = Demo(plan, console=console, seed=seed, root=root, keep=keep)
    ok = False
    started = time.monotonic()
    try:
        result = asyncio.run(_run(demo))
        ok = report(console, demo, result)
        console.print(f"demo finished in {time.monotonic() - started:.0f} s")
    finally:
        chain = demo.chain
        stop = chain is not None and (not keep or not ok)
        if chain is not None and stop:
            with console.status("stopping the demo chain…"):
                procs.stop_nodes(chain.nodes, timeout=10.0)
        if stop and ok and parent is not None:
            shutil.rmtree(parent, ignore_errors=True)
        elif chain is not None and not keep:
            console.print(f"node logs kept in {root}")
    if keep and chain is not None and ok:
        console.print(
            f"the chain keeps running in {root}: try [bold]ledgerlab status --dir {root}[/], "
            f"and [bold]ledgerlab down --dir {root}[/] when done"
        )
    if not ok:
        raise DemoFailed("a final check failed (see the results above)")
    if not keep:
        console.print("a chain of your own: [bold]ledgerlab up[/] (then `ledgerlab --help`)")
    return 0


async def _run(demo: Demo) -> dict[str, Any]:
    try:
        return await demo.run()
    finally:
        await demo.close()
