"""Growing a chain directory by one node: what ``ledgerlab add-node`` writes.

As FISCO BCOS's expansion flow (``gen_node_cert.sh``, then governance): the new node gets
a fresh consensus key and a certificate issued by the chain's agency, a copy of the
chain's genesis (which does not name it: it starts as a *free* node and learns its role
from the chain it syncs), and a config that points at every existing node. Existing
nodes need no new config: the new node dials them, and they accept it once the chain
lists it as an observer. Roles in ``chain.toml`` are only the launcher's memory of what
the chain says (:func:`record_roles` refreshes them); the chain state is the authority.
"""

from __future__ import annotations

import dataclasses
import shutil

from node.rpc.client import RpcClient, RpcError, RpcTransportError
from node.runtime.config import NodeConfig
from node.transport.pki import generate_node
from scripts.launcher import procs
from scripts.launcher.fisco import channel_cert
from scripts.launcher.layout import HOST, MAX_NODES, Chain, ChainError, NodeEntry, save_chain


def _next_ports(chain: Chain, host: str) -> tuple[int, int]:
    """The first index-based port pair (base + i) that no node of the chain uses and that
    is free on this machine."""
    used = {n.p2p_port for n in chain.nodes} | {n.rpc_port for n in chain.nodes}
    for i in range(len(chain.nodes), MAX_NODES * 2):
        p2p, rpc = chain.p2p_port + i, chain.rpc_port + i
        if p2p in used or rpc in used or p2p > 65535 or rpc > 65535:
            continue
        if not procs.address_local(host):
            return p2p, rpc  # another machine's ports: its operator will see at start
        if procs.port_free(p2p, host) and procs.port_free(rpc, host):
            return p2p, rpc
    raise ChainError("no free port pair left for a new node", hint="see `ledgerlab status`")


def create_node(chain: Chain, *, host: str = HOST) -> tuple[Chain, NodeEntry]:
    """Write the next node's folder and record it in ``chain.toml`` as a free node."""
    if len(chain.nodes) >= MAX_NODES:
        raise ChainError(f"the chain already has {MAX_NODES} nodes, the most a layout holds")
    index = max((n.index for n in chain.nodes), default=-1) + 1
    name = f"node{index}"
    home = chain.root / name
    if home.exists():
        raise ChainError(
            f"{home} already exists but chain.toml does not list it",
            hint="remove that folder (it is not part of the chain) and try again",
        )
    template = NodeConfig.load(chain.nodes[0].config_path)
    p2p_port, rpc_port = _next_ports(chain, host)
    # the FISCO channel, when the chain has one: base + index, its own certificate
    channel = None if chain.channel_port is None else f"{host}:{chain.channel_port + index}"
    try:
        identity = generate_node(chain.root / "agency", home / "conf", name=name)
        if channel is not None:
            channel_cert(chain.root / "agency", home / "conf", name=name)
        config = dataclasses.replace(
            template,
            home=home,
            name=name,
            p2p_listen=f"{host}:{p2p_port}",
            rpc_listen=f"{host}:{rpc_port}",
            channel_listen=channel,
            peers=tuple(n.p2p for n in chain.nodes),
        )
        (home / "config.toml").write_text(config.to_toml(), encoding="utf-8")
        shutil.copyfile(chain.genesis_path, home / "conf" / "genesis.toml")
        (home / "data").mkdir(exist_ok=True)
        (home / "log").mkdir(exist_ok=True)
    except OSError as exc:
        shutil.rmtree(home, ignore_errors=True)
        raise ChainError(f"cannot write {home}: {exc.strerror or exc}") from None
    entry = NodeEntry(
        index=index,
        name=name,
        role="free",
        node_id=identity.node_id,
        p2p=f"{host}:{p2p_port}",
        rpc=f"{host}:{rpc_port}",
        home=home,
        channel=channel,
    )
    grown = dataclasses.replace(chain, nodes=(*chain.nodes, entry))
    save_chain(grown)
    return grown, entry


def record_roles(chain: Chain, sealers: list[str], observers: list[str]) -> Chain:
    """Write the roles the chain reports (node ids, hex) into ``chain.toml``."""

    def role(node: NodeEntry) -> str:
        if node.node_id in sealers:
            return "sealer"
        return "observer" if node.node_id in observers else "free"

    nodes = tuple(dataclasses.replace(n, role=role(n)) for n in chain.nodes)
    if nodes == chain.nodes:
        return chain
    updated = dataclasses.replace(chain, nodes=nodes)
    save_chain(updated)
    return updated


def refresh_roles(chain: Chain, timeout: float = 2.0) -> Chain:
    """``chain`` with the roles a running member reports (unchanged if none answers)."""
    running = procs.running_nodes(chain)
    for node in sorted(chain.nodes, key=lambda n: n.role == "free"):
        if node.index not in running:
            continue
        host = node.rpc.rpartition(":")[0]
        client = RpcClient(host, node.rpc_port, group=chain.group_id, timeout=timeout)
        try:
            if client.consensus_status().get("accountType") != "free":
                return record_roles(chain, client.sealers(), client.observers())
        except (RpcError, RpcTransportError, OSError):
            continue
        finally:
            client.close()
    return chain


def resolve_node(chain: Chain | None, text: str) -> tuple[str, str]:
    """``node4`` (a node of the chain directory) or a 128-hex node id -> (node id, label)."""
    raw = text.removeprefix("0x").lower()
    if len(raw) == 128 and all(c in "0123456789abcdef" for c in raw):
        label = (chain.name_of(raw) if chain else None) or raw[:12] + "…"
        return raw, label
    if chain is not None:
        for n in chain.nodes:
            if n.name == text or str(n.index) == text:
                return n.node_id, n.name
        names = ", ".join(n.name for n in chain.nodes)
        raise ChainError(f"no node {text!r} in {chain.root}", hint=f"nodes: {names}")
    raise ChainError(
        f"{text!r} is not a node id (128 hex digits)",
        hint="give a node id, or --dir DIR to name nodes as node4",
    )
