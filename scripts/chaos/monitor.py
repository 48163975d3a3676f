"""Watching the cluster during a chaos run: heads, views, leaders, timeouts, throughput.

Every ``interval`` the monitor asks each running node for ``getConsensusStatus`` and
``getTotalTransactionCount`` (one JSON-RPC batch), keeps the latest answer per node, and
lets the runner append a :class:`~scripts.chaos.stalls.Point` built from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from scripts.chaos.stalls import Point


@dataclass(frozen=True, slots=True)
class NodeView:
    """What one node said at one moment."""

    t: float
    height: int
    view: int
    timeout: float  # seconds, back-off included
    leader_index: int | None
    leader_failed: bool
    sealers: tuple[str, ...]  # node ids, sealer-index order
    role: str
    tx_sum: int
    view_changes: int
    peers: int
    internal_errors: int = 0
    storage_fault: str | None = None  # why it cannot write its data directory


def parse_view(t: float, status: dict[str, Any], counts: dict[str, Any]) -> NodeView:
    def num(value: Any) -> int:
        return int(value, 16) if isinstance(value, str) else int(value or 0)

    return NodeView(
        t=t,
        height=num(status.get("blockNumber")),
        view=num(status.get("currentView")),
        timeout=num(status.get("timeout")) / 1000,
        leader_index=status.get("leaderIndex"),
        leader_failed=bool(status.get("leaderFailed")),
        sealers=tuple(str(s) for s in status.get("sealerList") or ()),
        role=str(status.get("accountType", "")),
        tx_sum=num(counts.get("txSum")),
        view_changes=num(status.get("viewChanges")),
        peers=num(status.get("connectedNodes")),
        internal_errors=num(status.get("internalErrors")),
        storage_fault=status.get("storageFault") or None,
    )


@dataclass(slots=True)
class Monitor:
    """``polled()`` names the nodes to ask; ``address(i)`` is node i's RPC host and port."""

    group: str
    polled: Callable[[], Sequence[int]]
    address: Callable[[int], tuple[str, int]]
    honest: Callable[[int], bool]
    interval: float = 0.5
    started: float = field(default_factory=time.monotonic)
    latest: dict[int, NodeView] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    throughput: list[tuple[float, int]] = field(default_factory=list)  # (t, committed txs)
    first_view: int | None = None
    max_view: int = 0
    view_changes: dict[int, int] = field(default_factory=dict)  # summed over restarts
    internal_errors: dict[int, int] = field(default_factory=dict)  # the same
    storage_faults: dict[int, list[tuple[float, str]]] = field(default_factory=dict)
    """Per node, each storage fault it reported: (first seen, reason)."""
    _last: dict[tuple[str, int], int] = field(default_factory=dict)
    on_sample: Callable[[Monitor], Point | None] | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def sample(self) -> None:
        nodes = list(self.polled())
        views = await asyncio.gather(*(self.ask(i) for i in nodes))
        for i, view in zip(nodes, views, strict=True):
            if view is not None:
                self.take(i, view)
        honest = [v for i, v in self.latest.items() if self.honest(i)]
        if honest:
            self.throughput.append((self.now(), max(v.tx_sum for v in honest)))
        if self.on_sample is not None:
            point = self.on_sample(self)
            if point is not None:
                self.points.append(point)

    async def ask(self, index: int) -> NodeView | None:
        host, port = self.address(index)
        client = AsyncRpcClient(host, port, group=self.group, timeout=1.5)
        try:
            status, counts = await client.batch(
                [("getConsensusStatus", [self.group]), ("getTotalTransactionCount", [self.group])]
            )
            if not isinstance(status, dict) or not isinstance(counts, dict):
                return None
            return parse_view(self.now(), status, counts)
        except (RpcTransportError, RpcError, OSError, ValueError, TypeError):
            return None
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def take(self, index: int, view: NodeView) -> None:
        before = self.latest.get(index)
        if view.storage_fault and (before is None or not before.storage_fault):
            self.storage_faults.setdefault(index, []).append((view.t, view.storage_fault))
        self.latest[index] = view
        if self.honest(index):
            self.first_view = view.view if self.first_view is None else self.first_view
            self.max_view = max(self.max_view, view.view)
        self._accumulate(self.view_changes, "vc", index, view.view_changes)
        self._accumulate(self.internal_errors, "ie", index, view.internal_errors)

    def _accumulate(self, totals: dict[int, int], name: str, index: int, value: int) -> None:
        """Sum a per-process counter over the node's restarts (it restarts from 0)."""
        last = self._last.get((name, index), 0)
        totals[index] = totals.get(index, 0) + (value - last if value >= last else value)
        self._last[(name, index)] = value

    def forget(self, index: int) -> None:
        """The node stopped: its last answer no longer describes it."""
        self.latest.pop(index, None)

    # -- answers for the runner ---------------------------------------------------------

    def best(self) -> NodeView | None:
        """The honest node with the highest head (ties: the most recent answer)."""
        honest = [v for i, v in self.latest.items() if self.honest(i) and v.role == "sealer"]
        return max(honest, key=lambda v: (v.height, v.t), default=None)

    def head(self) -> int:
        return max((v.height for i, v in self.latest.items() if self.honest(i)), default=0)

    def leader_id(self) -> str | None:
        view = self.best()
        if view is None or view.leader_index is None or view.leader_index >= len(view.sealers):
            return None
        return view.sealers[view.leader_index]

    def sealer_ids(self) -> tuple[str, ...]:
        view = self.best()
        return view.sealers if view else ()

    def longest_timeout(self) -> float:
        return max(
            (v.timeout for i, v in self.latest.items() if self.honest(i) and v.role == "sealer"),
            default=0.0,
        )
