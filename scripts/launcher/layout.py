"""A chain directory: what ``ledgerlab init`` writes and every other verb reads.

Layout (like FISCO BCOS's ``build_chain.sh`` output)::

    <dir>/chain.toml          launcher metadata: ids, transport, ports, one [[nodes]] entry each
    <dir>/ca/                 chain CA              (node.certs.generate_chain_ca)
    <dir>/agency/             agency                (node.certs.generate_agency)
    <dir>/genesis.toml        shared genesis (sealers, observers, governors, asset admins)
    <dir>/accounts/           client keys (admin.key, ``accounts new``), mode 0600
    <dir>/nodeI/config.toml   node.config.NodeConfig
    <dir>/nodeI/conf/         node certificates and keys + a copy of genesis.toml
    <dir>/nodeI/node.pid, data/, log/

``chain.toml`` is only for the launcher: the nodes read their own ``config.toml``, so a
node folder can be copied to another machine and run by hand. A chain spanning hosts
(``init --hosts``, :mod:`scripts.launcher.hosts`) keeps its node folders in per-host
packages, ``<dir>/hosts/<ip>/nodeI``; chain.toml then names each node's ``home``.
"""

from __future__ import annotations

import shutil
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node.ledger.fisco import fisco_address
from node.ledger.genesis import GenesisConfig, GenesisError
from node.runtime.config import NodeConfig
from node.transport.pki import generate_agency, generate_chain_ca, generate_node
from scripts.errors import CommandError
from scripts.launcher import accounts
from scripts.launcher import fisco as fisco_files
from scripts.launcher.fisco import channel_cert

CHAIN_FILE = "chain.toml"
DEFAULT_DIR = "chain"
DEFAULT_P2P_PORT = 30300
DEFAULT_RPC_PORT = 20200
DEFAULT_CHANNEL_PORT = 20800
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
HOST = "127.0.0.1"
MAX_NODES = 64
_OWNED = ("ca", "agency", "accounts", "genesis.toml", "hosts", "sdk", "fisco", CHAIN_FILE)


class ChainError(CommandError):
    """A chain directory that is missing, malformed, or would be overwritten."""


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One node as the launcher knows it."""

    index: int
    name: str
    role: str  # "sealer" | "observer"
    node_id: str  # 128 hex digits (the consensus public key)
    p2p: str  # host:port
    rpc: str  # host:port
    home: Path  # the node folder
    channel: str | None = None  # host:port of the FISCO channel, None when off

    @property
    def rpc_url(self) -> str:
        return f"http://{self.rpc}"

    @property
    def rpc_port(self) -> int:
        return int(self.rpc.rpartition(":")[2])

    @property
    def p2p_port(self) -> int:
        return int(self.p2p.rpartition(":")[2])

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def pid_path(self) -> Path:
        return self.home / "node.pid"

    @property
    def log_path(self) -> Path:
        return self.home / "log" / "node.log"

    @property
    def stderr_path(self) -> Path:
        """Where the process's own stdout/stderr go (start-up errors land here)."""
        return self.home / "log" / "stderr.log"


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one node of a new chain lives (folder relative to the chain root) and listens."""

    home: str
    p2p: str  # host:port
    rpc: str  # host:port
    channel: str | None = None  # host:port


def local_slots(
    total: int, p2p_port: int, rpc_port: int, channel_port: int | None = None
) -> tuple[Slot, ...]:
    """Every node on this machine: ``<root>/nodeI``, loopback ports base + i."""
    return tuple(
        Slot(
            f"node{i}",
            f"{HOST}:{p2p_port + i}",
            f"{HOST}:{rpc_port + i}",
            None if channel_port is None else f"{HOST}:{channel_port + i}",
        )
        for i in range(total)
    )


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain directory made by :func:`init_chain`."""

    root: Path
    chain_id: str
    group_id: str
    transport: str
    broker: str
    p2p_port: int
    rpc_port: int
    permissioned: bool
    nodes: tuple[NodeEntry, ...]
    channel_port: int | None = None  # FISCO channel base port; None: no channel
    fisco: bool = False  # made by `init --fisco`: FISCO ids, channel, client files

    @property
    def sealers(self) -> tuple[NodeEntry, ...]:
        return tuple(n for n in self.nodes if n.role == "sealer")

    @property
    def observers(self) -> tuple[NodeEntry, ...]:
        return tuple(n for n in self.nodes if n.role == "observer")

    @property
    def accounts_dir(self) -> Path:
        return self.root / "accounts"

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.toml"

    def node(self, index: int) -> NodeEntry:
        for n in self.nodes:
            if n.index == index:
                return n
        raise ChainError(
            f"no node {index} in {self.root} (it has nodes 0..{len(self.nodes) - 1})",
            hint="ledgerlab status shows the nodes",
        )

    def name_of(self, node_id: str) -> str | None:
        """The node name for a node id (hex, with or without 0x), None for strangers."""
        node_id = node_id.removeprefix("0x").lower()
        for n in self.nodes:
            if n.node_id == node_id:
                return n.name
        return None

    def genesis(self) -> GenesisConfig:
        try:
            return GenesisConfig.load(self.genesis_path)
        except GenesisError as exc:
            raise ChainError(f"{self.genesis_path}: {exc}") from None


