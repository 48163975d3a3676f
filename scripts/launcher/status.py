"""Ask every node of a chain how it is (JSON-RPC), and render that as one rich table.

One batch request per node reads height, consensus and sync status, peers, txpool size
and the committed tx counter. Throughput comes from one of two places: between
refreshes (``status --watch``, the demo) a :class:`TpsTracker` differences the
committed counters; a one-shot ``status`` instead sums the transactions of the blocks
sealed in the last few seconds, so it needs no second sample.

The "note" column says why a height is not moving, the question FISCO users ask most:
PBFT seals no empty blocks, so an idle chain stands still on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from scripts.launcher import procs
from scripts.launcher.layout import Chain, NodeEntry

TPS_WINDOW = 5.0
IDLE_AFTER = 2.0  # seconds without a block before an empty pool counts as "idle"
MAX_TPS_BLOCKS = 20


@dataclass(slots=True)
class NodeStatus:
    """One node's answers (``answered`` False when it is down or not answering)."""

    node: NodeEntry
    pid: int | None = None
    process: str = "stopped"  # running | stopped | stale pid file
    ended: str | None = None  # with a stale pid file: how the process ended (procs.how_it_ended)
    answered: bool = False
    error: str | None = None
    role: str = ""
    height: int = 0
    head_hash: str = ""
    head_age: float | None = None  # seconds since the head block's timestamp
    view: int = 0
    to_view: int = 0
    leader_index: int | None = None
    leader_failed: bool = False
    stalled: bool = False
    stall_reason: str | None = None
    since_commit: float | None = None
    sealers: list[str] = field(default_factory=list)
    peers: int = 0
    pending: int = 0
    tx_sum: int = 0
    failed_tx_sum: int = 0
    syncing: bool = False
    known_highest: int = 0
    view_changes: int = 0
    block_tps: float | None = None  # from recent block timestamps (one-shot status)
    tps: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node.name,
            "index": self.node.index,
            "rpc": self.node.rpc_url,
            "pid": self.pid,
            "process": self.process,
            "ended": self.ended,
            "answered": self.answered,
            "error": self.error,
            "role": self.role or self.node.role,
            "height": self.height,
            "head_hash": self.head_hash,
            "view": self.view,
            "to_view": self.to_view,
            "leader_index": self.leader_index,
            "peers": self.peers,
            "txpool": self.pending,
            "committed_txs": self.tx_sum,
            "failed_txs": self.failed_tx_sum,
            "syncing": self.syncing,
            "known_highest": self.known_highest,
            "tps": None if self.tps is None else round(self.tps, 1),
            "leader_failed": self.leader_failed,
            "stalled": self.stalled,
            "stall_reason": self.stall_reason,
            "seconds_since_last_commit": self.since_commit,
        }


class TpsTracker:
    """Committed-tx counters over time, per node, for a rate over the last few seconds."""

    def __init__(self, window: float = TPS_WINDOW) -> None:
        self.window = window
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def record(self, name: str, when: float, tx_sum: int) -> None:
        samples = self._samples.setdefault(name, deque())
        samples.append((when, tx_sum))
        while len(samples) > 2 and samples[1][0] <= when - self.window:
            samples.popleft()

    def rate(self, name: str) -> float | None:
        samples = self._samples.get(name)
        if not samples or len(samples) < 2:
            return None
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        if t1 - t0 < 0.5:
            return None
        return max(0, c1 - c0) / (t1 - t0)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 0)


async def node_status(
    chain: Chain, node: NodeEntry, *, recent_blocks: bool = False, timeout: float = 2.0
) -> NodeStatus:
    st = NodeStatus(node=node, role=node.role)
    pid_state = procs.read_pid(node)
    st.pid = pid_state.pid
    st.process = (
        "running" if pid_state.alive else ("stale pid file" if pid_state.stale else "stopped")
    )
    if pid_state.stale:
        st.ended = procs.how_it_ended(node)
    host = node.rpc.rpartition(":")[0]
    client = AsyncRpcClient(host, node.rpc_port, group=chain.group_id, timeout=timeout)
    g = [chain.group_id]
    try:
        # Bounded here too: the client's connect has no deadline of its own, and a host
        # cut off the network leaves the SYN unanswered for minutes.
        answers = await asyncio.wait_for(
            client.batch(
                [
                    ("getBlockNumber", g),
                    ("getConsensusStatus", g),
                    ("getSyncStatus", g),
                    ("getPeers", g),
                    ("getPendingTxSize", g),
                    ("getTotalTransactionCount", g),
                ]
            ),
            timeout * 1.5,
        )
        for a in answers:
            if isinstance(a, Exception):
                raise a
        number, cons, sync, peers, pending, total = answers
        st.answered = True
        st.height = _int(number)
        st.view = int(cons.get("currentView", 0))
        st.to_view = int(cons.get("toView", st.view))
        leader = cons.get("leaderIndex")
        st.leader_index = None if leader is None else int(leader)
        st.leader_failed = bool(cons.get("leaderFailed", False))
        st.sealers = [str(s) for s in cons.get("sealerList", [])]
        st.view_changes = int(cons.get("viewChanges", 0))
        st.stalled = bool(cons.get("stalled", False))
        reason = cons.get("stallReason")
        st.stall_reason = None if reason is None else str(reason)
        since = cons.get("secondsSinceLastCommit")
        st.since_commit = None if since is None else float(since)
        if cons.get("accountType"):
            st.role = str(cons["accountType"])
        st.head_hash = str(sync.get("latestHash", ""))
        st.syncing = bool(sync.get("isSyncing", False))
        st.known_highest = int(sync.get("knownHighestNumber", st.height))
        st.peers = len(peers or [])
        st.pending = _int(pending)
        st.tx_sum = _int(total.get("txSum", 0))
        st.failed_tx_sum = _int(total.get("failedTxSum", 0))
        await _head_info(client, chain, st, recent_blocks)
    except RpcError as exc:
        st.error = f"RPC error {exc.code}: {exc.message}"
    except RpcTransportError as exc:
        st.error = "not answering RPC" if st.process == "running" else None
        if st.process == "running" and "timeout" in str(exc).lower():
            st.error = "RPC timed out"
    except TimeoutError:
        st.error = "RPC timed out" if st.process == "running" else None
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        st.error = f"unexpected RPC answer ({exc})"
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return st


