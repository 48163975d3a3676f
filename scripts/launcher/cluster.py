"""Starting nodes and waiting until they are really up: RPC answers and peers connected.

:func:`start_nodes` is all-or-nothing: if any node it started exits, or the group is not
connected in time, or the user presses Ctrl-C, every process *it* started is stopped
again and a one-line :class:`~scripts.launcher.procs.LaunchError` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from node.rpc.client import AsyncRpcClient, RpcError, RpcTransportError
from scripts.launcher import procs
from scripts.launcher.layout import Chain, NodeEntry
from scripts.launcher.procs import LaunchError

START_TIMEOUT = 30.0
GRACE = 5.0  # seconds before a quorum-connected node counts as ready


@dataclass(slots=True)
class StartResult:
    started: dict[str, int] = field(default_factory=dict)  # name -> pid
    already: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)


async def probe(node: NodeEntry, group: str, timeout: float = 1.0) -> tuple[int, int] | None:
    """``(height, connected peers)`` if the node answers RPC, else None."""
    client = AsyncRpcClient(
        node.rpc.rpartition(":")[0], node.rpc_port, group=group, timeout=timeout
    )
    try:
        height, peers = await client.batch([("getBlockNumber", [group]), ("getPeers", [group])])
        if isinstance(height, Exception) or isinstance(peers, Exception):
            return None
        return int(str(height), 0), len(peers or [])
    except (RpcTransportError, RpcError, OSError, ValueError, TypeError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await client.close()


def _cleanup(chain: Chain, result: StartResult) -> None:
    """Stop what this start attempt started and forget its pid files."""
    procs.stop_pids(list(result.started.values()), timeout=5.0)
    for proc in result.processes.values():
        with contextlib.suppress(Exception):
            proc.wait(timeout=1.0)
    for n in chain.nodes:
        if n.name in result.started:
            n.pid_path.unlink(missing_ok=True)


def start_nodes(
    chain: Chain,
    nodes: Sequence[NodeEntry] | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Callable[[str], None] | None = None,
    env: Callable[[NodeEntry], dict[str, str]] | None = None,
) -> StartResult:
    """Synchronous :func:`astart_nodes` (for verbs outside an event loop)."""
    return asyncio.run(astart_nodes(chain, nodes, timeout=timeout, progress=progress, env=env))


async def astart_nodes(
    chain: Chain,
    nodes: Sequence[NodeEntry] | None = None,
    *,
    timeout: float = START_TIMEOUT,
    progress: Callable[[str], None] | None = None,
    env: Callable[[NodeEntry], dict[str, str]] | None = None,
) -> StartResult:
    """Start ``nodes`` (default: all) that are not running; wait until they answer RPC and
    each sees every other running node of the chain as a peer. ``env(node)``: variables
    added to that node's environment."""
    targets = list(chain.nodes if nodes is None else nodes)
    result = StartResult()
    to_start: list[NodeEntry] = []
    for n in targets:
        state = procs.read_pid(n)
        if state.alive and state.pid is not None:
            result.already[n.name] = state.pid
            continue
        if state.stale:
            what = f"pid {state.pid} is not running" if state.pid else "unreadable"
            result.warnings.append(
                f"{n.name}: removed a stale pid file ({what}); the node was not stopped "
                f"cleanly last time, see `ledgerlab logs {n.index}`"
            )
            n.pid_path.unlink(missing_ok=True)
        to_start.append(n)
    if not to_start:
        return result
    for n in to_start:
        procs.check_ports(n)
    procs.check_broker(chain)
    offsets = {n.name: procs.stderr_size(n) for n in to_start}
    try:
        for n in to_start:
            proc = procs.spawn(n, env(n) if env is not None else None)
            result.processes[n.name] = proc
            result.started[n.name] = proc.pid
        if progress:
            progress(f"started {len(to_start)} node process(es); waiting for RPC and peers")
        await _wait_ready(chain, to_start, result, offsets, timeout)
    except BaseException:
        _cleanup(chain, result)
        raise
    return result


async def _wait_ready(
    chain: Chain,
    started: list[NodeEntry],
    result: StartResult,
    offsets: dict[str, int],
    timeout: float,
) -> None:
    """Until every started node answers RPC and sees every other running node.

    A node still missing a peer after a grace period is accepted when it sees enough
    of them to take part in consensus (a quorum of sealers counting itself); the
    transport keeps redialling, and the user gets a warning instead of a torn-down chain.
    """
    start = time.monotonic()
    deadline = start + timeout
    grace = start + min(GRACE, timeout / 2)
    sealers = len(chain.sealers)
    quorum = sealers - (sealers - 1) // 3
    last: dict[str, tuple[int, int] | None] = {}
    while True:
        for n in started:
            code = result.processes[n.name].poll()
            if code is not None:
                line = procs.last_error_line(n, offsets[n.name]) or "no output"
                raise LaunchError(
                    f"{n.name} exited at start (status {code}): {line}",
                    hint=f"full output in {n.stderr_path}; nothing was left running",
                )
        running = procs.running_nodes(chain)
        # members admit members only: a free node gets no peers, and is nobody's peer
        members = {n.index for n in chain.nodes if n.role != "free" and n.index in running}
        expected = {n.name: 0 if n.role == "free" else len(members - {n.index}) for n in started}
        enough = {
            n.name: min(expected[n.name], quorum - 1 if n.role == "sealer" else 1) for n in started
        }
        answers = await asyncio.gather(*(probe(n, chain.group_id) for n in started))
        last = dict(zip((n.name for n in started), answers, strict=True))
        if all(a is not None and a[1] >= expected[name] for name, a in last.items()):
            return
        now = time.monotonic()
        if now >= grace and all(a is not None and a[1] >= enough[k] for k, a in last.items()):
            for name, a in last.items():
                if a is not None and a[1] < expected[name]:
                    result.warnings.append(
                        f"{name} sees {a[1]}/{expected[name]} peers after {now - start:.0f} s "
                        "(enough for consensus; it keeps redialling the others)"
                    )
            return
        if now >= deadline:
            lagging = []
            for name, a in last.items():
                if a is None:
                    lagging.append(f"{name} does not answer RPC")
                elif a[1] < expected[name]:
                    lagging.append(f"{name} sees {a[1]}/{expected[name]} peers")
            raise LaunchError(
                f"nodes not ready after {timeout:.0f} s: {'; '.join(lagging)}",
                hint="check `ledgerlab logs`; nothing was left running",
            )
        await asyncio.sleep(0.2)
