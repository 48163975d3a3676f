"""Transport settings: the one home of every transport option, its default and its rules.

Each transport takes one frozen settings object (:class:`TcpSettings`, :class:`MqttSettings`);
the factory (``node.transport.create_transport``) builds it from a ``[p2p]`` mapping with
:func:`settings_from_table`, and the node config loader (``node.runtime.config``) derives its
accepted ``[p2p]`` / ``[mqtt]`` keys from the same fields. A field is named once, here.

Addresses are parsed by :func:`parse_hostport` (used by the transports and the config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from node.transport.base import DEFAULT_INBOX_CAPACITY

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
MIN_TCP_FRAME = 1024  # a HELLO must fit
FAILURE_LOG_INTERVAL = 10.0
_TOPIC_FORBIDDEN = set("/+#\x00")


# -- host:port ---------------------------------------------------------------------


def parse_hostport(
    address: str | tuple[str, int], *, what: str = "address", allow_zero: bool = False
) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"`` or ``(host, port)`` -> ``(host, port)``.

    Rules: the port is decimal, 1..65535 (0 too when ``allow_zero``: a listen address where
    0 means "pick a free port"); an IPv6 host must be bracketed in the string form
    (``[::1]:30300``; ``::1:30300`` is ambiguous and refused) and comes back without the
    brackets; the host is not empty. ValueError (one line, naming ``what``) otherwise.
    """
    if isinstance(address, tuple):
        if len(address) != 2:
            raise ValueError(f"{what}: expected (host, port), got {address!r}")
        host, port = address
        if not isinstance(host, str) or not host or host.startswith("["):
            raise ValueError(f"{what}: bad host in {address!r}")
    elif isinstance(address, str):
        host, sep, port_s = address.rpartition(":")
        if not sep or not host or not (port_s.isascii() and port_s.isdigit()):
            raise ValueError(f"{what}: expected host:port, got {address!r}")
        if host.startswith("[") or host.endswith("]"):
            if not (host.startswith("[") and host.endswith("]")) or ":" not in host[1:-1]:
                raise ValueError(f"{what}: brackets are for IPv6 hosts only, got {address!r}")
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"{what}: an IPv6 host needs brackets ([::1]:30300), got {address!r}")
        port = int(port_s)
    else:
        raise ValueError(f"{what}: expected host:port, got {address!r}")
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"{what}: port must be an integer, got {address!r}")
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        raise ValueError(f"{what}: port must be {low}..65535, got {address!r}")
    return host, port