async def _head_info(client: AsyncRpcClient, chain: Chain, st: NodeStatus, recent: bool) -> None:
    """Head block age, and with ``recent`` the tx rate over the blocks of the last seconds."""
    now_ms = time.time() * 1000
    number = st.height
    txs = 0
    oldest_ms: float | None = None
    for i in range(MAX_TPS_BLOCKS if recent else 1):
        if number - i < 0:
            break
        block = await client.request("getBlockByNumber", [chain.group_id, number - i, False])
        ts = _int(block.get("timestamp", 0))
        if i == 0:
            st.head_age = max(0.0, (now_ms - ts) / 1000)
        if not recent or number - i == 0 or ts < now_ms - TPS_WINDOW * 1000:
            break
        txs += len(block.get("transactions", []))
        oldest_ms = ts
    if recent:
        st.block_tps = txs / TPS_WINDOW if oldest_ms is not None else 0.0


async def collect(
    chain: Chain,
    *,
    tracker: TpsTracker | None = None,
    recent_blocks: bool = False,
    timeout: float = 2.0,
) -> list[NodeStatus]:
    """Every node's status, asked concurrently."""
    statuses = list(
        await asyncio.gather(
            *(
                node_status(chain, n, recent_blocks=recent_blocks, timeout=timeout)
                for n in chain.nodes
            )
        )
    )
    now = time.monotonic()
    for st in statuses:
        if tracker is not None and st.answered:
            tracker.record(st.node.name, now, st.tx_sum)
            st.tps = tracker.rate(st.node.name)
        if st.tps is None:
            st.tps = st.block_tps
    return statuses


def leader_name(chain: Chain, st: NodeStatus) -> str:
    if st.leader_index is None or not st.sealers or st.leader_index >= len(st.sealers):
        return "-"
    return chain.name_of(st.sealers[st.leader_index]) or f"#{st.leader_index}"


def note(st: NodeStatus, best_height: int) -> Text:
    """Why this node is (not) moving, in a few words."""
    if not st.answered:
        if st.process == "running":
            return Text(st.error or "not answering RPC", style="yellow")
        if st.process == "stale pid file":  # it ended without `ledgerlab down`
            return Text(f"down: {st.ended or 'its process ended'}", style="red")
        return Text("down", style="red")
    if st.error:
        return Text(st.error, style="yellow")
    if st.role == "free":
        return Text(
            "free node: in neither list, peers do not serve it (ledgerlab observers add)",
            style="yellow",
        )
    if st.stalled:
        since = "" if st.since_commit is None else f" {st.since_commit:.0f} s"
        return Text(f"STALLED{since}: {st.stall_reason or 'no commit'}", style="bold red")
    behind = max(st.known_highest, best_height) - st.height
    if st.syncing or behind > 1:
        return Text(f"catching up: {behind} blocks behind", style="cyan")
    if st.to_view > st.view:
        return Text(f"view change to {st.to_view}", style="yellow")
    idle = st.head_age is None or st.head_age >= IDLE_AFTER
    if st.pending == 0 and idle:
        return Text("idle: no pending transactions", style="dim")
    if st.pending > 0 and idle:
        return Text(
            f"waiting: {st.pending} pending, no block for {st.head_age or 0:.0f} s", style="yellow"
        )
    return Text("committing", style="green")


def _fmt_tps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def render(chain: Chain, statuses: list[NodeStatus], *, title: str | None = None) -> Table:
    best = max((s.height for s in statuses if s.answered), default=0)
    table = Table(
        title=title or f"chain {chain.chain_id} / {chain.group_id}  ({chain.root})",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    for name, justify in (
        ("node", "left"),
        ("role", "left"),
        ("pid", "right"),
        ("height", "right"),
        ("head", "left"),
        ("view", "right"),
        ("leader", "left"),
        ("peers", "right"),
        ("txpool", "right"),
        ("committed", "right"),
        ("TPS", "right"),
        ("note", "left"),
    ):
        wrap = name == "note"
        table.add_column(name, justify=justify, no_wrap=not wrap)  # type: ignore[arg-type]
    expected_peers = len(chain.nodes) - 1
    for st in statuses:
        pid = str(st.pid) if st.pid and st.process == "running" else "-"
        if not st.answered:
            table.add_row(st.node.name, st.node.role, pid, *(["-"] * 8), note(st, best))
            continue
        peers = Text(
            f"{st.peers}/{expected_peers}", style="" if st.peers >= expected_peers else "yellow"
        )
        table.add_row(
            st.node.name,
            st.role,
            pid,
            f"{st.height:,}",
            st.head_hash[:10] + "…" if st.head_hash else "-",
            str(st.view),
            leader_name(chain, st),
            peers,
            f"{st.pending:,}",
            f"{st.tx_sum:,}",
            _fmt_tps(st.tps),
            note(st, best),
        )
    return table
