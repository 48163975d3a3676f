"""Consortium operations: list and change sealers and observers, and grow a running chain.

``ledgerlab sealers`` / ``observers`` list the members the chain names, with each one's
connection to the node asked and its height. ``sealers add|remove`` and ``observers
add|remove`` are governor transactions to the Consensus precompile (0x1003): the change
applies from the block after the one that holds it, and the verb prints the lists in
force from then on. A node refuses a change that would leave the new sealer list short of
its quorum among the nodes it is connected to (MembershipBreaksQuorum); ``--force``
submits it anyway. ``add-node`` creates the next node folder (key and certificate from
the chain's agency), adds it as an observer, starts it, waits until it has synced the
whole history, and makes it a sealer (unless ``--observer``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from rich.markup import escape
from rich.table import Table

from consensus.quorum import quorum
from node.rpc.client import RpcClient, RpcError, RpcTransportError
from scripts.commands import console as console_verbs
from scripts.errors import CommandError
from scripts.launcher import cluster, expand, procs
from scripts.launcher import status as status_mod
from scripts.launcher.layout import Chain, NodeEntry
from scripts.launcher.options import (
    Verb,
    add_target,
    add_verbs,
    arg,
    connect,
    console,
    open_chain,
    print_json,
)

CONSENSUS = "0x1003"
SYNC_POLL_S = 0.5
CAUGHT_UP_BLOCKS = 1
"""add-node promotes a new node once it is this close to the live head."""


# ----------------------------------------------------------------------------- listing


def _heights(chain: Chain | None) -> dict[str, int | None]:
    """Node id -> height for every node of the chain directory (None: not answering)."""
    if chain is None:
        return {}
    statuses = asyncio.run(status_mod.collect(chain, timeout=1.5))
    return {s.node.node_id: (s.height if s.answered else None) for s in statuses}


def member_rows(client: RpcClient, chain: Chain | None, ids: list[str]) -> list[dict[str, Any]]:
    """Each member with its connection to the node asked and its height."""
    me = client.consensus_status().get("nodeId", "")
    connected = {str(p.get("NodeID", "")).removeprefix("0x") for p in client.peers()}
    heights = _heights(chain)
    rows = []
    for i, nid in enumerate(ids):
        state = "self" if nid == me else "connected" if nid in connected else "not connected"
        rows.append(
            {
                "index": i,
                "node": (chain.name_of(nid) if chain else None) or "-",
                "nodeId": nid,
                "connection": state,
                "height": heights.get(nid),
            }
        )
    return rows


def _print_members(rows: list[dict[str, Any]], what: str, label: str) -> None:
    if not rows:
        console.print(f"no {what}")
        return
    table = Table(title=f"{len(rows)} {what} (as {label} sees them)", title_justify="left")
    for col, justify in (("index", "right"), ("node", "left"), ("node id", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("connection")
    table.add_column("height", justify="right")
    for r in rows:
        colour = {"self": "cyan", "connected": "green"}.get(r["connection"], "red")
        height = "-" if r["height"] is None else str(r["height"])
        nid = r["nodeId"]
        table.add_row(
            str(r["index"]), r["node"], nid[:16] + "…", f"[{colour}]{r['connection']}[/]", height
        )
    console.print(table)


def _list(args: argparse.Namespace, observers: bool) -> int:
    what = "observers" if observers else "sealers"

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        ids = client.observers() if observers else client.sealers()
        rows = member_rows(client, chain, ids)
        if args.json:
            print_json(rows)
        else:
            _print_members(rows, what, label)
            if not observers:
                up = sum(1 for r in rows if r["connection"] in ("self", "connected"))
                need = quorum(len(rows)) if rows else 0
                colour = "green" if up >= need else "red"
                console.print(
                    f"[{colour}]{up} of {len(rows)} sealers reachable from {label}; "
                    f"quorum {need}[/]"
                )
        return 0

    return console_verbs.with_client(args, run)


def cmd_sealers(args: argparse.Namespace) -> int:
    return _list(args, observers=False)


def cmd_observers(args: argparse.Namespace) -> int:
    return _list(args, observers=True)


# ----------------------------------------------------------------------------- changes


def _print_lists(args: argparse.Namespace) -> None:
    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        sealers, observers = client.sealers(), client.observers()
        if chain is not None:
            expand.record_roles(chain, sealers, observers)
        head = client.block_number()

        def names(ids: list[str]) -> str:
            return ", ".join((chain.name_of(i) if chain else None) or i[:12] for i in ids)

        console.print(
            f"from block {head + 1}: sealers {escape(names(sealers))} "
            f"(quorum {quorum(len(sealers))}); observers {escape(names(observers) or '-')}"
        )
        return 0

    console_verbs.with_client(args, run)


def _change(args: argparse.Namespace, method: str) -> int:
    chain = None
    try:
        chain = open_chain(args)
    except CommandError:
        if not args.rpc:
            raise
    node_id, label = expand.resolve_node(chain, args.target_node)
    code = console_verbs.send(args, CONSENSUS, method, [node_id], f"{method} {label}")
    if code == 0 and not args.no_wait and not args.json:
        _print_lists(args)
    return code


def cmd_sealers_add(args: argparse.Namespace) -> int:
    return _change(args, "addSealer")


def cmd_observers_add(args: argparse.Namespace) -> int:
    return _change(args, "addObserver")


def cmd_remove(args: argparse.Namespace) -> int:
    return _change(args, "remove")


# ----------------------------------------------------------------------------- add-node


def _wait_synced(chain: Chain, node: NodeEntry, source: RpcClient, timeout: float) -> int:
    """Wait until ``node`` is within :data:`CAUGHT_UP_BLOCKS` of the live head.

    The live head, not the head when the wait began: under load the chain moves on while
    the node syncs, and a sealer promoted hundreds of blocks behind times out every time
    it leads, one view change each, until it has caught up."""
    client = RpcClient(node.rpc.rpartition(":")[0], node.rpc_port, group=chain.group_id)
    deadline = time.monotonic() + timeout
    height = target = 0
    try:
        while time.monotonic() < deadline:
            target = source.block_number()
            try:
                height = client.block_number()
            except (RpcError, RpcTransportError, OSError):
                height = 0
            if height >= target - CAUGHT_UP_BLOCKS:
                return height
            time.sleep(SYNC_POLL_S)
    finally:
        client.close()
    raise CommandError(
        f"{node.name} is at height {height}, {target - height} blocks behind the head, "
        f"after {timeout:.0f} s",
        hint=f"it keeps syncing (a node under full load may not close the gap until the load "
        f"eases); see `ledgerlab logs {node.index}`, then `ledgerlab sealers add {node.name}`",
    )


def cmd_add_node(args: argparse.Namespace) -> int:
    source, chain, label = connect(args)  # a member unless --node/--rpc say otherwise
    try:
        if chain is None:
            raise CommandError("add-node needs the chain directory", hint="pass --dir DIR")
        if source.consensus_status().get("accountType") == "free":
            raise CommandError(
                f"{label} is a free node: it cannot commit the addObserver",
                hint="talk to a sealer or observer with --node I",
            )
        chain, node = expand.create_node(chain, host=args.host)
        console.print(f"created {node.name} in {node.home} (node id {node.node_id[:16]}…)")
        args.no_wait, args.json = False, False
        if (
            console_verbs.send(
                args, CONSENSUS, "addObserver", [node.node_id], f"addObserver {node.name}"
            )
            != 0
        ):
            return 1
        if not procs.address_local(args.host):
            console.print(
                f"{args.host} is not an address of this machine: copy {node.home} there, "
                f"start it with `python -m node --config config.toml` in that folder, and once "
                f"it has synced: ledgerlab sealers add {node.name}"
            )
            _print_lists(args)
            return 0
        with console.status(f"starting {node.name}…"):
            result = cluster.start_nodes(chain, [node], timeout=args.start_timeout)
        for line in result.warnings:
            console.print(f"[yellow]warning:[/] {line}")
        with console.status(f"{node.name} is syncing the history…"):
            started = time.monotonic()
            height = _wait_synced(chain, node, source, args.sync_timeout)
        console.print(
            f"{node.name} synced to height {height} in {time.monotonic() - started:.1f} s "
            "(every seal checked against the sealers of its height)"
        )
        if not args.observer:
            rc = console_verbs.send(
                args, CONSENSUS, "addSealer", [node.node_id], f"addSealer {node.name}"
            )
            if rc != 0:
                return rc
        _print_lists(args)
        return 0
    finally:
        source.close()


# ----------------------------------------------------------------------------- register


def _force(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="submit even if the node says the new sealers could not reach their quorum",
    )


_NODE = arg("target_node", metavar="NODE", help="node4 (a node of --dir) or a 128-hex node id")
_JSON = arg("--json", action="store_true", help="print JSON")

SEALER_VERBS: tuple[Verb, ...] = (
    Verb(
        "list",
        "the sealers, each with its connection and height (getSealerList)",
        "ledgerlab sealers\nledgerlab sealers list --json",
        cmd_sealers,
        (add_target, _JSON),
    ),
    Verb(
        "add",
        "make an observer a sealer from the next block (addSealer, a governor transaction)",
        "ledgerlab sealers add node4\nledgerlab sealers add 3f0a…(128 hex)",
        cmd_sealers_add,
        (_NODE, _force, console_verbs.add_tx_options),
    ),
    Verb(
        "remove",
        "take a node out of the chain: it becomes a free node (remove)",
        "ledgerlab sealers remove node0\nledgerlab sealers remove node0 --force",
        cmd_remove,
        (_NODE, _force, console_verbs.add_tx_options),
    ),
)

OBSERVER_VERBS: tuple[Verb, ...] = (
    Verb(
        "list",
        "the observers, each with its connection and height (getObserverList)",
        "ledgerlab observers",
        cmd_observers,
        (add_target, _JSON),
    ),
    Verb(
        "add",
        "make a free node an observer, or turn a sealer into one (addObserver)",
        "ledgerlab observers add node4\nledgerlab observers add node1   # demote a sealer",
        cmd_observers_add,
        (_NODE, _force, console_verbs.add_tx_options),
    ),
    Verb(
        "remove",
        "take a node out of the chain: it becomes a free node (remove)",
        "ledgerlab observers remove node4",
        cmd_remove,
        (_NODE, _force, console_verbs.add_tx_options),
    ),
)

ADD_NODE = Verb(
    "add-node",
    "grow a running chain: a new node folder, observer, synced, then sealer",
    "ledgerlab add-node\nledgerlab add-node --observer\nledgerlab add-node --host 127.0.0.2",
    cmd_add_node,
    (
        arg("--observer", action="store_true", help="stop at observer (do not make it a sealer)"),
        arg("--host", default="127.0.0.1", help="address the new node binds (default 127.0.0.1)"),
        arg("--start-timeout", type=float, default=30.0, help="seconds to wait for it to start"),
        arg("--sync-timeout", type=float, default=300.0, help="seconds to wait for its sync"),
        _force,
        console_verbs.add_tx_options,
    ),
)


def _members_group(sub: Any, name: str, help: str, verbs: tuple[Verb, ...], default: Any) -> None:
    p = sub.add_parser(name, help=help, description=help)
    add_target(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    add_verbs(p.add_subparsers(dest=f"{name}_verb", metavar="VERB"), verbs)
    p.set_defaults(func=default)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _members_group(
        sub,
        "sealers",
        "list, add and remove consensus nodes (precompile 0x1003)",
        SEALER_VERBS,
        cmd_sealers,
    )
    _members_group(
        sub,
        "observers",
        "list, add and remove observer nodes (precompile 0x1003)",
        OBSERVER_VERBS,
        cmd_observers,
    )
    add_verbs(sub, (ADD_NODE,))
