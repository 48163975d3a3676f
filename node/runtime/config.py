"""Per-node configuration (``config.toml`` in a node folder) and how to read it.

Relative paths in the file resolve against the node folder, so a chain directory can be
moved as a whole. The node's role and sealer index are not configured: they follow from
where its consensus key appears in the genesis sealer or observer list.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.byzantine import BEHAVIOURS
from node.transport import mqtt_settings_from_p2p
from node.transport.settings import (
    MqttSettings,
    TcpSettings,
    check_keys,
    parse_hostport,
    setting_names,
    settings_from_table,
)

TRANSPORTS = ("tcp", "mqtt", "memory")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A config file that is missing, malformed or inconsistent."""


DEFAULT_BROKER = "mqtt://127.0.0.1:1883"

# Keys of [p2p] / [mqtt] with a node-config spelling of their own; every other key of
# those tables is a field of TcpSettings / MqttSettings (node/transport/settings.py).
P2P_KEYS = {"transport": "transport", "listen": "p2p_listen", "peers": "peers",
            "blacklist": "blacklist"}  # fmt: skip
MQTT_KEYS = {"broker": "mqtt_broker", "username": "mqtt_username",
             "password": "mqtt_password", "tls_ca": "mqtt_tls_ca"}  # fmt: skip
# [testing]: test modes of a node, never for a real chain (docs/node.md).
TESTING_KEYS = {"byzantine": "byzantine", "seed": "byzantine_seed"}
_VALUE_TYPES: dict[tuple[str, str], type] = {
    **{("node", k): str for k in ("name", "log_level", "conf_dir", "log_file")},
    ("chain", "genesis"): str,
    **{("p2p", k): str for k in ("transport", "listen")},
    **{("mqtt", k): str for k in MQTT_KEYS},
    ("rpc", "listen"): str,
    ("channel", "listen"): str,
    **{("storage", k): str for k in ("path", "backend")},
    ("txpool", "capacity"): int,
    **{("consensus", k): int for k in ("tick_ms", "seal_max_wait_ms")},
}
"""The type of each node-config key that is not a transport setting (those are checked
by node/transport/settings.py); bool is not an int here."""
_TCP_FROM_NODE = frozenset({"listen_host", "listen_port", "peers"})  # from listen, peers
_MQTT_FROM_NODE = frozenset({"broker_url", "username", "password", "tls_ca"})
_DEFAULT_TCP = TcpSettings()
_DEFAULT_MQTT = MqttSettings(broker_url=DEFAULT_BROKER)
P2P_TUNING = setting_names(TcpSettings) - _TCP_FROM_NODE
MQTT_TUNING = setting_names(MqttSettings) - _MQTT_FROM_NODE