def format_hostport(host: str, port: int) -> str:
    """Inverse of :func:`parse_hostport` (brackets an IPv6 host)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- broker URL --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...`` (ports default 1883/8883)."""
    if not isinstance(url, str):
        raise ValueError(f"broker URL must be a string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"broker URL {url!r}: bad port") from None
    if not parts.hostname:
        raise ValueError(f"broker URL {url!r}: no host")
    return BrokerAddress(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


# -- field checks (used by __post_init__) --------------------------------------------


def _number(obj: object, name: str, *, minimum: float, strict: bool = False) -> None:
    """A float field: int or float (TOML writes ``5`` for 5.0), stored as float."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    object.__setattr__(obj, name, float(value))


def _integer(obj: object, name: str, *, minimum: int, maximum: int | None = None) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f"at least {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def _text(obj: object, name: str, *, optional: bool) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")


# -- the settings ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TcpSettings:
    """Options of the TCP + mutual TLS transport (``[p2p]``; docs/p2p.md section 3)."""

    listen_host: str = "127.0.0.1"
    """Interface the P2P listener binds."""
    listen_port: int = 0
    """P2P listen port; 0 picks a free one (read back ``TcpTransport.listen_port``)."""
    peers: Sequence[str | tuple[str, int]] = ()
    """Addresses to dial, ``"host:port"``, ``"[v6]:port"`` or ``(host, port)``."""
    max_frame_size: int = DEFAULT_MAX_FRAME
    """Largest payload sent or accepted (bytes); a larger one disconnects the peer."""
    inbox_capacity: int = DEFAULT_INBOX_CAPACITY
    """Inbound frames buffered before readers stop reading sockets."""
    backoff_initial: float = 0.25
    """First reconnect delay (s); doubled per failure, +-50 % jitter."""
    backoff_max: float = 10.0
    """Largest reconnect delay (s)."""
    handshake_timeout: float = 5.0
    """TLS + HELLO deadline for a new connection (s)."""
    ping_interval: float = 5.0
    """A PING is sent after this much write silence (s)."""
    idle_timeout: float = 20.0
    """A peer silent (pings included) for this long is dropped (s)."""
    send_buffer_limit: int = 64 * 1024 * 1024
    """Bytes queued per peer beyond which ``send`` drops frames."""
    max_pending_handshakes: int = 64
    """Accepted sockets that may be in their TLS handshake at once."""
    client_hello_timeout: float = 1.0
    """An accepted socket silent this long (capped at handshake_timeout) is dropped (s)."""
    handshake_grace: float = 0.25
    """A pending handshake that sent its ClientHello is not evicted before this age (s)."""
    failure_log_interval: float = FAILURE_LOG_INTERVAL
    """At most one log line per interval about failed inbound handshakes (s)."""

    def __post_init__(self) -> None:
        _text(self, "listen_host", optional=False)
        if not self.listen_host:
            raise ValueError("listen_host must not be empty")
        _integer(self, "listen_port", minimum=0, maximum=65535)
        if isinstance(self.peers, str | bytes) or not isinstance(self.peers, Iterable):
            raise ValueError(f"peers must be a list of host:port, got {self.peers!r}")
        peers = tuple(self.peers)
        for peer in peers:
            parse_hostport(peer, what="peers")
        object.__setattr__(self, "peers", peers)
        _integer(self, "max_frame_size", minimum=MIN_TCP_FRAME)
        _integer(self, "inbox_capacity", minimum=1)
        _number(self, "backoff_initial", minimum=0, strict=True)
        _number(self, "backoff_max", minimum=0, strict=True)
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"backoff_max ({self.backoff_max:g}) must be >= "
                f"backoff_initial ({self.backoff_initial:g})"
            )
        for name in ("handshake_timeout", "ping_interval", "idle_timeout", "client_hello_timeout"):
            _number(self, name, minimum=0, strict=True)
        _integer(self, "send_buffer_limit", minimum=1)
        _integer(self, "max_pending_handshakes", minimum=1)
        _number(self, "handshake_grace", minimum=0)
        _number(self, "failure_log_interval", minimum=0)

    def addresses(self) -> list[tuple[str, int]]:
        """:attr:`peers` as ``(host, port)`` pairs."""
        return [parse_hostport(p, what="peers") for p in self.peers]


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Options of the MQTT transport (``[p2p.mqtt]``; docs/p2p.md section 4)."""

    broker_url: str
    """``mqtt://[user[:pass]@]host[:port]`` or ``mqtts://...`` (required)."""
    username: str | None = None
    """Broker account; overrides the URL's."""
    password: str | None = None
    """Broker password; overrides the URL's."""
    tls_ca: str | None = None
    """mqtts: CA file for the broker certificate (system CAs when unset)."""
    tls_cert: str | None = None
    """mqtts: client certificate file, for brokers that require one."""
    tls_key: str | None = None
    """mqtts: key of ``tls_cert``."""
    tls_insecure: bool = False
    """mqtts: skip the broker hostname check."""
    topic_prefix: str = "ledgerlab"
    """First level of the topic tree ``<prefix>/<chain>/<group>``."""
    client_id: str | None = None
    """MQTT client id; default ``ll-<chain>-<group>-<node id[:32]>-<16 random hex>``, new
    at every start (an id others can guess lets them take the node's session over)."""
    qos_broadcast: int = 0
    """QoS of broadcast batches (0, 1 or 2)."""
    qos_unicast: int = 0
    """QoS of unicast batches; 1 only with ``set_tcp_nodelay`` on the broker."""
    max_batch_bytes: int = 64 * 1024
    """A batch is published once this many bytes are queued..."""
    max_batch_delay_ms: float = 2.0
    """...or this long (ms) after its first frame, whichever comes first."""
    max_frame_size: int = DEFAULT_MAX_FRAME
    """Largest frame sent or accepted (bytes)."""
    inbox_capacity: int = DEFAULT_INBOX_CAPACITY
    """Inbound frames buffered before new ones are dropped."""
    heartbeat_interval: float = 1.0
    """An empty batch is broadcast this often (s), for presence."""
    peer_timeout: float = 5.0
    """Peers are the members heard from within this long (s)."""
    max_age: float = 300.0
    """A sender's first batch of a new boot older than this (s) is a replay."""
    keepalive: int = 30
    """MQTT keep-alive (s)."""
    backoff_initial: float = 0.25
    """First broker reconnect delay (s); doubled per failure, +-50 % jitter."""
    backoff_max: float = 10.0
    """Largest broker reconnect delay (s)."""
    max_pending_bytes: int = 32 * 1024 * 1024
    """Frames queued while slow or disconnected before dropping (bytes)."""
    max_inflight: int = 32
    """Publishes in flight at once."""
    max_queued_messages: int = 10_000
    """Bound of aiomqtt's receive queue, which no message takes any more (each is checked
    as paho parses it; ``inbox_capacity`` bounds what waits); kept so configs load."""

    def __post_init__(self) -> None:
        parse_broker_url(self.broker_url)
        for name in ("username", "password", "tls_ca", "tls_cert", "tls_key", "client_id"):
            _text(self, name, optional=True)
        if not isinstance(self.tls_insecure, bool):
            raise ValueError(f"tls_insecure must be true or false, got {self.tls_insecure!r}")
        _text(self, "topic_prefix", optional=False)
        if not self.topic_prefix or _TOPIC_FORBIDDEN & set(self.topic_prefix):
            raise ValueError(
                f"topic_prefix {self.topic_prefix!r} must be non-empty without / + # or NUL"
            )
        for name in ("qos_broadcast", "qos_unicast"):
            value = getattr(self, name)
            if isinstance(value, bool) or value not in (0, 1, 2):
                raise ValueError(f"QoS must be 0, 1 or 2 ({name} = {value!r})")
        _integer(self, "max_batch_bytes", minimum=1)
        _number(self, "max_batch_delay_ms", minimum=0)
        _integer(self, "max_frame_size", minimum=1)
        _integer(self, "inbox_capacity", minimum=1)
        for name in ("heartbeat_interval", "peer_timeout", "max_age"):
            _number(self, name, minimum=0, strict=True)
        _integer(self, "keepalive", minimum=1)
        _number(self, "backoff_initial", minimum=0, strict=True)
        _number(self, "backoff_max", minimum=0, strict=True)
        if self.backoff_max < self.backoff_initial:
            raise ValueError(
                f"backoff_max ({self.backoff_max:g}) must be >= "
                f"backoff_initial ({self.backoff_initial:g})"
            )
        _integer(self, "max_pending_bytes", minimum=0)
        _integer(self, "max_inflight", minimum=1)
        _integer(self, "max_queued_messages", minimum=0)

    @property
    def max_batch_delay(self) -> float:
        """:attr:`max_batch_delay_ms` in seconds."""
        return self.max_batch_delay_ms / 1000


# -- building settings from tables -------------------------------------------------------

S = TypeVar("S", TcpSettings, MqttSettings)


def setting_names(cls: type[TcpSettings] | type[MqttSettings]) -> frozenset[str]:
    """The keys a table for ``cls`` accepts."""
    return frozenset(f.name for f in dataclasses.fields(cls))


def required_names(cls: type[TcpSettings] | type[MqttSettings]) -> tuple[str, ...]:
    """Fields without a default (a table must give them)."""
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )


def default_of(cls: type[TcpSettings] | type[MqttSettings], name: str) -> Any:
    """The default of field ``name`` of ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f.default
    raise KeyError(name)


def check_keys(table: Mapping[str, Any], known: Iterable[str], name: str) -> None:
    """ValueError ``[name] unknown setting(s): ...`` for keys outside ``known``."""
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ValueError(f"[{name}] unknown setting(s): {', '.join(unknown)}")


def settings_from_table(cls: type[S], table: Mapping[str, Any], name: str) -> S:
    """``cls(**table)``: unknown keys, missing required keys and bad values are a one-line
    ValueError prefixed with ``[name]``."""
    check_keys(table, setting_names(cls), name)
    missing = [k for k in required_names(cls) if k not in table]
    if missing:
        raise ValueError(f"[{name}] needs {', '.join(missing)}")
    try:
        return cls(**table)
    except ValueError as exc:
        raise ValueError(f"[{name}] {exc}") from None


def with_overrides(settings: S, overrides: Mapping[str, Any], what: str) -> S:
    """``settings`` with some fields replaced (TypeError for a name that is no field)."""
    if not overrides:
        return settings
    unknown = sorted(set(overrides) - setting_names(type(settings)))
    if unknown:
        raise TypeError(f"{what}() got unexpected keyword argument(s): {', '.join(unknown)}")
    return dataclasses.replace(settings, **overrides)
