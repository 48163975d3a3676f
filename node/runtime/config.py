"""Per-node configuration (``config.toml`` in a node folder) and how to read it.

Relative paths in the file resolve against the node folder, so a chain directory can be
moved as a whole. The node's role and sealer index are not configured: they follow from
where its consensus key appears in the genesis sealer or observer list.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSPORTS = ("tcp", "mqtt", "memory")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A config file that is missing, malformed or inconsistent."""


def split_hostport(value: str, what: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{what}: expected host:port, got {value!r}")
    return host, int(port)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything one node process needs besides the genesis file it points to."""

    home: Path
    name: str = "node0"
    genesis: Path = Path("conf/genesis.toml")
    conf_dir: Path = Path("conf")
    data_dir: Path = Path("data")
    log_file: Path | None = Path("log/node.log")
    log_level: str = "info"
    transport: str = "tcp"
    p2p_listen: str = "127.0.0.1:30300"
    peers: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()
    mqtt_broker: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca: str | None = None
    rpc_listen: str = "127.0.0.1:20200"
    storage_backend: str = "rocksdb"
    txpool_capacity: int = 150_000
    tick_ms: int = 100
    seal_max_wait_ms: int = 100
    gossip_max_batch: int = 500
    gossip_max_delay_ms: int = 10
    sync_batch: int = 64

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        split_hostport(self.p2p_listen, "p2p.listen")
        split_hostport(self.rpc_listen, "rpc.listen")
        for peer in self.peers:
            split_hostport(peer, "p2p.peers")
        for name in (
            "txpool_capacity",
            "tick_ms",
            "seal_max_wait_ms",
            "gossip_max_batch",
            "sync_batch",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")

    def path(self, relative: Path) -> Path:
        """``relative`` resolved against the node folder."""
        return relative if relative.is_absolute() else self.home / relative

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"no config file at {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls.from_dict(doc, home=path.parent)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, home: Path) -> NodeConfig:
        def table(name: str) -> dict[str, Any]:
            value = doc.get(name, {})
            if not isinstance(value, dict):
                raise ConfigError(f"[{name}] must be a table")
            return value

        node, chain, p2p = table("node"), table("chain"), table("p2p")
        mqtt, rpc, storage = table("mqtt"), table("rpc"), table("storage")
        txpool, consensus = table("txpool"), table("consensus")
        kw: dict[str, Any] = {
            "name": node.get("name"),
            "log_level": node.get("log_level"),
            "genesis": chain.get("genesis"),
            "conf_dir": node.get("conf_dir"),
            "data_dir": storage.get("path"),
            "storage_backend": storage.get("backend"),
            "log_file": node.get("log_file"),
            "transport": p2p.get("transport"),
            "p2p_listen": p2p.get("listen"),
            "peers": p2p.get("peers"),
            "blacklist": p2p.get("blacklist"),
            "mqtt_broker": mqtt.get("broker"),
            "mqtt_username": mqtt.get("username"),
            "mqtt_password": mqtt.get("password"),
            "mqtt_tls_ca": mqtt.get("tls_ca"),
            "rpc_listen": rpc.get("listen"),
            "txpool_capacity": txpool.get("capacity"),
            "tick_ms": consensus.get("tick_ms"),
            "seal_max_wait_ms": consensus.get("seal_max_wait_ms"),
        }
        kw = {k: v for k, v in kw.items() if v is not None}
        for key in ("genesis", "conf_dir", "data_dir", "log_file"):
            if key in kw:
                kw[key] = Path(kw[key]) if kw[key] else None
        for key in ("peers", "blacklist"):
            if key in kw:
                if not isinstance(kw[key], list) or not all(isinstance(p, str) for p in kw[key]):
                    raise ConfigError(f"p2p.{key} must be a list of strings")
                kw[key] = tuple(kw[key])
        try:
            return cls(home=home, **kw)
        except TypeError as exc:
            raise ConfigError(f"bad value in config: {exc}") from None

    def to_toml(self) -> str:
        def s(value: object) -> str:
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

        def lst(values: tuple[str, ...]) -> str:
            return "[" + ", ".join(s(v) for v in values) + "]"

        lines = [
            "[node]",
            f"name = {s(self.name)}",
            f"log_level = {s(self.log_level)}",
            f"conf_dir = {s(self.conf_dir)}",
            f"log_file = {s(self.log_file or '')}",
            "",
            "[chain]",
            f"genesis = {s(self.genesis)}",
            "",
            "[p2p]",
            f"transport = {s(self.transport)}",
            f"listen = {s(self.p2p_listen)}",
            f"peers = {lst(self.peers)}",
            f"blacklist = {lst(self.blacklist)}",
            "",
            "[mqtt]",
            f"broker = {s(self.mqtt_broker)}",
        ]
        if self.mqtt_username:
            lines.append(f"username = {s(self.mqtt_username)}")
        if self.mqtt_password:
            lines.append(f"password = {s(self.mqtt_password)}")
        if self.mqtt_tls_ca:
            lines.append(f"tls_ca = {s(self.mqtt_tls_ca)}")
        lines += [
            "",
            "[rpc]",
            f"listen = {s(self.rpc_listen)}",
            "",
            "[storage]",
            f"path = {s(self.data_dir)}",
            f"backend = {s(self.storage_backend)}",
            "",
            "[txpool]",
            f"capacity = {self.txpool_capacity}",
            "",
            "[consensus]",
            f"tick_ms = {self.tick_ms}",
            f"seal_max_wait_ms = {self.seal_max_wait_ms}",
            "",
        ]
        return "\n".join(lines)
