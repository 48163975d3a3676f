"""Chains that span hosts: ``ledgerlab init --hosts IP:N,IP:N`` (FISCO's ``build_chain.sh -l``).

The chain directory stays on the operator's machine and gets one package per host::

    <dir>/chain.toml, genesis.toml    as for a local chain; chain.toml names each node's home
    <dir>/ca/, agency/, accounts/     CA and agency private keys, client keys: they stay here
    <dir>/hosts/<ip>/                 the package to copy to host <ip>:
        start_all.sh, stop_all.sh     start / stop this host's nodes (pid files)
        ca/ca.crt, agency/agency.crt  the certificates only, never ca.key or agency.key
        genesis.toml
        nodeI/                        config.toml, conf/ (this node's keys), data/, log/

Nodes are numbered across the chain in the order the hosts are listed (node0, node1 on the
first host, ...), so every launcher verb keeps its meaning. Within a host, its k-th node
listens on the base ports + k (P2P 30300 + k, RPC 20200 + k, as build_chain.sh), on the
host's own address; its peers are every other node's address. ``chain.toml`` holds those
addresses, so the console verbs and ``status`` work from any machine that reaches them.
"""

from __future__ import annotations

import ipaddress
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import node as node_package
from node.transport.pki import AGENCY_CERT, CA_CERT
from scripts.launcher.layout import (
    DEFAULT_BROKER,
    DEFAULT_P2P_PORT,
    DEFAULT_RPC_PORT,
    MAX_NODES,
    Chain,
    ChainError,
    NodeEntry,
    Slot,
    init_chain,
    remove_chain,
    resolve_dir,
)

HOSTS_DIR = "hosts"
EXAMPLE = "--hosts 10.0.0.1:2,10.0.0.2:2"


@dataclass(frozen=True, slots=True)
class HostSpec:
    """One ``IP:COUNT`` of ``--hosts``."""

    address: str  # canonical dotted quad
    count: int


