"""The supervision policy (node/runtime/supervisor.py): our own bugs are logged, counted, restarted
with back-off, or stop the node with a reason; the rest of the cluster keeps committing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from node import __main__ as node_main
from node.rpc.jsonrpc import Dispatcher
from node.rpc.metrics import render
from node.runtime import Node
from node.runtime.service import NodeService
from node.runtime.supervisor import EXIT_INTERNAL_ERROR, Supervisor
from node.runtime.txpool import Reason
from storage.kv import StorageError
from tests.runtime.cluster import MemoryCluster, loops_alive, transfer, wait_until

pytestmark = pytest.mark.asyncio


class Injected(RuntimeError):
    """The bug a test plants."""


# -- the policy on its own -------------------------------------------------------------


async def test_a_failing_loop_is_counted_and_restarted_with_backoff() -> None:
    sup = Supervisor("t", first_backoff=0.01, max_backoff=0.04)
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 3:
            raise Injected("boom")
        await asyncio.Event().wait()

    sup.spawn("flaky", flaky)
    await wait_until(lambda: len(runs) == 4, timeout=5)
    assert sup.errors["flaky"] == 3 and sup.restarts["flaky"] == 3
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039  # doubling
    assert sup.failure is None and sup.running() == ["t:flaky"]
    await sup.aclose()
    assert sup.running() == []


async def test_a_loop_that_keeps_failing_stops_everything_with_a_reason() -> None:
    sup = Supervisor("t", max_restarts=2, window=10, first_backoff=0.001)

    async def broken() -> None:
        raise Injected("disk on fire")

    async def healthy() -> None:
        await asyncio.Event().wait()

    sup.spawn("healthy", healthy)
    sup.spawn("broken", broken)
    await asyncio.wait_for(sup.stopped.wait(), 5)
    assert sup.errors["broken"] == 3  # two restarts allowed, the third failure is fatal
    assert sup.failure is not None
    assert "broken loop failed 3 times" in sup.failure and "Injected: disk on fire" in sup.failure
    await wait_until(lambda: sup.running() == [], timeout=2)  # the healthy loop is gone too
    sup.spawn("late", healthy)
    assert sup.running() == [], "a stopped supervisor starts nothing"


async def test_one_shot_tasks_are_not_restarted_and_cancellation_is_not_a_failure() -> None:
    sup = Supervisor("t")
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1
        raise Injected("x")

    sup.spawn("fetch", once, restart=False)
    await wait_until(lambda: sup.errors["fetch"] == 1, timeout=2)
    await asyncio.sleep(0.05)
    assert calls == 1 and not sup.restarts

    async def forever() -> None:
        await asyncio.Event().wait()

    sup.spawn("loop", forever)
    await asyncio.sleep(0)
    await sup.aclose()
    assert sup.errors["loop"] == 0 and sup.failure is None


async def test_a_loop_that_returns_is_a_bug_too() -> None:
    sup = Supervisor("t", first_backoff=0.001)
    runs = 0

    async def returns() -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            await asyncio.Event().wait()

    sup.spawn("quitter", returns)
    await wait_until(lambda: runs == 2, timeout=2)
    assert sup.errors["quitter"] == 1
    await sup.aclose()


# -- faults planted in a running node's loops ------------------------------------------


def fail_in(loop: str, func: Callable[..., Any], active: list[bool]) -> Callable[..., Any]:
    """``func``, except that it raises while ``active[0]`` and called from task ``loop``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        task = asyncio.current_task()
        if active[0] and task is not None and task.get_name().endswith(f":{loop}"):
            raise Injected(f"planted in {loop}")
        return func(*args, **kwargs)

    return wrapper


def plant(node: Node, loop: str, active: list[bool]) -> None:
    """Make something only ``loop`` calls raise (while ``active[0]``)."""
    if loop == "tick":
        node._feed = fail_in("tick", node._feed, active)  # type: ignore[method-assign]
    elif loop == "seal":  # each pass of the loop clears its wake-up event
        node._seal_wake.clear = fail_in("seal", node._seal_wake.clear, active)  # type: ignore[method-assign]
    elif loop == "gossip":
        node._gossip_wake.clear = fail_in("gossip", node._gossip_wake.clear, active)  # type: ignore[method-assign]
        node._gossip_wake.set()  # what a client admission does: the sleeping loop looks
    elif loop == "status":
        node.transport.broadcast = fail_in(loop, node.transport.broadcast, active)  # type: ignore[method-assign]
    elif loop == "sync":
        node.sync._candidates = fail_in("sync", node.sync._candidates, active)  # type: ignore[method-assign]
    elif loop == "inbound":
        node._on_frame = fail_in("inbound", node._on_frame, active)  # type: ignore[method-assign]
    else:
        raise AssertionError(loop)


def committed(nodes: list[Node]) -> int:
    return min(n.chain.store.total_tx_count() for n in nodes)


