"""The cluster a chaos run works on: chain directory, processes, proxies, broker, monitor.

:func:`create` makes a fresh chain in a folder, points every node's peers (or its broker)
at the run's proxies (:mod:`scripts.chaos.network`) and starts it; :func:`attach` takes
a running chain directory as it is (no proxies, so only process faults and membership
changes apply). Either way the runner then talks to one :class:`ChaosCluster`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from consensus.crypto import KeyPair
from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from node.runtime.config import NodeConfig
from scripts.chaos import stalls
from scripts.chaos import twins as twins_mod
from scripts.chaos.broker import PrivateBroker
from scripts.chaos.disk import DiskError, NodeDisk
from scripts.chaos.fleet import TWINS, Fleet, child_env
from scripts.chaos.monitor import Monitor
from scripts.chaos.network import Network
from scripts.chaos.stalls import Point
from scripts.errors import CommandError
from scripts.launcher import accounts, expand, procs
from scripts.launcher.layout import Chain, NodeEntry, init_chain, load_chain

READY_TIMEOUT = 60.0


@dataclass(slots=True)
class Event:
    """Something the runner did, for the report and the stall model."""

    t: float
    kind: str
    action: str
    detail: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "t": round(self.t, 2),
            "kind": self.kind,
            "action": self.action,
            "detail": self.detail,
        }


@dataclass(slots=True)
class ChaosCluster:
    chain: Chain
    fleet: Fleet
    network: Network | None
    broker: PrivateBroker | None
    admin: KeyPair
    run_dir: Path
    monitor: Monitor = field(init=False)
    events: list[Event] = field(default_factory=list)
    recovered_at: float = -1e9  # last restart, resume or heal (run seconds)
    started: float = field(default_factory=time.monotonic)
    pending: Callable[[], bool] = lambda: True  # work is waiting (the workload says)
    disks: dict[int, NodeDisk] = field(default_factory=dict)  # data dirs of their own
    twins: list[twins_mod.Twin] = field(default_factory=list)  # second processes (Twins)
    impaired: set[int] = field(default_factory=set)
    """Running nodes that cannot take part now (storage fault, clock off by more than a
    proposal may be ahead): the quorum model leaves them out, as if they were down."""

    def __post_init__(self) -> None:
        self.monitor = Monitor(
            self.chain.group_id,
            polled=lambda: [n.index for n in self.fleet.running()],
            address=self.rpc_address,
            honest=self.is_honest,
        )
        self.monitor.on_sample = self.point

    # -- small answers ------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.started

    def rpc_address(self, index: int) -> tuple[str, int]:
        entry = self.chain.node(index)
        return entry.rpc.rpartition(":")[0], entry.rpc_port

    def client(self, index: int, timeout: float = 10.0) -> AsyncRpcClient:
        host, port = self.rpc_address(index)
        return AsyncRpcClient(host, port, group=self.chain.group_id, timeout=timeout)

    def is_honest(self, index: int) -> bool:
        return index in self.fleet.nodes and self.fleet[index].byzantine is None

    def index_of(self, node_id: str) -> int | None:
        node_id = node_id.removeprefix("0x").lower()
        return next((n.index for n in self.chain.nodes if n.node_id == node_id), None)

    def sealers(self) -> list[int]:
        ids = self.monitor.sealer_ids() or tuple(n.node_id for n in self.chain.sealers)
        return [i for i in (self.index_of(s) for s in ids) if i is not None]

    def record(self, kind: str, action: str, detail: str = "") -> None:
        self.events.append(Event(self.now(), kind, action, detail))
        if action in ("restart", "resume", "heal", "start", "readd", "restore", "free"):
            self.recovered_at = self.now()

    # -- the quorum model ---------------------------------------------------------------

    def can_talk(self, a: int, b: int) -> bool:
        return self.network is None or self.network.can_talk(a, b)

    def _able(self) -> list[int]:
        """Running honest nodes that can take part (not :attr:`impaired`)."""
        return [
            n.index
            for n in self.fleet.running()
            if n.byzantine is None and n.index not in self.impaired
        ]

    def talkable(self) -> bool:
        up = self._able()
        if self.chain.transport == "mqtt" and self.broker is not None and not self.broker.running:
            return False
        return stalls.quorum_can_talk(self.sealers(), up, self.can_talk)

    def talking_group(self) -> list[int]:
        """The largest set of running honest sealers that all reach each other."""
        up = self._able()
        sealers = [s for s in self.sealers() if s in up]
        for size in range(len(sealers), 0, -1):
            for group in itertools.combinations(sealers, size):
                if all(self.can_talk(a, b) for a, b in itertools.combinations(group, 2)):
                    return list(group)
        return []

    def talking_member(self) -> int | None:
        """The member of :meth:`talking_group` with the highest head (else any running)."""
        group = self.talking_group()
        if not group:
            running = [n.index for n in self.fleet.running() if n.byzantine is None]
            return running[0] if running else None
        latest = self.monitor.latest
        return max(group, key=lambda i: latest[i].height if i in latest else -1)

    def submission_targets(self) -> list[int]:
        """Running honest nodes that are members as far as they last said."""
        latest = self.monitor.latest
        return [
            n.index
            for n in self.fleet.running()
            if n.byzantine is None and (n.index not in latest or latest[n.index].role != "free")
        ]

    def point(self, monitor: Monitor) -> Point:
        network = self.network
        return Point(
            t=self.now(),
            head=monitor.head(),
            talkable=self.talkable(),
            pending=self.pending(),
            timeout=monitor.longest_timeout(),
            delay=network.worst_delay() if network else 0.0,
            recovering=self.now() - self.recovered_at < stalls.RECONNECT,
        )

    # -- processes ----------------------------------------------------------------------

    async def wait_ready(self, indices: list[int], timeout: float = READY_TIMEOUT) -> None:
        """Until each node answers RPC and sees a quorum of peers (all-or-error)."""
        deadline = time.monotonic() + timeout
        need = max(1, len(self.chain.sealers) - (len(self.chain.sealers) - 1) // 3 - 1)
        waiting = set(indices)
        while waiting:
            for i in list(waiting):
                gone = self.fleet.check_exits()
                if gone:
                    raise CommandError(f"{gone[0].name} {gone[0].exits[-1]}")
                peers = await self._peers(i)
                if peers is not None and peers >= need:
                    waiting.discard(i)
            if time.monotonic() > deadline:
                names = ", ".join(f"node{i}" for i in sorted(waiting))
                raise CommandError(
                    f"{names} not connected after {timeout:.0f} s",
                    hint=f"see the logs in {self.chain.root}",
                )
            await asyncio.sleep(0.3)

    async def _peers(self, index: int) -> int | None:
        client = self.client(index, timeout=1.0)
        try:
            return len(await client.peers())
        except (RpcTransportError, RpcError, OSError):
            return None
        finally:
            await client.close()

    async def close(self) -> None:
        for twin in self.twins:
            twin.stop()
        self.fleet.stop_all()
        if self.network is not None:
            await self.network.close()
        if self.broker is not None:
            self.broker.stop()
        for disk in self.disks.values():  # the image stays in the run folder
            try:
                disk.unmount()
            except DiskError as exc:
                self.record("disk", "error", str(exc))

    # -- growing ------------------------------------------------------------------------

    async def new_node(self) -> NodeEntry:
        """A fresh node folder (a free node), wired through the proxies, in the fleet."""
        chain, entry = expand.create_node(self.chain)
        self.chain = chain
        others = [n.index for n in chain.nodes if n.index != entry.index]
        await self.wire(entry, others)
        for j in others:  # a restarted member dials it too
            other = chain.node(j)
            if self.network is not None and chain.transport == "tcp":
                cfg = NodeConfig.load(other.config_path)
                _rewrite(other, peers=(*cfg.peers, self.network.dial_address(j, entry.index)))
        self.fleet.add(entry)
        return entry

    async def wire(self, entry: NodeEntry, peers: list[int]) -> None:
        """Point ``entry``'s config at its listeners: one per peer, or one to the broker."""
        net = self.network
        if net is None:
            return
        if self.chain.transport == "mqtt":
            assert self.broker is not None
            _rewrite(entry, mqtt_broker=await net.add_mqtt_node(entry.index, self.broker.address))
            return
        await net.add_tcp_node(entry.index, entry.p2p, peers)
        _rewrite(entry, peers=tuple(net.dial_address(entry.index, j) for j in peers))