def _parse_address(text: str, item: str) -> str:
    try:
        address = ipaddress.IPv4Address(text)
    except ipaddress.AddressValueError:
        raise ChainError(
            f"--hosts: {text!r} in {item!r} is not an IPv4 address (a dotted quad like 10.0.0.1)"
        ) from None
    if (
        address.is_unspecified
        or address.is_multicast
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        raise ChainError(f"--hosts: {address} is not a host address a node can listen on")
    return str(address)


def _parse_item(item: str) -> HostSpec:
    text, sep, count_s = item.strip().rpartition(":")
    if not sep or not text or not (count_s.isascii() and count_s.isdigit()):
        raise ChainError(
            f"--hosts: expected IP:COUNT, got {item.strip()!r}", hint=f"e.g. {EXAMPLE}"
        )
    count = int(count_s)
    if count < 1:
        raise ChainError(f"--hosts: {item.strip()}: a host needs at least 1 node")
    return HostSpec(_parse_address(text, item.strip()), count)


def parse_hosts(spec: str) -> tuple[HostSpec, ...]:
    """``"10.0.0.1:2,10.0.0.2:2"`` -> host specs, in order; a one-line ChainError if bad."""
    items = [i for i in spec.split(",") if i.strip()]
    if not items:
        raise ChainError("--hosts needs at least one IP:COUNT", hint=f"e.g. {EXAMPLE}")
    hosts = tuple(_parse_item(i) for i in items)
    seen: set[str] = set()
    for h in hosts:
        if h.address in seen:
            total = sum(x.count for x in hosts if x.address == h.address)
            raise ChainError(
                f"--hosts: {h.address} is listed twice",
                hint=f"list each host once with its node count, e.g. {h.address}:{total}",
            )
        seen.add(h.address)
    total = sum(h.count for h in hosts)
    if total > MAX_NODES:
        raise ChainError(f"--hosts: {total} nodes in all, at most {MAX_NODES}")
    return hosts


def spec_of(hosts: Sequence[HostSpec]) -> str:
    return ",".join(f"{h.address}:{h.count}" for h in hosts)


def spec(chain: Chain) -> str | None:
    """The ``--hosts`` a chain was made with (None for a local chain)."""
    found = packages(chain)
    return ",".join(f"{a}:{len(n)}" for a, n in found.items()) if found else None


def host_slots(
    hosts: Sequence[HostSpec], p2p_port: int, rpc_port: int, channel_port: int | None = None
) -> tuple[Slot, ...]:
    """Node folders and addresses, numbered across hosts, ports base + k within a host
    (the FISCO channel too, when ``channel_port`` is given)."""
    slots: list[Slot] = []
    for h in hosts:
        for k in range(h.count):
            slots.append(
                Slot(
                    home=f"{HOSTS_DIR}/{h.address}/node{len(slots)}",
                    p2p=f"{h.address}:{p2p_port + k}",
                    rpc=f"{h.address}:{rpc_port + k}",
                    channel=None if channel_port is None else f"{h.address}:{channel_port + k}",
                )
            )
    return tuple(slots)


def _check_broker(hosts: Sequence[HostSpec], transport: str, broker: str) -> None:
    if transport != "mqtt":
        return
    host = broker.partition("://")[2].rpartition("@")[2].rpartition(":")[0] or broker
    remote = [h.address for h in hosts if not ipaddress.IPv4Address(h.address).is_loopback]
    if remote and host in ("127.0.0.1", "localhost", "[::1]"):
        raise ChainError(
            f"--broker {broker} is a loopback address, but nodes run on {', '.join(remote)}: "
            "each host would reach a broker of its own",
            hint="give a broker every host reaches, e.g. --broker mqtt://10.0.0.1:1883",
        )


def init_hosts(
    root: str | Path | None,
    spec: str,
    *,
    observers: int = 0,
    transport: str = "tcp",
    broker: str = DEFAULT_BROKER,
    p2p_port: int = DEFAULT_P2P_PORT,
    rpc_port: int = DEFAULT_RPC_PORT,
    **options: Any,
) -> Chain:
    """A chain directory with one package per host of ``spec``; the last ``observers``
    nodes listed are observers. Other options as :func:`~scripts.launcher.layout.init_chain`."""
    hosts = parse_hosts(spec)
    total = sum(h.count for h in hosts)
    if not 0 <= observers < total:
        raise ChainError(
            f"--observers must leave at least one sealer of the {total} nodes --hosts lists, "
            f"got {observers}"
        )
    _check_broker(hosts, transport, broker)
    root = resolve_dir(root)
    chain = init_chain(
        root,
        nodes=total - observers,
        observers=observers,
        transport=transport,
        broker=broker,
        p2p_port=p2p_port,
        rpc_port=rpc_port,
        slots=host_slots(hosts, p2p_port, rpc_port, options.get("channel_port")),
        **options,
    )
    try:
        for address, nodes in packages(chain).items():
            write_package(chain, address, nodes)
    except OSError as exc:
        remove_chain(root)
        raise ChainError(f"cannot write the host packages in {root}: {exc}") from None
    return chain


def package_dir(chain: Chain, address: str) -> Path:
    return chain.root / HOSTS_DIR / address


def packages(chain: Chain) -> dict[str, tuple[NodeEntry, ...]]:
    """``{host address: its nodes}`` for the nodes that live in host packages."""
    out: dict[str, list[NodeEntry]] = {}
    for n in chain.nodes:
        if n.home.parent.parent == chain.root / HOSTS_DIR:
            out.setdefault(n.home.parent.name, []).append(n)
    return {address: tuple(nodes) for address, nodes in out.items()}


def write_package(chain: Chain, address: str, nodes: Sequence[NodeEntry]) -> Path:
    """Certificates, genesis and the two scripts beside the host's node folders."""
    pkg = package_dir(chain, address)
    for sub, name in (("ca", CA_CERT), ("agency", AGENCY_CERT)):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chain.root / sub / name, pkg / sub / name)
    shutil.copyfile(chain.genesis_path, pkg / "genesis.toml")
    names = [n.name for n in nodes]
    for script, text in (
        ("start_all.sh", start_script(address, names)),
        ("stop_all.sh", stop_script(address, names)),
    ):
        (pkg / script).write_text(text, encoding="utf-8")
        (pkg / script).chmod(0o755)
    return pkg


def describe(chain: Chain) -> list[str]:
    """One line per host package, for ``init``'s report (empty for a local chain)."""
    return [
        f"host {address}: {package_dir(chain, address)}  "
        f"({', '.join(n.name for n in nodes)}; copy it there, run `sh start_all.sh`)"
        for address, nodes in packages(chain).items()
    ]


# ----------------------------------------------------------------------------- scripts