async def keep_committing(nodes: list[Node], start: int, count: int = 20) -> None:
    """Send ``count`` transfers to the first of ``nodes``; all of them commit them and
    reach one head (a node that lagged with earlier txs has caught up too)."""
    before = max(n.chain.store.total_tx_count() for n in nodes)
    nodes[0].submit(
        [transfer(i, head=nodes[0].chain.head.number) for i in range(start, start + count)]
    )
    await wait_until(
        lambda: committed(nodes) >= before + count and len({n.chain.head for n in nodes}) == 1,
        timeout=30,
    )


async def test_what_reaches_the_event_loops_handler_is_logged_and_counted_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that raises, or a future's exception nobody retrieves (aiomqtt leaves
    some when a broker drops it), has no loop to blame: counted apart, never a stop."""
    loop = asyncio.get_running_loop()
    before = loop.get_exception_handler()
    async with MemoryCluster(1, tick_ms=10) as cluster:
        node = cluster.running()[0]

        def boom() -> None:
            raise Injected("a library callback")

        loop.call_soon(boom)
        unretrieved: asyncio.Future[None] = loop.create_future()
        unretrieved.set_exception(Injected("nobody awaits me"))
        del unretrieved  # garbage: asyncio reports the exception to the handler
        await wait_until(lambda: node.supervisor.loop_errors == 2, timeout=5)
        assert "a library callback" in caplog.text and "nobody awaits me" in caplog.text
        assert not node.supervisor.errors and node.failure is None and loops_alive(node)
        text = render(NodeService(node).metrics())
        assert "ledgerlab_event_loop_errors_total 2" in text
        assert "process_cpu_seconds_total" in text and "process_resident_memory_bytes" in text
    assert loop.get_exception_handler() is before  # the node put the previous one back


LONG_LIVED = ["tick", "seal", "gossip", "status", "sync"]


@pytest.mark.parametrize("loop", LONG_LIVED)
async def test_a_loop_that_keeps_failing_stops_its_node_and_the_others_commit(loop: str) -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        await keep_committing(cluster.running(), 0)
        faulty = cluster.nodes[3]
        assert faulty is not None and loops_alive(faulty)
        faulty.supervisor.first_backoff = 0.01
        plant(faulty, loop, [True])
        if loop == "sync":
            faulty.sync.want(faulty.chain.head.number + 1, [])  # make the sync loop look
            for _ in range(8):
                await asyncio.sleep(0.3)
                faulty.sync.want(faulty.chain.head.number + 1, [])
        await asyncio.wait_for(faulty.supervisor.stopped.wait(), 20)
        assert faulty.supervisor.errors[loop] == faulty.supervisor.max_restarts + 1
        assert faulty.failure is not None and faulty.failure.startswith(f"{loop} loop failed")
        assert faulty.supervisor.running() == [], "no half-alive node: every loop stopped"
        others = [n for n in cluster.running() if n is not faulty]
        await keep_committing(others, 100)
        assert len({n.chain.head for n in others}) == 1
        # its store is intact: restarted, it catches up with the others
        await cluster.stop(3)
        node = await cluster.start(3)
        await wait_until(lambda: node.chain.head == others[0].chain.head, timeout=30)
        assert loops_alive(node)


@pytest.mark.parametrize("loop", [*LONG_LIVED, "inbound"])
async def test_a_passing_fault_is_counted_and_the_node_carries_on(loop: str) -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        await keep_committing(cluster.running(), 0)
        faulty = cluster.nodes[2]
        assert faulty is not None
        active = [True]
        plant(faulty, loop, active)
        if loop == "sync":
            faulty.sync.want(faulty.chain.head.number + 1, [])
        others = [n for n in cluster.running() if n is not faulty]
        head = others[0].chain.head.number
        others[0].submit([transfer(i, head=head) for i in range(100, 120)])  # frames to fail on
        await wait_until(lambda: faulty.supervisor.errors[loop] >= 1, timeout=10)
        active[0] = False
        await keep_committing(cluster.running(), 200)  # the faulty node commits again too
        assert faulty.failure is None
        assert len({n.chain.head for n in cluster.running()}) == 1
        if loop == "inbound":  # one bad frame is dropped: the loop itself never failed
            assert faulty.dropped["handler_error"] >= 1 and not faulty.supervisor.restarts
        else:
            assert faulty.supervisor.restarts[loop] >= 1


async def test_a_fetch_task_bug_is_counted_and_a_view_change_recovers() -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        await keep_committing(cluster.running(), 0)
        faulty = cluster.nodes[1]
        assert faulty is not None
        active = [True]

        async def broken_fetch(*args: Any) -> None:
            if active[0]:
                raise Injected("planted in fetch")

        faulty._fetch_then_execute = broken_fetch  # type: ignore[method-assign]
        # Txs only the leader holds: every other node must fetch them.
        leader = cluster.nodes[faulty.replica.leader_of(faulty.replica.view, faulty.replica.height)]
        assert leader is not None and leader is not faulty
        leader._gossip_wake.clear()
        head = leader.chain.head.number
        leader.pool.admit(transfer(500, head=head), head)
        await wait_until(lambda: faulty.supervisor.errors["fetch"] >= 1, timeout=10)
        active[0] = False
        await keep_committing(cluster.running(), 600)
        assert faulty.failure is None and loops_alive(faulty)


async def test_a_decided_block_that_cannot_be_stored_stops_the_node() -> None:
    """A bug of ours while storing a decided block (not the disk) is fatal."""
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        await keep_committing(cluster.running(), 0)
        faulty = cluster.nodes[0]
        assert faulty is not None

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise Injected("planted in commit")

        faulty.chain.commit = broken  # type: ignore[method-assign]
        await keep_committing([n for n in cluster.running() if n is not faulty], 100)
        await asyncio.wait_for(faulty.supervisor.stopped.wait(), 10)
        assert faulty.failure is not None
        assert "cannot store decided block" in faulty.failure and "planted" in faulty.failure
        assert faulty.supervisor.errors["commit"] == 1


async def test_a_full_disk_mutes_the_node_refuses_txs_and_asks_for_a_restart_once_writable(
    tmp_path: Any,
) -> None:
    """node/runtime/storage_fault.py: the disk failing is no bug of ours and no reason to
    exit; the node stops voting, refuses client txs with StorageUnavailable, reports why,
    and asks to be opened again from disk once a probe write works."""
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        await keep_committing(cluster.running(), 0)
        faulty = cluster.nodes[0]
        assert faulty is not None
        faulty.config = faulty.config.__class__(
            home=tmp_path, name=faulty.config.name, transport="memory", tick_ms=10
        )
        full = [True]
        commit = faulty.chain.commit

        def disk_full(*args: Any, **kwargs: Any) -> Any:
            if full[0]:
                raise StorageError("RocksDB write failed: No space left on device")
            return commit(*args, **kwargs)

        faulty.chain.commit = disk_full  # type: ignore[method-assign]
        others = [n for n in cluster.running() if n is not faulty]
        await keep_committing(others, 100)
        await wait_until(lambda: faulty.storage_fault is not None, timeout=10)
        assert faulty.storage_fault is not None
        assert "cannot store decided block" in faulty.storage_fault.reason
        head = faulty.chain.head.number
        await keep_committing(others, 200)  # the rest go on without it
        assert faulty.chain.head.number == head  # it stored nothing meanwhile
        refused = faulty.submit([transfer(900, head=head)])
        assert [getattr(r, "reason", None) for r in refused] == [Reason.STORAGE_UNAVAILABLE]
        status = NodeService(faulty).consensus_status()
        assert status["storage_fault"] == faulty.storage_fault.reason
        # a stall says why: the fault, not the votes it no longer sends
        assert faulty.stall_reason().startswith(f"storage fault: {faulty.storage_fault.reason}")
        assert faulty.failure is None and not faulty.supervisor.errors  # not a bug of ours
        assert not faulty.supervisor.stopped.is_set()  # the probe fails: no data dir yet
        (tmp_path / "data").mkdir()
        full[0] = False
        await asyncio.wait_for(faulty.supervisor.stopped.wait(), 10)
        assert faulty.failure is None
        assert faulty.supervisor.restart_reason is not None
        assert "writable again" in faulty.supervisor.restart_reason
        assert not (tmp_path / "data" / ".storage-probe").exists()


async def test_python_m_node_exits_70_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = MemoryCluster(4, consensus_timeout=3, tick_ms=10)
    async with contextlib.AsyncExitStack() as stack:
        for i in range(3):
            await cluster.start(i)
            stack.push_async_callback(cluster.stop, i)
        node = Node(
            config=cluster.nodes[0].config.__class__(  # type: ignore[union-attr]
                home=cluster.nodes[0].config.home,  # type: ignore[union-attr]
                name="node3",
                transport="memory",
                tick_ms=10,
                rpc_listen="127.0.0.1:0",
            ),
            genesis=cluster.genesis,
            keypair=cluster.keys[3],
            kv=cluster.kvs[3],
            hub=cluster.hub,
            rpc=False,
        )
        run = asyncio.create_task(node_main._run(node))
        await wait_until(lambda: loops_alive(node), timeout=5)
        node.supervisor.first_backoff = 0.001
        plant(node, "status", [True])
        code = await asyncio.wait_for(run, 30)
        assert code == EXIT_INTERNAL_ERROR
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: node3 stopped: status loop failed")


async def test_an_rpc_method_bug_is_minus_32603_and_counted() -> None:
    async with MemoryCluster(4) as cluster:
        node = cluster.node(0)
        service = NodeService(node)

        def broken() -> int:
            raise Injected("planted in an RPC method")

        service.block_number = broken  # type: ignore[method-assign]
        dispatcher = Dispatcher({"group0": service}, on_internal_error=node.supervisor.report)
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 7, "method": "getBlockNumber", "params": ["group0"]}
        )
        reply = json.loads(await dispatcher.handle_bytes(body.encode()) or b"")
        assert reply["error"]["code"] == -32603 and reply["id"] == 7
        assert node.supervisor.errors["rpc"] == 1 and node.failure is None