def resolve_dir(value: str | Path | None) -> Path:
    return Path(value if value is not None else DEFAULT_DIR).expanduser()


def is_chain(root: Path) -> bool:
    return (root / CHAIN_FILE).is_file()


def load_chain(root: str | Path | None) -> Chain:
    """Read ``<root>/chain.toml``; a one-line :class:`ChainError` when it is not a chain."""
    root = resolve_dir(root)
    path = root / CHAIN_FILE
    if not path.is_file():
        where = "no chain directory" if not root.exists() else "no chain"
        raise ChainError(
            f"{where} at {root} (missing {CHAIN_FILE})",
            hint="create one with `ledgerlab init --nodes 4` or `ledgerlab up`, "
            "or point to it with --dir",
        )
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        chain = doc["chain"]
        nodes = tuple(
            NodeEntry(
                index=int(n["index"]),
                name=str(n["name"]),
                role=str(n["role"]),
                node_id=str(n["node_id"]),
                p2p=str(n["p2p"]),
                rpc=str(n["rpc"]),
                home=root / str(n.get("home", n["name"])),
                channel=str(n["channel"]) if "channel" in n else None,
            )
            for n in doc["nodes"]
        )
        return Chain(
            root=root,
            chain_id=str(chain["chain_id"]),
            group_id=str(chain["group_id"]),
            transport=str(chain["transport"]),
            broker=str(chain.get("broker", DEFAULT_BROKER)),
            p2p_port=int(chain["p2p_port"]),
            rpc_port=int(chain["rpc_port"]),
            permissioned=bool(chain.get("permissioned", False)),
            nodes=nodes,
            channel_port=int(chain["channel_port"]) if "channel_port" in chain else None,
            fisco=bool(chain.get("fisco", False)),
        )
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ChainError(f"{path} is unreadable: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainError(
            f"{path} is malformed ({exc!r})", hint="re-create it with --force"
        ) from None


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chain_toml(chain: Chain) -> str:
    lines = [
        "# ledgerlab chain directory, written by `ledgerlab init`; read by the launcher only.",
        "# Each node runs from its own folder's config.toml.",
        "[chain]",
        f"chain_id = {_toml_str(chain.chain_id)}",
        f"group_id = {_toml_str(chain.group_id)}",
        f"transport = {_toml_str(chain.transport)}",
        f"broker = {_toml_str(chain.broker)}",
        f"p2p_port = {chain.p2p_port}",
        f"rpc_port = {chain.rpc_port}",
        f"permissioned = {'true' if chain.permissioned else 'false'}",
        *([f"channel_port = {chain.channel_port}"] if chain.channel_port is not None else []),
        *(["fisco = true"] if chain.fisco else []),
        "",
    ]
    for n in chain.nodes:
        lines += [
            "[[nodes]]",
            f"index = {n.index}",
            f"name = {_toml_str(n.name)}",
            f"role = {_toml_str(n.role)}",
            f"node_id = {_toml_str(n.node_id)}",
            f"p2p = {_toml_str(n.p2p)}",
            f"rpc = {_toml_str(n.rpc)}",
        ]
        if n.channel is not None:
            lines.append(f"channel = {_toml_str(n.channel)}")
        if n.home != chain.root / n.name:
            lines.append(f"home = {_toml_str(n.home.relative_to(chain.root).as_posix())}")
        lines.append("")
    return "\n".join(lines)


def save_chain(chain: Chain) -> None:
    """Rewrite ``chain.toml`` (after ``add-node``, or to record roles changed on chain)."""
    path = chain.root / CHAIN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(_chain_toml(chain), encoding="utf-8")
    tmp.replace(path)