def split_hostport(value: str, what: str, *, allow_zero: bool = True) -> tuple[str, int]:
    """``host:port`` of a listen address (port 0 = pick a free one) -> ``(host, port)``.

    The rules are :func:`node.transport.settings.parse_hostport`'s (``[v6]:port`` for
    IPv6, returned without brackets); ConfigError when malformed.
    """
    try:
        return parse_hostport(value, what=what, allow_zero=allow_zero)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _tuning(settings: TcpSettings | MqttSettings, names: frozenset[str]) -> dict[str, Any]:
    """The fields among ``names`` that differ from their defaults (for to_toml)."""
    defaults = _DEFAULT_MQTT if isinstance(settings, MqttSettings) else _DEFAULT_TCP
    return {
        n: getattr(settings, n)
        for n in sorted(names)
        if getattr(settings, n) != getattr(defaults, n)
    }


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
    mqtt_broker: str = DEFAULT_BROKER
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_tls_ca: str | None = None
    tcp: TcpSettings = _DEFAULT_TCP
    """TCP transport settings; listen address and peers come from p2p_listen/peers."""
    mqtt: MqttSettings = _DEFAULT_MQTT
    """MQTT transport settings; broker, username, password, tls_ca from the mqtt_* fields."""
    rpc_listen: str = "127.0.0.1:20200"
    channel_listen: str | None = None
    """FISCO channel port (``[channel] listen``; docs/channel.md); None: no channel. Its
    certificate is ``<conf_dir>/channel.crt`` + ``channel.key``, clients are checked
    against ``<conf_dir>/ca.crt``."""
    storage_backend: str = "rocksdb"
    txpool_capacity: int = 150_000
    tick_ms: int = 100
    seal_max_wait_ms: int = 20
    gossip_max_batch: int = 500
    gossip_max_delay_ms: int = 10
    sync_batch: int = 64
    byzantine: str | None = None
    """FOR TESTING ONLY: a Byzantine behaviour applied to what this node sends
    (``[testing] byzantine``; node/runtime/byzantine.py); None is an honest node."""
    byzantine_seed: int | None = None
    """Seed of the behaviour's random choices (``[testing] seed``; default: from the key)."""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"transport must be one of {', '.join(TRANSPORTS)}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        host, port = split_hostport(self.p2p_listen, "p2p.listen")
        split_hostport(self.rpc_listen, "rpc.listen")
        if self.channel_listen is not None:
            split_hostport(self.channel_listen, "channel.listen")
        for peer in self.peers:
            split_hostport(peer, "p2p.peers", allow_zero=False)
        tls_ca = str(self.path(Path(self.mqtt_tls_ca))) if self.mqtt_tls_ca else None
        try:
            tcp = dataclasses.replace(
                self.tcp, listen_host=host, listen_port=port, peers=tuple(self.peers)
            )
            mqtt = dataclasses.replace(
                self.mqtt,
                broker_url=self.mqtt_broker,
                username=self.mqtt_username,
                password=self.mqtt_password,
                tls_ca=tls_ca,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "tcp", tcp)
        object.__setattr__(self, "mqtt", mqtt)
        for name in (
            "txpool_capacity",
            "tick_ms",
            "seal_max_wait_ms",
            "gossip_max_batch",
            "sync_batch",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")
        seed = self.byzantine_seed
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError("testing.seed must be an integer")
        if self.byzantine is not None and self.byzantine not in BEHAVIOURS:
            raise ConfigError(
                f"testing.byzantine must be one of {', '.join(BEHAVIOURS)} (got {self.byzantine!r})"
            )

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
        except OSError as exc:  # a directory, no permission...
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except RecursionError:  # tomllib recurses once per level of nesting
            raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
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
        channel = table("channel")
        if set(channel) - {"listen"}:
            raise ConfigError("[channel] knows only the key listen")
        for (name, key), kind in _VALUE_TYPES.items():
            value = table(name).get(key)
            if value is not None and type(value) is not kind:
                what = "an integer" if kind is int else "a string"
                raise ConfigError(f"{name}.{key} must be {what}, not {value!r}")
        for name, key in (("chain", "genesis"), ("node", "conf_dir"), ("storage", "path")):
            if table(name).get(key) == "":
                raise ConfigError(f"{name}.{key} must not be empty")
        try:
            check_keys(p2p, P2P_KEYS.keys() | P2P_TUNING, "p2p")
            check_keys(mqtt, MQTT_KEYS.keys() | MQTT_TUNING, "mqtt")
            p2p_tuning = {k: v for k, v in p2p.items() if k in P2P_TUNING}
            mqtt_tuning = {k: v for k, v in mqtt.items() if k in MQTT_TUNING}
            tcp = settings_from_table(TcpSettings, p2p_tuning, "p2p")
            broker = mqtt.get("broker", DEFAULT_BROKER)
            mqtt_settings = mqtt_settings_from_p2p(
                p2p_tuning, {**mqtt_tuning, "broker_url": broker}, "mqtt"
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        txpool, consensus, testing = table("txpool"), table("consensus"), table("testing")
        unknown = sorted(set(testing) - set(TESTING_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown key in [testing]: {', '.join(unknown)} (known: {', '.join(TESTING_KEYS)})"
            )
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
            "tcp": tcp,
            "mqtt": mqtt_settings,
            "rpc_listen": rpc.get("listen"),
            "channel_listen": channel.get("listen"),
            "txpool_capacity": txpool.get("capacity"),
            "tick_ms": consensus.get("tick_ms"),
            "seal_max_wait_ms": consensus.get("seal_max_wait_ms"),
            **{field: testing.get(key) for key, field in TESTING_KEYS.items()},
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
        except ConfigError:
            raise
        except TypeError as exc:
            raise ConfigError(f"bad value in config: {exc}") from None

    def to_toml(self) -> str:
        def s(value: object) -> str:
            return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

        def lst(values: tuple[str, ...]) -> str:
            return "[" + ", ".join(s(v) for v in values) + "]"

        def value(v: object) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, int | float):
                return repr(v)
            if isinstance(v, tuple):
                return lst(tuple(str(x) for x in v))
            return s(v)

        def tuning(values: Mapping[str, Any]) -> list[str]:
            return [f"{k} = {value(v)}" for k, v in values.items()]

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
            *tuning(_tuning(self.tcp, P2P_TUNING)),
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
        lines += tuning(_tuning(self.mqtt, MQTT_TUNING))
        lines += [
            "",
            "[rpc]",
            f"listen = {s(self.rpc_listen)}",
            "",
            *(
                ("[channel]", f"listen = {s(self.channel_listen)}", "")
                if self.channel_listen
                else ()
            ),
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
        if self.byzantine is not None:
            lines += [
                "[testing]  # Byzantine test mode: never on a real chain",
                f"byzantine = {s(self.byzantine)}",
            ]
            if self.byzantine_seed is not None:
                lines.append(f"seed = {self.byzantine_seed}")
            lines.append("")
        return "\n".join(lines)
