"""Lifecycle verbs of a local chain: init, up, down, status, logs, stop-node, start-node.

The work is in :mod:`scripts.launcher`; this module parses arguments and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.table import Table

from scripts.errors import CommandError
from scripts.launcher import accounts, cluster, expand, hosts, procs
from scripts.launcher import status as status_mod
from scripts.launcher.fisco import fisco_address
from scripts.launcher.layout import (
    DEFAULT_BROKER,
    DEFAULT_CHANNEL_PORT,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_PORT,
    Chain,
    NodeEntry,
    init_chain,
    is_chain,
    load_chain,
)
from scripts.launcher.options import (
    Arg,
    Verb,
    add_dir,
    add_verbs,
    arg,
    chain_dir,
    console,
    open_chain,
    print_json,
)

# Init options, with their defaults; `up` takes the same ones with default None so it
# can tell which were given (they only matter when it has to create the chain).
INIT_DEFAULTS: dict[str, Any] = {
    "nodes": 4,
    "observers": 0,
    "transport": "tcp",
    "broker": DEFAULT_BROKER,
    "p2p_port": DEFAULT_P2P_PORT,
    "rpc_port": DEFAULT_RPC_PORT,
    "chain_id": "chain0",
    "group": "group0",
    "permissioned": False,
}


def _add_init_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    def d(key: str) -> Any:
        return INIT_DEFAULTS[key] if defaults else None

    p.add_argument(
        "--nodes",
        "-n",
        type=int,
        default=None,
        metavar="N",
        help="number of sealer nodes (default 4: tolerates f=1 fault)",
    )
    p.add_argument(
        "--hosts",
        "-l",
        default=None,
        metavar="IP:N,...",
        help="spread the nodes over hosts, N on each IP (instead of --nodes); writes one "
        "package per host to copy there (docs/multi-host.md)",
    )
    p.add_argument(
        "--observers",
        type=int,
        default=d("observers"),
        metavar="M",
        help="extra observer nodes that sync but do not vote (default 0)",
    )
    p.add_argument(
        "--transport",
        choices=("tcp", "mqtt"),
        default=d("transport"),
        help="P2P transport: direct TCP with mutual TLS, or an MQTT broker (default tcp)",
    )
    p.add_argument(
        "--broker",
        default=d("broker"),
        metavar="URL",
        help=f"MQTT broker for --transport mqtt (default {DEFAULT_BROKER})",
    )
    p.add_argument(
        "--p2p-port",
        type=int,
        default=d("p2p_port"),
        metavar="PORT",
        help=f"node i listens for peers on PORT+i (default {DEFAULT_P2P_PORT})",
    )
    p.add_argument(
        "--rpc-port",
        type=int,
        default=d("rpc_port"),
        metavar="PORT",
        help=f"node i serves JSON-RPC on PORT+i (default {DEFAULT_RPC_PORT})",
    )
    p.add_argument("--chain-id", default=d("chain_id"), help="chain id (default chain0)")
    p.add_argument("--group", default=d("group"), help="group id (default group0)")
    p.add_argument(
        "--permissioned",
        action="store_true",
        default=d("permissioned"),
        help="only the admin account may mint assets (default: open mode, "
        "as FISCO's performance tests)",
    )
    p.add_argument(
        "--channel-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the FISCO channel (SDK port, docs/channel.md) on PORT+i "
        f"(default: off; {DEFAULT_CHANNEL_PORT} with --fisco)",
    )
    p.add_argument(
        "--fisco",
        action="store_true",
        default=None,
        help="a chain FISCO BCOS 2.x clients drive as they are: chain id 1 and group 1, "
        "the channel on, and Caliper / python-sdk / java-sdk files in <dir>/fisco "
        "(docs/fisco-clients.md)",
    )
    p.add_argument(
        "--tx-count-limit",
        type=int,
        default=None,
        metavar="N",
        help="max transactions per block in genesis (default 1000)",
    )


def _init_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    def get(key: str, attr: str | None = None) -> Any:
        value = getattr(args, attr or key)
        return INIT_DEFAULTS[key] if value is None else value

    fisco = bool(getattr(args, "fisco", None))
    channel_port = getattr(args, "channel_port", None)
    if fisco and channel_port is None:
        channel_port = DEFAULT_CHANNEL_PORT
    fisco_ids: dict[str, Any] = {}
    if fisco:  # what FISCO's SDKs and Caliper send by default, unless given
        chain_id, group = args.chain_id, args.group
        fisco_ids = {
            "chain_id": "1" if chain_id in (None, INIT_DEFAULTS["chain_id"]) else chain_id,
            "group_id": "1" if group in (None, INIT_DEFAULTS["group"]) else group,
        }
        for flag, key in (("--chain-id", "chain_id"), ("--group", "group_id")):
            value = str(fisco_ids[key])
            # A FISCO transaction carries its ids as uint64 and ledgerlab compares them as
            # str(int): "01", "²" or 2**64 would make a chain no FISCO transaction can match.
            if not (value.isascii() and value.isdigit() and str(int(value)) == value
                    and int(value) < 2**64):  # fmt: skip
                raise CommandError(
                    f"--fisco needs a numeric {flag} (FISCO clients send numbers: a decimal "
                    f"uint64 without leading zeros), got {value!r}"
                )
    return {
        "nodes": get("nodes"),
        "observers": get("observers"),
        "transport": get("transport"),
        "broker": get("broker"),
        "p2p_port": get("p2p_port"),
        "rpc_port": get("rpc_port"),
        "chain_id": get("chain_id"),
        "group_id": get("group"),
        "permissioned": bool(get("permissioned")),
        "tx_count_limit": args.tx_count_limit,
        "channel_port": channel_port,
        "fisco": fisco,
        **fisco_ids,
    }


def _create(root: Path, args: argparse.Namespace, *, force: bool = False) -> Chain:
    """``init_chain``, or ``hosts.init_hosts`` with ``--hosts`` (which replaces --nodes)."""
    kwargs = _init_kwargs(args)
    if not args.hosts:
        return init_chain(root, force=force, **kwargs)
    if args.nodes is not None:
        raise CommandError(
            "--hosts and --nodes are mutually exclusive: the node count is the sum of the "
            "hosts' counts",
            hint=f"e.g. ledgerlab init {hosts.EXAMPLE}",
        )
    del kwargs["nodes"]
    return hosts.init_hosts(root, args.hosts, force=force, **kwargs)


def _refuse_if_running(root: Path) -> None:
    if not is_chain(root):
        return
    running = procs.running_nodes(load_chain(root))
    if running:
        names = ", ".join(f"node{i} (pid {p})" for i, p in sorted(running.items()))
        raise CommandError(
            f"the chain in {root} is running: {names}",
            hint=f"stop it first: ledgerlab down --dir {root}",
        )


def _nodes_table(
    chain: Chain, *, title: str, extra: dict[str, dict[str, str]] | None = None
) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("node")
    table.add_column("role")
    table.add_column("node id")
    table.add_column("P2P")
    table.add_column("RPC URL")
    extra_cols: list[str] = []
    if extra:
        extra_cols = list(dict.fromkeys(k for row in extra.values() for k in row))
        for col in extra_cols:
            table.add_column(col, justify="right")
    for n in chain.nodes:
        row = [n.name, n.role, n.node_id[:12] + "…", n.p2p, n.rpc_url]
        row += [(extra or {}).get(n.name, {}).get(col, "-") for col in extra_cols]
        table.add_row(*row)
    return table


# ----------------------------------------------------------------------------- init


def cmd_init(args: argparse.Namespace) -> int:
    root = chain_dir(args)
    if args.force:
        _refuse_if_running(root)
    with console.status("generating CA, agency, node keys and certificates…"):
        chain = _create(root, args, force=args.force)
    _print_init(chain)
    if hosts.packages(chain):
        console.print("next: copy each host package to its host and run `sh start_all.sh` there")
    else:
        console.print(f"next: [bold]ledgerlab up{_dir_flag(args)}[/]")
    return 0


def _print_init(chain: Chain) -> None:
    genesis = chain.genesis()
    f = (len(chain.sealers) - 1) // 3
    mode = "permissioned (admin mints)" if chain.permissioned else "open (anyone may mint)"
    console.print(
        _nodes_table(
            chain,
            title=f"chain {chain.chain_id} / {chain.group_id} in {chain.root}: "
            f"{len(chain.sealers)} sealers (tolerates f={f}), {len(chain.observers)} observers, "
            f"{chain.transport}" + (f" via {chain.broker}" if chain.transport == "mqtt" else ""),
        )
    )
    admin = "0x" + genesis.governors[0].hex() if genesis.governors else "-"
    console.print(f"assets: {mode}; admin account {admin} (key in {chain.accounts_dir}/admin.key)")
    if chain.channel_port is not None:
        files = f"; Caliper, python-sdk, java-sdk files in {chain.root / 'fisco'}"
        if chain.fisco:  # the same admin key signs FISCO-format txs from its Keccak address
            key = accounts.load_key(chain.accounts_dir / "admin.key")
            files += f" (the admin's FISCO address: {fisco_address(key)})"
        console.print(
            f"FISCO channel (SDK port, docs/channel.md) on port {chain.channel_port}+i; "
            f"SDK certificates in {chain.root / 'sdk'}" + (files if chain.fisco else ""),
            highlight=False,
        )
    for line in hosts.describe(chain):
        console.print(line, highlight=False)


def _dir_flag(args: argparse.Namespace) -> str:
    return f" --dir {args.dir}" if getattr(args, "dir", None) else ""


# ----------------------------------------------------------------------------- up


def cmd_up(args: argparse.Namespace) -> int:
    root = chain_dir(args)
    if not is_chain(root):
        with console.status("initialising a new chain…"):
            chain = _create(root, args)
        _print_init(chain)
    else:
        chain = load_chain(root)
        _check_up_options(args, chain)
    with console.status(f"starting {len(chain.nodes)} nodes…"):
        env = _trace_env(args, chain.nodes)
        result = cluster.start_nodes(chain, timeout=args.timeout, env=env)
    for line in result.warnings:
        console.print(f"[yellow]warning:[/] {line}")
    if not result.started:
        console.print(f"all {len(chain.nodes)} nodes of {chain.root} were already running")
    statuses = asyncio.run(status_mod.collect(chain))
    extra = {
        st.node.name: {
            "pid": str(st.pid or "-"),
            "height": str(st.height) if st.answered else "-",
            "peers": f"{st.peers}/{len(chain.nodes) - 1}" if st.answered else "-",
            "state": "started" if st.node.name in result.started else "was running",
        }
        for st in statuses
    }
    console.print(
        _nodes_table(chain, title=f"chain {chain.chain_id} is up ({chain.root})", extra=extra)
    )
    d = _dir_flag(args)
    console.print(
        f"try: [bold]ledgerlab status{d}[/]  ·  [bold]ledgerlab asset add alice 1000{d}[/]  ·  "
        f"[bold]ledgerlab down{d}[/]"
    )
    return 0


def _trace_env(
    args: argparse.Namespace, nodes: Sequence[NodeEntry]
) -> Callable[[NodeEntry], dict[str, str]]:
    """Each started node whose tracing is on appends its trace to NODE/data/trace.jsonl.
    --trace turns it on for ``nodes`` and --no-trace off, for this and every later start
    (NODE/data/trace.on); without either, a node keeps what it had."""
    from scripts.trace import live

    if args.trace and args.no_trace:
        raise CommandError("give --trace or --no-trace, not both")
    if args.trace or args.no_trace:
        for node in nodes:
            live.remember(node, on=bool(args.trace))
    return live.env_for_started


def _record_stops(nodes: Sequence[NodeEntry], report: dict[str, str], how: str) -> None:
    """A ``stop`` record in the trace of each tracing node the launcher stopped."""
    from scripts.trace.live import write_stop

    for node in nodes:
        if not report.get(node.name, "not running").startswith("not running"):
            write_stop(node, how)


def _check_up_options(args: argparse.Namespace, chain: Chain) -> None:
    """Init options given to `up` for an existing chain must agree with it."""
    given = {
        "--nodes": (args.nodes, len(chain.sealers)),
        "--observers": (args.observers, len(chain.observers)),
        "--transport": (args.transport, chain.transport),
        "--p2p-port": (args.p2p_port, chain.p2p_port),
        "--rpc-port": (args.rpc_port, chain.rpc_port),
        "--chain-id": (args.chain_id, chain.chain_id),
        "--group": (args.group, chain.group_id),
        "--channel-port": (args.channel_port, chain.channel_port or "off"),
        "--hosts": (args.hosts and hosts.spec_of(hosts.parse_hosts(args.hosts)), hosts.spec(chain)),
    }
    if args.fisco and not chain.fisco:
        raise CommandError(
            f"{chain.root} already holds a chain made without --fisco",
            hint=f"use it as it is, or re-create it: ledgerlab down{_dir_flag(args)} && "
            f"ledgerlab init --force --fisco{_dir_flag(args)}",
        )
    for flag, (wanted, actual) in given.items():
        if wanted is not None and wanted != actual:
            raise CommandError(
                f"{chain.root} already holds a chain with {flag} {actual}, not {wanted}",
                hint=f"use it as it is, or re-create it: ledgerlab down{_dir_flag(args)} && "
                f"ledgerlab init --force {flag} {wanted}{_dir_flag(args)}",
            )


# ----------------------------------------------------------------------------- down / stop / start


def cmd_down(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    with console.status("stopping nodes…"):
        report = procs.stop_nodes(chain.nodes, timeout=args.timeout)
    _record_stops(chain.nodes, report, "down")
    stopped = [name for name, what in report.items() if not what.startswith("not running")]
    for name, what in report.items():
        console.print(f"{name}: {what}")
    if stopped:
        console.print(f"stopped {len(stopped)} node(s); data kept in {chain.root}")
    else:
        console.print(f"nothing was running in {chain.root}")
    return 0


def cmd_stop_node(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    node = chain.node(args.index)
    state = procs.read_pid(node)
    if not state.alive:
        raise CommandError(
            f"{node.name} is not running", hint=f"start it with `ledgerlab start-node {node.index}`"
        )
    report = procs.stop_nodes([node], timeout=args.timeout)
    _record_stops([node], report, "stop-node")
    console.print(f"{node.name}: {report[node.name]}")
    _print_fault_budget(chain)
    return 0


def _print_fault_budget(chain: Chain) -> None:
    chain = expand.refresh_roles(chain)  # the chain's lists, not what chain.toml last saw
    running = procs.running_nodes(chain)
    sealers = chain.sealers
    down = [n for n in sealers if n.index not in running]
    f = (len(sealers) - 1) // 3
    if not down:
        return
    if len(down) <= f:
        console.print(
            f"{len(down)} of {len(sealers)} sealers down: within f={f}, the chain keeps "
            "committing (a height a stopped sealer leads waits one view-change timeout)"
        )
    else:
        console.print(
            f"[yellow]{len(down)} of {len(sealers)} sealers down: more than f={f}, "
            f"the chain cannot commit until enough of them are back[/]"
        )


def cmd_start_node(args: argparse.Namespace) -> int:
    chain = expand.refresh_roles(open_chain(args))
    node = chain.node(args.index)
    if node.role == "free":
        console.print(
            f"[yellow]warning:[/] {node.name} is a free node (in neither the sealer nor the "
            "observer list): the members will refuse it; to let it back in: "
            f"ledgerlab observers add {node.name}"
        )
    with console.status(f"starting {node.name}…"):
        env = _trace_env(args, [node])
        result = cluster.start_nodes(chain, [node], timeout=args.timeout, env=env)
    for line in result.warnings:
        console.print(f"[yellow]warning:[/] {line}")
    if node.name in result.already:
        console.print(f"{node.name} is already running (pid {result.already[node.name]})")
        return 0
    statuses = asyncio.run(status_mod.collect(chain))
    mine = next(s for s in statuses if s.node.index == node.index)
    best = max((s.height for s in statuses if s.answered), default=0)
    lag = best - mine.height
    tail = f"height {mine.height}" + (f", {lag} behind, catching up" if lag > 0 else ", in step")
    console.print(
        f"{node.name} started (pid {result.started[node.name]}), RPC {node.rpc_url}, "
        f"{mine.peers} peers, {tail}"
    )
    return 0


# ----------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    if args.json:
        statuses = asyncio.run(status_mod.collect(chain, recent_blocks=True))
        print_json([s.as_json() for s in statuses])
        return 0
    if not args.watch:
        statuses = asyncio.run(status_mod.collect(chain, recent_blocks=True))
        console.print(status_mod.render(chain, statuses))
        if not any(s.answered for s in statuses):
            console.print(
                f"no node is answering; start the chain with `ledgerlab up{_dir_flag(args)}`"
            )
        return 0
    tracker = status_mod.TpsTracker()
    try:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                statuses = asyncio.run(status_mod.collect(chain, tracker=tracker))
                stamp = time.strftime("%H:%M:%S")
                live.update(
                    status_mod.render(
                        chain,
                        statuses,
                        title=f"chain {chain.chain_id} / {chain.group_id}  ({chain.root})  "
                        f"{stamp}  · Ctrl-C to quit",
                    ),
                    refresh=True,
                )
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


# ----------------------------------------------------------------------------- logs


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:] if lines > 0 else []


def _log_files(node: NodeEntry) -> list[Path]:
    return [p for p in (node.log_path, node.stderr_path) if p.exists()]


def cmd_logs(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    nodes = [chain.node(args.index)] if args.index is not None else list(chain.nodes)
    prefix = len(nodes) > 1
    files = [(n, p) for n in nodes for p in _log_files(n)]
    if not files:
        raise CommandError(
            f"no logs yet for {', '.join(n.name for n in nodes)}",
            hint="logs appear once the node has been started (`ledgerlab up`)",
        )
    for n, path in files:
        for line in _tail(path, args.lines):
            _print_log_line(n, path, line, prefix)
    if not args.follow:
        return 0
    try:
        for n, path, line in _follow(files):
            _print_log_line(n, path, line, prefix)
    except KeyboardInterrupt:
        return 0
    return 0


def _print_log_line(node: NodeEntry, path: Path, line: str, prefix: bool) -> None:
    tag = node.name + (":stderr" if path.name == "stderr.log" else "")
    if prefix or path.name == "stderr.log":
        console.print(f"[cyan]{tag:<13}[/] {line}", markup=True, soft_wrap=True, highlight=False)
    else:
        print(line)


def _follow(files: list[tuple[NodeEntry, Path]]) -> Iterator[tuple[NodeEntry, Path, str]]:
    """Yield lines appended to the files from now on (new files are picked up too)."""
    offsets = {p: p.stat().st_size if p.exists() else 0 for _, p in files}
    candidates = {(n, p) for n, p in files}
    for n, _ in files:
        for p in (n.log_path, n.stderr_path):
            candidates.add((n, p))
            offsets.setdefault(p, 0)
    partial: dict[Path, str] = {}
    while True:
        any_new = False
        for n, p in sorted(candidates, key=lambda x: str(x[1])):
            try:
                size = p.stat().st_size
            except OSError:
                continue
            if size < offsets[p]:  # truncated or rotated
                offsets[p] = 0
            if size == offsets[p]:
                continue
            with open(p, "rb") as f:
                f.seek(offsets[p])
                data = f.read()
            offsets[p] += len(data)
            text = partial.pop(p, "") + data.decode(errors="replace")
            *complete, rest = text.split("\n")
            if rest:
                partial[p] = rest
            for line in complete:
                any_new = True
                yield n, p, line
        if not any_new:
            time.sleep(0.25)


# ----------------------------------------------------------------------------- register


def _start_timeout(what: str) -> Arg:
    return arg(
        "--timeout",
        type=float,
        default=cluster.START_TIMEOUT,
        help=f"seconds to wait for {what} to answer and connect (default 30)",
    )


_STOP_TIMEOUT = arg(
    "--timeout",
    type=float,
    default=procs.STOP_TIMEOUT,
    help="seconds to wait after SIGTERM before SIGKILL (default 10)",
)
_NODE_INDEX = arg("index", type=int, metavar="I", help="node index (node I)")
_TRACE = arg(
    "--trace",
    action="store_true",
    help="started nodes append a trace to NODE/data/trace.jsonl, now and at every later "
    "start until --no-trace; merge them with `ledgerlab trace` (docs/trace-format.md)",
)
_NO_TRACE = arg(
    "--no-trace",
    action="store_true",
    help="started nodes stop tracing (now and at later starts)",
)

VERBS: tuple[Verb, ...] = (
    Verb(
        "init",
        "create a chain directory: CA, agency, node keys and certificates, genesis, configs",
        """
        ledgerlab init                         # 4 sealers in ./chain, ports 30300+i / 20200+i
        ledgerlab init --nodes 7 --observers 1 --dir mychain
        ledgerlab init --transport mqtt --broker mqtt://127.0.0.1:1883
        ledgerlab init --force --p2p-port 31300 --rpc-port 21200   # replace ./chain
        ledgerlab init --hosts 10.0.0.1:2,10.0.0.2:2   # a package per host: chain/hosts/<ip>/
        """,
        cmd_init,
        (
            add_dir,
            partial(_add_init_options, defaults=True),
            arg(
                "--force", action="store_true", help="replace an existing chain (its data is lost)"
            ),
        ),
    ),
    Verb(
        "up",
        "start every node in the background (initialising the chain first if needed)",
        """
        ledgerlab up                  # ./chain, created with 4 nodes if missing
        ledgerlab up --nodes 7 --dir big
        ledgerlab up --transport mqtt
        ledgerlab up --trace          # every node writes data/trace.jsonl: ledgerlab trace
        """,
        cmd_up,
        (
            add_dir,
            partial(_add_init_options, defaults=False),
            _start_timeout("all nodes"),
            _TRACE,
            _NO_TRACE,
        ),
    ),
    Verb(
        "down",
        "stop every node of the chain (data is kept)",
        "ledgerlab down\nledgerlab down --dir mychain",
        cmd_down,
        (add_dir, _STOP_TIMEOUT),
    ),
    Verb(
        "stop-node",
        "stop one node (the others keep going if at most f are down)",
        "ledgerlab stop-node 3",
        cmd_stop_node,
        (add_dir, _NODE_INDEX, _STOP_TIMEOUT),
    ),
    Verb(
        "start-node",
        "start one stopped node; it catches up from its peers",
        "ledgerlab start-node 3\nledgerlab start-node 3 --trace",
        cmd_start_node,
        (add_dir, _NODE_INDEX, _start_timeout("it"), _TRACE, _NO_TRACE),
    ),
    Verb(
        "status",
        "a table per node: role, height, head, view, leader, peers, txpool, committed, TPS",
        """
        ledgerlab status
        ledgerlab status --watch            # live, refreshes every second
        ledgerlab status --json | jq '.[].height'
        """,
        cmd_status,
        (
            add_dir,
            arg("--watch", "-w", action="store_true", help="refresh until Ctrl-C"),
            arg("--interval", type=float, default=1.0, help="seconds between refreshes"),
            arg("--json", action="store_true", help="print JSON instead of a table"),
        ),
    ),
    Verb(
        "logs",
        "show node logs (all nodes, or node I)",
        """
        ledgerlab logs            # last lines of every node's log
        ledgerlab logs 2 -n 200
        ledgerlab logs --follow   # like tail -f, Ctrl-C to stop
        """,
        cmd_logs,
        (
            add_dir,
            arg("index", type=int, nargs="?", default=None, metavar="I", help="node index"),
            arg("--lines", "-n", type=int, default=20, help="lines to show per file (default 20)"),
            arg("--follow", "-f", action="store_true", help="keep printing new lines"),
        ),
    ),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_verbs(sub, VERBS)