def _check_options(
    nodes: int,
    observers: int,
    p2p_port: int,
    rpc_port: int,
    transport: str,
    broker: str,
    per_host: int | None = None,
    channel_port: int | None = None,
) -> None:
    """``per_host``: the most nodes sharing one address (default: all of them)."""
    if not 1 <= nodes <= MAX_NODES:
        raise ChainError(f"--nodes must be between 1 and {MAX_NODES}, got {nodes}")
    if observers < 0 or nodes + observers > MAX_NODES:
        raise ChainError(f"--observers must be 0..{MAX_NODES - nodes}, got {observers}")
    total = per_host or nodes + observers
    bases = [("--p2p-port", p2p_port), ("--rpc-port", rpc_port)]
    if channel_port is not None:
        bases.append(("--channel-port", channel_port))
    for what, base in bases:
        if base < 1024 or base + total - 1 > 65535:
            raise ChainError(
                f"{what} {base}: node ports {base}..{base + total - 1} must fit 1024..65535"
            )
    if p2p_port < rpc_port + total and rpc_port < p2p_port + total:
        raise ChainError(
            f"P2P ports {p2p_port}.. and RPC ports {rpc_port}.. overlap for {total} nodes",
            hint="pick bases at least the node count apart, e.g. --p2p-port 30300 --rpc-port 20200",
        )
    if channel_port is not None:
        for what, base in bases[:2]:
            if channel_port < base + total and base < channel_port + total:
                raise ChainError(
                    f"channel ports {channel_port}.. and {what} ports {base}.. overlap "
                    f"for {total} nodes",
                    hint=f"pick --channel-port at least {total} away, e.g. {DEFAULT_CHANNEL_PORT}",
                )
    if transport not in ("tcp", "mqtt"):
        raise ChainError(f"--transport must be tcp or mqtt, got {transport!r}")
    parts = urlsplit(broker if "://" in broker else f"mqtt://{broker}")
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ChainError(f"--broker must look like mqtt://host:port, got {broker!r}")


def remove_chain(root: Path) -> None:
    """Delete what :func:`init_chain` wrote (and only that) from ``root``."""
    if not is_chain(root):
        return
    try:
        chain = load_chain(root)
        node_dirs = [n.home for n in chain.nodes]
    except ChainError:
        node_dirs = [p for p in root.glob("node*") if (p / "config.toml").is_file()]
    for path in [root / name for name in _OWNED] + node_dirs:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def init_chain(
    root: str | Path | None,
    *,
    nodes: int = 4,
    observers: int = 0,
    transport: str = "tcp",
    broker: str = DEFAULT_BROKER,
    p2p_port: int = DEFAULT_P2P_PORT,
    rpc_port: int = DEFAULT_RPC_PORT,
    chain_id: str = "chain0",
    group_id: str = "group0",
    permissioned: bool = False,
    force: bool = False,
    tx_count_limit: int | None = None,
    slots: Sequence[Slot] | None = None,
    channel_port: int | None = None,
    fisco: bool = False,
) -> Chain:
    """Generate a chain directory; refuses to touch an existing one unless ``force``.

    ``channel_port`` turns on each node's FISCO channel on that base port (+ i) and
    writes the SDK certificates (``sdk/``); ``fisco`` also writes the FISCO client files
    (:mod:`scripts.launcher.fisco`) and needs a channel.

    ``force`` removes only what a previous ``init`` wrote; callers must stop running
    nodes first (see :func:`scripts.launcher.procs.running_nodes`). ``slots`` places
    the nodes (default :func:`local_slots`; :mod:`scripts.launcher.hosts` for hosts).
    """
    root = resolve_dir(root)
    if fisco and channel_port is None:
        raise ValueError("a FISCO chain needs a channel port")
    if slots is None:
        slots = local_slots(nodes + observers, p2p_port, rpc_port, channel_port)
    per_host = max(Counter(s.p2p.rpartition(":")[0] for s in slots).values(), default=1)
    _check_options(
        nodes, observers, p2p_port, rpc_port, transport, broker, per_host, channel_port
    )
    if len(slots) != nodes + observers:
        raise ValueError(f"{len(slots)} slots for {nodes + observers} nodes")
    if is_chain(root):
        if not force:
            raise ChainError(
                f"a chain already exists in {root}",
                hint="use it with `ledgerlab up`, or replace it (data is lost) with --force",
            )
        remove_chain(root)
    elif root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ChainError(
            f"{root} exists and is not a ledgerlab chain directory",
            hint="choose another folder with --dir",
        )
    try:
        return _write_chain(
            root,
            nodes=nodes,
            observers=observers,
            transport=transport,
            broker=broker if "://" in broker else f"mqtt://{broker}",
            p2p_port=p2p_port,
            rpc_port=rpc_port,
            chain_id=chain_id,
            group_id=group_id,
            permissioned=permissioned,
            tx_count_limit=tx_count_limit,
            slots=slots,
            channel_port=channel_port,
            fisco=fisco,
        )
    except GenesisError as exc:
        remove_chain(root)
        raise ChainError(f"bad chain settings: {exc}") from None
    except OSError as exc:
        raise ChainError(
            f"cannot write the chain directory {root}: {exc.strerror or exc}"
        ) from None


