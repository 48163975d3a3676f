"""Applying a schedule to a :class:`~scripts.chaos.cluster.ChaosCluster`.

Each perturbation is an *apply* that returns its *undo* (or None when there is nothing
to undo): kill -> restart, pause -> resume, cut -> heal, degrade -> clear, broker down
-> up, remove -> add back (observer, synced, sealer). :meth:`Perturber.play` applies
each at its time, waits its duration and undoes it; when the run ends early every
pending undo runs at once, so the cluster is whole again before the checks.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from node.rpc.client import CONSENSUS, RpcError, RpcTransportError
from node.runtime.config import NodeConfig
from node.runtime.node import MAX_PROPOSAL_AHEAD_MS
from scripts.chaos.cluster import ChaosCluster
from scripts.chaos.disk import DiskError, NodeDisk
from scripts.chaos.proxy import FlowFaults
from scripts.chaos.schedule import Perturbation, Schedule

T = TypeVar("T")

Undo = Callable[[], Awaitable[None]]
GOVERNANCE_TIMEOUT = 60.0
SYNC_TIMEOUT = 60.0
INSTANT_WINDOW = 5.0  # seconds a one-shot fault (stale restart, grow) counts as "during faults"


class Perturber:
    def __init__(self, cluster: ChaosCluster, offset: float) -> None:
        self.c = cluster
        self.offset = offset  # cluster time at which the schedule's 0 s is
        self.stop = asyncio.Event()
        self.applied: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.windows: list[tuple[float, float, str]] = []  # cluster time
        self.snapshots: dict[int, tuple[Path, int]] = {}  # node -> (copy, its height)
        self.notes: list[str] = []
        self.disk_victims: set[str] = set()  # nodes a disk fault was applied to

    # -- playing ------------------------------------------------------------------------

    async def play(self, schedule: Schedule) -> None:
        """Every perturbation at its time; returns once all are applied and undone."""
        jobs = []
        for p in schedule.perturbations:
            if p.kind == "stale_restart":
                jobs.append(self._at(p.at - p.age, self._snapshot, p))
            jobs.append(self._at(p.at, self._run, p))
        await asyncio.gather(*jobs)

    async def _at(
        self, at: float, job: Callable[[Perturbation], Awaitable[None]], p: Perturbation
    ) -> None:
        if await self._sleep(self.offset + at - self.c.now()):
            await job(p)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, or return False at once if the run is over."""
        if self.stop.is_set():
            return False
        try:
            await asyncio.wait_for(self.stop.wait(), max(0.0, seconds))
        except TimeoutError:
            return True
        return False

    async def _run(self, p: Perturbation) -> None:
        start = self.c.now()
        if p.kind == "leader_kill":
            await self._leader_kill(p)
        else:
            undo = await self._apply(p)
            if undo is not None:
                await self._sleep(p.duration)
                await undo()
        end = self.c.now()
        self.windows.append((start, max(end, start + INSTANT_WINDOW), p.kind))

    async def _apply(self, p: Perturbation) -> Undo | None:
        handler = getattr(self, f"_{p.kind}")
        undo: Undo | None = await handler(p)
        return undo

    def _skip(self, p: Perturbation, why: str) -> None:
        self.skipped[p.kind] += 1
        self.c.record(p.kind, "skipped", why)

    def _resolve(self, node: int | str | None) -> int | None:
        if node == "leader":
            leader = self.c.monitor.leader_id()
            return None if leader is None else self.c.index_of(leader)
        return node if isinstance(node, int) and node in self.c.fleet.nodes else None

    # -- processes ----------------------------------------------------------------------

    async def _kill(self, p: Perturbation) -> Undo | None:
        i = self._resolve(p.node)
        if i is None or self.c.fleet[i].state not in ("running", "paused"):
            self._skip(p, f"node {p.node} is not running")
            return None
        return self._kill_node(i, p.kind)

    def _kill_node(self, i: int, kind: str) -> Undo:
        self.c.fleet.kill(i)
        self.c.monitor.forget(i)
        self.applied[kind] += 1
        self.c.record(kind, "kill", f"node{i}")

        async def restart() -> None:
            if self.c.fleet[i].state == "killed":
                self.c.fleet.start(i, restart=True)
                self.c.record(kind, "restart", f"node{i}")

        return restart

    async def _pause(self, p: Perturbation) -> Undo | None:
        i = self._resolve(p.node)
        if i is None or self.c.fleet[i].state != "running":
            self._skip(p, f"node {p.node} is not running")
            return None
        self.c.fleet.pause(i)
        self.applied[p.kind] += 1
        self.c.record(p.kind, "pause", f"node{i}")

        async def resume() -> None:
            self.c.fleet.resume(i)
            self.c.record(p.kind, "resume", f"node{i}")

        return resume

    async def _leader_kill(self, p: Perturbation) -> None:
        for round_ in range(p.count):
            if round_ and not await self._sleep(p.interval):
                return
            i = self._resolve("leader")
            if i is None or self.c.fleet[i].state != "running":
                self._skip(p, "no running leader known")
                continue
            restart = self._kill_node(i, p.kind)
            await self._sleep(p.duration)
            await restart()

    async def _stale_restart(self, p: Perturbation) -> None:
        i = self._resolve(p.node)
        if i is None or i not in self.snapshots:
            self._skip(p, f"no copy of node {p.node}'s data")
            return None
        copy, height = self.snapshots[i]
        if self.c.fleet[i].state in ("running", "paused"):
            self.c.fleet.kill(i)
            self.c.monitor.forget(i)
        data = _data_dir(self.c, i)
        await asyncio.to_thread(_replace_tree, copy, data)
        behind = self.c.monitor.head() - height
        self.c.fleet.start(i, restart=True)
        self.applied[p.kind] += 1
        self.c.record(
            p.kind,
            "restore",
            f"node{i} from the copy at height {height} ({behind} blocks behind the head)",
        )
        self.notes.append(f"node{i} restarted from data {behind} blocks old")
        return None

    async def _snapshot(self, p: Perturbation) -> None:
        i = self._resolve(p.node)
        if i is None:
            return
        node = self.c.fleet[i]
        view = self.c.monitor.latest.get(i)
        height = view.height if view else 0
        pause = node.state == "running"
        if pause:
            self.c.fleet.pause(i)  # a crash-consistent image: nothing writes while we copy
        try:
            copy = self.c.run_dir / "snapshots" / f"node{i}-{int(self.c.now())}"
            skip = shutil.ignore_patterns("lost+found", ".chaos-ballast*")
            await asyncio.to_thread(shutil.copytree, _data_dir(self.c, i), copy, ignore=skip)
        finally:
            if pause:
                self.c.fleet.resume(i)
        self.snapshots[i] = (copy, height)
        self.c.record(p.kind, "copy", f"node{i} data at height {height}")

    # -- disks and clocks ---------------------------------------------------------------

    def _disk_victim(self, p: Perturbation) -> int | None:
        i = self._resolve(p.node)
        if i is None or i not in self.c.disks:
            self._skip(p, f"node {p.node} has no filesystem of its own (scripts/chaos/disk.py)")
            return None
        if self.c.fleet[i].state != "running":
            self._skip(p, f"node {p.node} is not running")
            return None
        return i

    async def _break_disk(
        self, p: Perturbation, damage: Callable[[NodeDisk], T]
    ) -> tuple[int, NodeDisk, T] | None:
        """Apply ``damage`` to the victim's filesystem; the victim, its disk and what
        ``damage`` returned, or None (skipped: no disk of its own, not running, failed)."""
        i = self._disk_victim(p)
        if i is None:
            return None
        disk = self.c.disks[i]
        try:
            result = await asyncio.to_thread(damage, disk)
        except (DiskError, OSError) as exc:
            self._skip(p, f"node{i}: {exc}")
            return None
        self.c.impaired.add(i)
        self.disk_victims.add(f"node{i}")
        self.applied[p.kind] += 1
        return i, disk, result

    async def _disk_full(self, p: Perturbation) -> Undo | None:
        broken = await self._break_disk(p, NodeDisk.fill)
        if broken is None:
            return None
        i, disk, taken = broken
        self.c.record(p.kind, "fill", f"node{i}: {taken:,} bytes of ballast, 0 free")

        async def free() -> None:
            await self._look_for_fault(i)
            await asyncio.to_thread(disk.drain)
            self.c.impaired.discard(i)  # the node restarts itself from disk (storage_fault.py)
            self.c.record(p.kind, "free", f"node{i}")

        return free

    async def _read_only(self, p: Perturbation) -> Undo | None:
        broken = await self._break_disk(p, NodeDisk.break_read_only)
        if broken is None:
            return None
        i, disk, _ = broken
        self.c.record(p.kind, "break", f"node{i}: its filesystem is read-only")

        async def repair() -> None:
            await self._look_for_fault(i)
            was = self.c.fleet[i].state
            self.c.fleet.stop_all([i])  # a read-only ext4 needs unmounting: files closed
            self.c.monitor.forget(i)
            try:
                await asyncio.to_thread(disk.repair)
            except DiskError as exc:  # the run's checks will show what this leaves
                self.notes.append(f"node{i}'s filesystem: {exc}")
                self.c.record(p.kind, "error", f"node{i}: {exc}")
            self.c.impaired.discard(i)
            if was in ("running", "paused"):
                self.c.fleet.start(i, restart=True)
            self.c.record(p.kind, "restart", f"node{i}: fsck, mounted again, restarted")

        return repair

    async def _look_for_fault(self, i: int) -> None:
        """One more status sample of node ``i`` before its disk is undone, so that a
        fault that began since the monitor last asked is seen too."""
        view = await self.c.monitor.ask(i)
        if view is not None:
            self.c.monitor.take(i, view)

    async def _clock_skew(self, p: Perturbation) -> Undo | None:
        i = self._resolve(p.node)
        if i is None or self.c.fleet[i].state != "running":
            self._skip(p, f"node {p.node} is not running")
            return None
        self._restart_with_clock(i, p.offset)
        if abs(p.offset) * 1000 > MAX_PROPOSAL_AHEAD_MS:
            self.c.impaired.add(i)  # it cannot vote (behind) or lead (ahead): docs
        self.applied[p.kind] += 1
        self.c.record(p.kind, "restart", f"node{i} with its clock {p.offset:+g} s off")

        async def correct() -> None:
            if self.c.fleet[i].state in ("running", "paused"):
                self._restart_with_clock(i, 0.0)
                self.c.record(p.kind, "restart", f"node{i} with a true clock")
            else:
                self.c.fleet[i].clock_offset = 0.0
            self.c.impaired.discard(i)

        return correct

    def _restart_with_clock(self, i: int, offset: float) -> None:
        self.c.fleet.kill(i)
        self.c.monitor.forget(i)
        self.c.fleet[i].clock_offset = offset
        self.c.fleet.start(i, restart=True)

    # -- network ------------------------------------------------------------------------

    async def _partition(self, p: Perturbation) -> Undo | None:
        net = self.c.network
        if net is None:
            self._skip(p, "no proxies (attached to a running chain)")
            return None
        groups = [list(g) for g in p.groups]
        rest = [i for i in self.c.fleet.nodes if all(i not in g for g in groups)]
        max(groups, key=len).extend(rest)  # nodes the schedule did not name stay with most
        links = net.partition(groups, p.mode)
        self.applied[p.kind] += 1
        self.c.record(
            p.kind, "cut", f"{'|'.join(','.join(map(str, g)) for g in groups)} ({p.mode})"
        )

        async def heal() -> None:
            net.heal(links)
            self.c.record(p.kind, "heal")

        return heal

    async def _degrade(self, p: Perturbation, faults: FlowFaults) -> Undo | None:
        net = self.c.network
        if net is None:
            self._skip(p, "no proxies (attached to a running chain)")
            return None
        links = net.degrade(p.links, faults)
        self.applied[p.kind] += 1
        self.c.record(p.kind, "degrade", f"{len(links)} links: {faults}")

        async def clear() -> None:
            for link in links:
                link.clear_faults()
            self.c.record(p.kind, "clear")

        return clear

    async def _slow(self, p: Perturbation) -> Undo | None:
        faults = FlowFaults(
            delay=p.delay_ms / 1000, jitter=p.jitter_ms / 1000, rate=p.rate_kbps * 1024 / 8
        )
        return await self._degrade(p, faults)

    async def _lossy(self, p: Perturbation) -> Undo | None:
        return await self._degrade(p, FlowFaults(loss=p.loss, reset=p.reset))

    async def _broker_restart(self, p: Perturbation) -> Undo | None:
        broker, net = self.c.broker, self.c.network
        if broker is None or net is None:
            self._skip(p, "not an MQTT run with a private broker")
            return None
        await asyncio.to_thread(broker.stop)
        net.broker_up = False
        self.applied[p.kind] += 1
        self.c.record(p.kind, "stop", f"broker :{broker.port}")

        async def start() -> None:
            await asyncio.to_thread(broker.start)
            broker.restarts += 1
            net.broker_up = True
            self.c.record(p.kind, "start", f"broker :{broker.port}")

        return start

    # -- membership ---------------------------------------------------------------------

    async def _grow(self, p: Perturbation) -> None:
        entry = await self.c.new_node()
        self.c.fleet.start(entry.index)
        self.applied[p.kind] += 1
        self.c.record(p.kind, "start", f"{entry.name} (free node)")
        added = await self._governance("addObserver", entry.index, p.kind)
        if added and await self._wait_synced(entry.index):
            await self._governance("addSealer", entry.index, p.kind)
        return None

    async def _remove(self, p: Perturbation) -> Undo | None:
        i = self._resolve(p.node)
        if i is None or i not in self.c.sealers():
            self._skip(p, f"node {p.node} is not a sealer")
            return None
        left = [s for s in self.c.sealers() if s != i]
        byzantine = sum(not self.c.is_honest(s) for s in left)
        if len(left) < 3 or byzantine > (len(left) - 1) // 3:
            self._skip(
                p,
                f"{len(left)} sealers ({byzantine} Byzantine) would be left: more "
                "faults than they tolerate",
            )
            return None
        if not await self._governance("remove", i, p.kind):
            return None
        self.applied[p.kind] += 1

        async def add_back() -> None:
            added = await self._governance("addObserver", i, p.kind, action="readd")
            if added and await self._wait_synced(i):
                await self._governance("addSealer", i, p.kind, action="readd")

        return add_back

    async def _governance(self, method: str, target: int, kind: str, action: str = "") -> bool:
        """Send ``method(target)`` signed by the admin account through a member that can
        reach a quorum (forced when it refuses it as MembershipBreaksQuorum), and wait for
        the receipt from any member: the node it went through may be the one removed."""
        node_id = self.c.chain.node(target).node_id
        deadline = time.monotonic() + GOVERNANCE_TIMEOUT
        force = False
        while time.monotonic() < deadline:  # also after the stop: an undo must finish
            via = self.c.talking_member()
            if via is None:
                await asyncio.sleep(1.0)
                continue
            try:
                tx_hash = await self._send_governance(via, method, node_id, force)
            except RpcError as exc:
                if exc.reason == "MembershipBreaksQuorum" and not force:
                    force = True
                    self.c.record(kind, "refused", f"{method} node{target}: {exc.message}")
                    continue
                self.c.record(kind, "error", f"{method} node{target}: {exc.message}")
                await asyncio.sleep(1.0)
                continue
            except (RpcTransportError, OSError) as exc:
                self.c.record(kind, "retry", f"{method} node{target} via node{via}: {exc}")
                await asyncio.sleep(1.0)
                continue
            status = await self._receipt_status(tx_hash, deadline)
            forced = " (forced)" if force else ""
            self.c.record(
                kind,
                action or method,
                f"{method} node{target} via node{via}{forced}: status {status}",
            )
            return status == 0
        self.notes.append(f"{method} node{target} did not complete")
        return False

    async def _send_governance(self, via: int, method: str, node_id: str, force: bool) -> str:
        client = self.c.client(via, timeout=5.0)
        try:
            stx = await client.build_tx(self.c.admin, CONSENSUS, method, [node_id])
            return await client.send_raw(stx.encoded, force=force)
        finally:
            await client.close()

    async def _receipt_status(self, tx_hash: str, deadline: float) -> int | None:
        """The receipt's status, asked of every running member in turn; None at the deadline."""
        while time.monotonic() < deadline:
            for n in self.c.fleet.running():
                client = self.c.client(n.index, timeout=2.0)
                try:
                    receipt = await client.receipt(tx_hash)
                except (RpcError, RpcTransportError, OSError):
                    continue
                finally:
                    await client.close()
                if receipt is not None:
                    return int(receipt["status"], 16)
            await asyncio.sleep(0.5)
        return None

    async def _wait_synced(self, index: int) -> bool:
        target = self.c.monitor.head()
        deadline = time.monotonic() + SYNC_TIMEOUT
        while time.monotonic() < deadline:
            view = self.c.monitor.latest.get(index)
            if view is not None and view.height >= target:
                return True
            await asyncio.sleep(0.5)
        self.notes.append(f"node{index} did not reach height {target} in {SYNC_TIMEOUT:.0f} s")
        return False


def _data_dir(cluster: ChaosCluster, index: int) -> Path:
    cfg = NodeConfig.load(cluster.chain.node(index).config_path)
    return cfg.path(cfg.data_dir)


def _replace_tree(source: Path, target: Path) -> None:
    if target.is_mount():  # a filesystem of its own (disk faults): empty it, keep it
        for item in target.iterdir():
            if item.name == "lost+found":
                continue
            if item.is_dir():
                shutil.rmtree(item)
            else:
                item.unlink()
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