def _rewrite(entry: NodeEntry, **changes: object) -> None:
    cfg = NodeConfig.load(entry.config_path)
    entry.config_path.write_text(dataclasses.replace(cfg, **changes).to_toml(), "utf-8")  # type: ignore[arg-type]


async def create(
    root: Path,
    *,
    nodes: int,
    transport: str,
    byzantine: dict[int, str],
    seed: int,
    observers: int = 0,
    tx_count_limit: int | None = None,
    disks: frozenset[int] = frozenset(),
    txpool_capacity: int | None = None,
) -> ChaosCluster:
    """A fresh chain in ``root``: proxies between every pair (or node and broker), started.
    ``nodes`` sealers, then ``observers`` observers; room for 8 more nodes (``grow``).
    ``disks``: nodes whose data directory gets a filesystem of its own (disk faults)."""
    room = nodes + observers + 8
    p2p = procs.free_port_base(room)
    rpc = procs.free_port_base(room, avoid=range(p2p, p2p + room))
    broker = PrivateBroker(root.parent / "broker") if transport == "mqtt" else None
    url = f"mqtt://{broker.address[0]}:{broker.port}" if broker else "mqtt://127.0.0.1:1883"
    try:
        if broker is not None:
            broker.start()
        chain = init_chain(
            root,
            nodes=nodes,
            observers=observers,
            transport=transport,
            p2p_port=p2p,
            rpc_port=rpc,
            broker=url,
            tx_count_limit=tx_count_limit,
        )
    except BaseException:
        if broker is not None:
            broker.stop()
        raise
    cluster = ChaosCluster(
        chain=chain,
        fleet=Fleet(chain, byzantine),
        network=Network(transport, seed=seed),
        broker=broker,
        admin=accounts.load_key(chain.accounts_dir / "admin.key"),
        run_dir=root.parent,
    )
    try:
        everyone = [n.index for n in chain.nodes]
        for entry in chain.nodes:
            await cluster.wire(entry, [j for j in everyone if j != entry.index])
            if txpool_capacity is not None:
                _rewrite(entry, txpool_capacity=txpool_capacity)
        for i, behaviour in sorted(byzantine.items()):
            if behaviour == TWINS:
                cluster.twins.append(twins_mod.prepare(chain, i, root.parent))
        for i in sorted(disks):
            entry = chain.node(i)
            cfg = NodeConfig.load(entry.config_path)
            disk = NodeDisk(root.parent / "disks" / f"{entry.name}.img", cfg.path(cfg.data_dir))
            await asyncio.to_thread(disk.create)
            cluster.disks[i] = disk
        for entry in chain.nodes:
            cluster.fleet.start(entry.index)
        what = f"{nodes} sealers" + (f", {observers} observers" if observers else "")
        cluster.record("cluster", "start", f"{what} over {transport}")
        await cluster.wait_ready([n.index for n in chain.nodes])
        for twin in cluster.twins:
            twins_mod.start(twin, child_env())
            cluster.record("twins", "start", f"node{twin.index}'s twin ({twin.home.name})")
    except BaseException:
        await cluster.close()
        raise
    return cluster


def attach(root: Path, byzantine: dict[int, str], run_dir: Path) -> ChaosCluster:
    """A running chain directory, as it is: process faults and membership changes only.
    ``run_dir`` (a folder of this run's own) gets the schedule, the workload's records
    and the data copies."""
    chain = load_chain(root)
    fleet = Fleet(chain, byzantine)
    fleet.adopt()
    if not fleet.running():
        raise CommandError(f"no node of {root} is running", hint=f"ledgerlab up --dir {root}")
    return ChaosCluster(
        chain=chain,
        fleet=fleet,
        network=None,
        broker=None,
        admin=accounts.load_key(chain.accounts_dir / "admin.key"),
        run_dir=run_dir,
    )