def _write_chain(
    root: Path,
    *,
    nodes: int,
    observers: int,
    transport: str,
    broker: str,
    p2p_port: int,
    rpc_port: int,
    chain_id: str,
    group_id: str,
    permissioned: bool,
    tx_count_limit: int | None,
    slots: Sequence[Slot],
    channel_port: int | None = None,
    fisco: bool = False,
) -> Chain:
    root.mkdir(parents=True, exist_ok=True)
    generate_chain_ca(root / "ca", chain_name=chain_id)
    generate_agency(root / "ca", root / "agency", name="agency0")
    total = nodes + observers
    identities = []
    for i in range(total):
        conf = root / slots[i].home / "conf"
        identities.append(generate_node(root / "agency", conf, name=f"node{i}"))
        if slots[i].channel is not None:
            channel_cert(root / "agency", conf, name=f"node{i}")
    admin = accounts.new_account(root / "accounts", accounts.ADMIN)
    # The admin key signs FISCO transactions too (Caliper's account): list its Keccak
    # address beside its native one (docs/fisco-format.md, Identities).
    admins = (admin.address, fisco_address(admin.public_key)) if fisco else (admin.address,)
    extra: dict[str, Any] = {}
    if tx_count_limit is not None:
        extra["tx_count_limit"] = tx_count_limit
    genesis = GenesisConfig(
        chain_id=chain_id,
        group_id=group_id,
        sealers=tuple(bytes.fromhex(ident.node_id) for ident in identities[:nodes]),
        observers=tuple(bytes.fromhex(ident.node_id) for ident in identities[nodes:]),
        governors=admins,
        asset_admins=admins if permissioned else (),
        timestamp=int(time.time() * 1000),
        **extra,
    )
    genesis.dump(root / "genesis.toml")
    entries = []
    p2p_addrs = [s.p2p for s in slots]
    for i, ident in enumerate(identities):
        home = root / slots[i].home
        config = NodeConfig(
            home=home,
            name=f"node{i}",
            transport=transport,
            p2p_listen=p2p_addrs[i],
            peers=tuple(a for j, a in enumerate(p2p_addrs) if j != i),
            mqtt_broker=broker,
            rpc_listen=slots[i].rpc,
            channel_listen=slots[i].channel,
            conf_dir=Path("conf"),
            genesis=Path("conf/genesis.toml"),
            data_dir=Path("data"),
            log_file=Path("log/node.log"),
        )
        (home / "config.toml").write_text(config.to_toml(), encoding="utf-8")
        genesis.dump(home / "conf" / "genesis.toml")
        (home / "data").mkdir(exist_ok=True)
        (home / "log").mkdir(exist_ok=True)
        entries.append(
            NodeEntry(
                index=i,
                name=f"node{i}",
                role="sealer" if i < nodes else "observer",
                node_id=ident.node_id,
                p2p=p2p_addrs[i],
                rpc=slots[i].rpc,
                home=home,
                channel=slots[i].channel,
            )
        )
    chain = Chain(
        root=root,
        chain_id=chain_id,
        group_id=group_id,
        transport=transport,
        broker=broker,
        p2p_port=p2p_port,
        rpc_port=rpc_port,
        permissioned=permissioned,
        nodes=tuple(entries),
        channel_port=channel_port,
        fisco=fisco,
    )
    if channel_port is not None:
        fisco_files.write_sdk_certs(chain)
    if fisco:
        fisco_files.write_client_files(chain, admin)
    (root / CHAIN_FILE).write_text(_chain_toml(chain), encoding="utf-8")
    return chain