# ``alive PID`` / ``running NODE`` (sets $pid): a pid file is trusted only when that pid
# is alive, not a zombie, and (where /proc tells) runs this node's config, like procs.py.
_SH_HELPERS = r"""alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/stat" ] || return 0
    [ "$(sed -n 's/^.*) \([A-Za-z]\).*$/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}
running() {
    pid=$(cat "$1/node.pid" 2>/dev/null) || return 1
    case $pid in '' | *[!0-9]*) return 1 ;; esac
    alive "$pid" || return 1
    [ -r "/proc/$pid/cmdline" ] || return 0
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$here/$1/config.toml"
}
"""

_START = r"""#!/bin/sh
# ledgerlab: start the nodes of host @HOST@ (@NODES@) in the background.
# Written by `ledgerlab init --hosts`: copy this folder to @HOST@ and run it there
# (docs/multi-host.md). Usage: sh start_all.sh [NODE...]   (default: all of them)
# Each node runs as `python -m node --config NODE/config.toml`, its pid in NODE/node.pid.
# LEDGERLAB_PYTHON: a python with ledgerlab installed (default: the one init ran).
cd "$(dirname "$0")" || exit 1
here=$(pwd -P)
if [ -z "${LEDGERLAB_PYTHON:-}" ]; then
    PYTHONPATH=@SRC@${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONPATH
fi
python=${LEDGERLAB_PYTHON:-@PYTHON@}
PYTHONUNBUFFERED=1
export PYTHONUNBUFFERED
@HELPERS@
[ $# -gt 0 ] || set -- @NODES@
if ! "$python" -c 'import node.runtime' 2>/dev/null; then
    echo "error: $python cannot import ledgerlab's node package" >&2
    echo "hint: install ledgerlab here and set LEDGERLAB_PYTHON=/path/to/venv/bin/python" >&2
    exit 1
fi
started=
for n in "$@"; do
    if [ ! -f "$n/config.toml" ]; then
        echo "error: no node $n in $here" >&2
        exit 1
    fi
    if running "$n"; then
        echo "$n is already running (pid $pid)"
        continue
    fi
    mkdir -p "$n/log"
    (cd "$n" && exec nohup "$python" -m node --config "$here/$n/config.toml" \
        >>log/stderr.log 2>&1 </dev/null) &
    echo $! >"$n/node.pid"
    started="$started $n"
done
[ -n "$started" ] || exit 0
sleep 2
status=0
for n in $started; do
    if running "$n"; then
        echo "$n started (pid $pid), log in $here/$n/log/node.log"
    else
        echo "error: $n exited at start: $(tail -n 1 "$n/log/stderr.log")" >&2
        rm -f "$n/node.pid"
        status=1
    fi
done
exit $status
"""

_STOP = r"""#!/bin/sh
# ledgerlab: stop the nodes of host @HOST@ (@NODES@) by their pid files:
# SIGTERM, then SIGKILL for any still alive after 10 s. Usage: sh stop_all.sh [NODE...]
cd "$(dirname "$0")" || exit 1
here=$(pwd -P)
@HELPERS@
[ $# -gt 0 ] || set -- @NODES@
pids=
for n in "$@"; do
    if running "$n"; then
        kill -TERM "$pid" 2>/dev/null
        pids="$pids $pid"
        echo "$n: stopping (pid $pid)"
    else
        echo "$n: not running"
    fi
done
tries=0
while [ -n "$pids" ] && [ $tries -lt 50 ]; do
    sleep 0.2
    left=
    for p in $pids; do
        if alive "$p"; then left="$left $p"; fi
    done
    pids=$left
    tries=$((tries + 1))
done
for p in $pids; do
    kill -KILL "$p" 2>/dev/null && echo "pid $p ignored SIGTERM for 10 s: killed"
done
for n in "$@"; do
    rm -f "$n/node.pid"
done
exit 0
"""


def _fill(template: str, address: str, names: Sequence[str]) -> str:
    src = Path(node_package.__file__).resolve().parent.parent
    return (
        template.replace("@HELPERS@", _SH_HELPERS)
        .replace("@HOST@", address)
        .replace("@NODES@", " ".join(names))
        .replace("@PYTHON@", shlex.quote(sys.executable))
        .replace("@SRC@", shlex.quote(str(src)))
    )


def start_script(address: str, names: Sequence[str]) -> str:
    """``start_all.sh``: the launcher's invocation (procs.spawn) as POSIX sh."""
    return _fill(_START, address, names)


def stop_script(address: str, names: Sequence[str]) -> str:
    return _fill(_STOP, address, names)
