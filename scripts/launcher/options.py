"""Argument-parsing helpers the chain and console verbs share.

The chain directory comes from ``--dir``, else ``$LEDGERLAB_DIR``, else ``./chain``.
Console verbs talk to ``--node I`` of that chain, or to ``--rpc URL``, or by default to
the first node that is running.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from node.rpc.client import RpcClient, RpcError, RpcTransportError
from scripts.errors import CommandError
from scripts.launcher import expand, procs
from scripts.launcher.layout import DEFAULT_DIR, Chain, NodeEntry, load_chain

# Piped output (tests, scripts) is not wrapped at rich's default 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
DIR_ENV = "LEDGERLAB_DIR"


def print_json(value: object) -> None:
    """JSON on stdout for scripts; a reader that stops early (``| head``) is not an error."""
    try:
        print(json.dumps(value, indent=2, sort_keys=True), flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def default_dir() -> str:
    return os.environ.get(DIR_ENV) or DEFAULT_DIR


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help: str,
    examples: str,
    *,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A verb parser whose ``--help`` ends with examples."""
    return sub.add_parser(
        name,
        help=help,
        description=description or help,
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        default=None,
        metavar="DIR",
        help=f"chain directory (default: ${DIR_ENV} or ./{DEFAULT_DIR})",
    )


def chain_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir or default_dir()).expanduser()


def fresh_dir(value: str | None, who: str) -> Path | None:
    """``--dir`` of a verb that makes its own chain: a new or empty folder, or None."""
    directory = Path(value).expanduser() if value else None
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise CommandError(
            f"{directory} is not empty; {who} needs a fresh folder",
            hint="leave out --dir to use a temporary folder",
        )
    return directory


def open_chain(args: argparse.Namespace) -> Chain:
    return load_chain(chain_dir(args))


def add_target(parser: argparse.ArgumentParser) -> None:
    """``--dir``, ``--node`` and ``--rpc``: which node a console verb talks to."""
    add_dir(parser)
    parser.add_argument(
        "--node",
        type=int,
        default=None,
        metavar="I",
        help="talk to node I (default: first running)",
    )
    parser.add_argument(
        "--rpc", default=None, metavar="URL", help="talk to this JSON-RPC endpoint instead"
    )
    parser.add_argument("--group", default=None, help="group id (default: the chain's)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for answers/receipts"
    )


def _client_for(node: NodeEntry, group: str, timeout: float) -> RpcClient:
    return RpcClient(
        "127.0.0.1" if not node.rpc else node.rpc.rpartition(":")[0],
        node.rpc_port,
        group=group,
        timeout=timeout,
    )


def connect(args: argparse.Namespace) -> tuple[RpcClient, Chain | None, str]:
    """A connected client, the chain (None with ``--rpc`` and no chain dir), and a label."""
    chain: Chain | None = None
    if args.rpc:
        try:
            chain = open_chain(args)
        except CommandError:
            chain = None
        group = args.group or (chain.group_id if chain else "group0")
        try:
            client = RpcClient.from_url(args.rpc, group=group, timeout=args.timeout)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        _ping(client, args.rpc, hint="check the URL, e.g. --rpc http://127.0.0.1:20200")
        return client, chain, args.rpc
    chain = open_chain(args)
    group = args.group or chain.group_id
    if args.node is not None:
        node = chain.node(args.node)
        client = _client_for(node, group, args.timeout)
        state = procs.read_pid(node)
        hint = (
            f"start it with `ledgerlab start-node {node.index}`"
            if not state.alive
            else f"it is running (pid {state.pid}); see `ledgerlab logs {node.index}`"
        )
        _ping(client, f"{node.name} at {node.rpc_url}", hint=hint)
        return client, chain, node.name
    running = procs.running_nodes(chain)
    fallback: NodeEntry | None = None
    # members first: a free node (removed, or not yet added) has a stale view of the chain
    for node in sorted(chain.nodes, key=lambda n: n.role == "free"):
        if node.index not in running:
            continue
        client = _client_for(node, group, min(args.timeout, 5.0))
        try:
            role = client.consensus_status().get("accountType")
            if role != "free":
                chain = expand.record_roles(chain, client.sealers(), client.observers())
        except (RpcTransportError, RpcError):
            continue
        finally:
            client.close()
        if role == "free":
            fallback = fallback or node
            continue
        return _client_for(node, group, args.timeout), chain, node.name
    if fallback is not None:
        return _client_for(fallback, group, args.timeout), chain, fallback.name
    raise CommandError(
        f"no node of the chain in {chain.root} is running"
        if not running
        else f"none of the running nodes of {chain.root} answers RPC",
        hint="start the chain with `ledgerlab up"
        + (f" --dir {args.dir}" if args.dir else "")
        + "`",
    )


def _ping(client: RpcClient, label: str, *, hint: str) -> None:
    try:
        client.block_number()
    except RpcTransportError as exc:
        client.close()
        raise CommandError(f"cannot reach {label}: {exc}", hint=hint) from None
    except RpcError as exc:
        client.close()
        raise CommandError(f"{label} refused: {exc.message} (code {exc.code})") from None


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call, kept as data: its flags and its keyword options."""

    flags: tuple[str, ...]
    options: dict[str, Any]


def arg(*flags: str, **options: Any) -> Arg:
    return Arg(flags, options)


# An argument of a verb: one add_argument call, or a helper that adds a shared set.
ArgSpec = Arg | Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Verb:
    """One verb of the command table: its parser is built by :func:`add_verbs`."""

    name: str
    help: str
    examples: str
    handler: Callable[[argparse.Namespace], int]
    arguments: tuple[ArgSpec, ...] = ()


def add_verbs(sub: Any, verbs: Sequence[Verb]) -> None:
    """Turn verb table rows into subparsers (``--help`` ends with the examples)."""
    for verb in verbs:
        p = add_parser(sub, verb.name, verb.help, verb.examples)
        for spec in verb.arguments:
            if isinstance(spec, Arg):
                p.add_argument(*spec.flags, **spec.options)
            else:
                spec(p)
        p.set_defaults(func=verb.handler)
