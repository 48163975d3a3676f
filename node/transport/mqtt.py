"""MQTT transport: nodes that cannot dial each other talk through a broker (aiomqtt 2.5).

Theory of operation
-------------------
Topics, per chain and group (``P = <prefix>/<chain>/<group>``; node ids are 128 hex)::

    P/bcast/<sender>            broadcast; every node subscribes to P/bcast/+
    P/p2p/<dest>/<sender>       unicast; node <dest> subscribes to P/p2p/<dest>/+

The sender's id is the last topic level so a broker ACL can pin each node to publishing
only on its own topics (docs/p2p.md has a Mosquitto example). The broker is untrusted, so
every MQTT message is an authenticated *batch*::

    payload  = body || tags || count (2 bytes, big-endian: how many tags)
    body     = msgpack [version=2, sender(64 B), genesis_hash, boot_ms, boot_nonce(8 B),
                        seq, ts_ms, [frame, frame, ...]]
    digest   = SHA-256("ledgerlab/mqtt/v2" 0x00 topic 0x00 body)
    tags     = one (label, tag) per receiver: label = the receiver's node id, first 8 bytes;
               tag = BLAKE2b-128(key = K[sender -> receiver], digest)

``K[a -> b]`` is a symmetric key only nodes a and b can compute (:class:`PairKeys`): a
static-static ECDH on secp256k1 between a's consensus key and b's, hashed with both ids
in order, so each direction has its own key. No message is exchanged to set it up: every
node already knows every member's public key (it is the node id, fixed by genesis and the
governance that admits it), so the ECDH is authenticated by the member list itself, and a
peer that restarts or reconnects needs no handshake. A broadcast carries one tag per member,
a unicast one. Why this is as strong as the per-batch ECDSA signature it replaced, for
what a receiver checks (docs/p2p.md, section 4): a valid tag for receiver b on batch B
needs ``K[a -> b]``, i.e. a's or b's secret key (computational Diffie-Hellman on
secp256k1), or a second body with the same SHA-256 digest; the topic is inside the digest,
so a batch cannot be redirected to another inbox or chain, and the direction is in the
key, so b cannot bounce a's batch back as its own. What a MAC does not give: b cannot prove
to c that a sent a batch (nothing relies on that: votes, proposals and transactions carry
their own signatures), and a thief of b's secret key could forge batches *to b* from
anyone (with a signature only as a), which changes nothing for the others: with that key
the thief is b as far as the chain is concerned.

Per MQTT message the sender hashes the body once and computes one 16-byte tag (a keyed
BLAKE2b of the 32-byte digest) per receiver; each receiver hashes once and checks its own:
about 1 us plus 0.8 ns per byte, where the ECDSA signature cost ~55 us to sign, ~33 us to
recover and SHA3-256 ~2.8 ns per byte (docs/performance.md, Transport).

A batch from a node with another genesis is dropped (logged once per sender, naming both
hashes); ``(boot_ms, boot_nonce, seq)`` with a sliding window rejects replays, and one from
a sender's earlier boot (or a new boot older than ``max_age``) is dropped, unless the
current boot has been silent for ``peer_timeout`` (a sender restarted with its clock set
back). Frames from non-members, blacklisted ids, forged (``bad_signature``: no valid tag
for us) or malformed batches are dropped and counted.

Frames are coalesced per topic and published when ``max_batch_bytes`` is reached or
``max_batch_delay`` after the first frame, because a publish costs ~100 us whatever its
size. An empty batch is a heartbeat: :meth:`MqttTransport.peers` are the members heard
from within ``peer_timeout``. The session is clean (``clean_session=True``) and both
subscriptions are renewed on every connect, so a broker restart loses nothing the node
relies on; what was in flight is lost and PBFT/sync recover it. The client id ends in 64
random bits drawn at start-up: a broker lets a new connection with a client's id take its
session over, so a predictable id would let anyone who reaches the broker knock a node off
it, over and over (two nodes of four: the chain halts).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import coincurve
from paho.mqtt.client import MQTTMessage

from consensus.codec import (
    DecodeError,
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    pack,
    unpack,
)
from consensus.crypto import KeyPair
from node.transport.base import Transport
from node.transport.settings import BrokerAddress as BrokerAddress  # re-exported
from node.transport.settings import MqttSettings, parse_broker_url, with_overrides

log = logging.getLogger("ledgerlab.transport.mqtt")

ENVELOPE_VERSION = 2
TAG_SIZE = 16
_LABEL_SIZE = 8
_LABEL_HEX = 2 * _LABEL_SIZE
_ENTRY_SIZE = _LABEL_SIZE + TAG_SIZE
_COUNT_SIZE = 2
_MAX_TAGS = 1024  # receivers per batch a receiver accepts: the bound on a payload's tags
MAX_FORMER_MEMBERS = 16
"""Removed members our broadcasts still carry a tag for (MqttTransport.set_members)."""
_DOMAIN = b"ledgerlab/mqtt/v2\x00"
_KEY_DOMAIN = b"ledgerlab/mqtt/v2 pair key"
_REPLAY_WINDOW = 4096
_WINDOW_MASK = (1 << _REPLAY_WINDOW) - 1
_FORBIDDEN = set("/+#\x00")


def topic_root(prefix: str, chain_id: str, group_id: str) -> str:
    for what, value in (("prefix", prefix), ("chain id", chain_id), ("group id", group_id)):
        if not value or _FORBIDDEN & set(value):
            raise ValueError(f"{what} {value!r} must be non-empty without / + # or NUL")
    return f"{prefix}/{chain_id}/{group_id}"


def batch_digest(topic: str, body: bytes | memoryview) -> bytes:
    """What each receiver's tag authenticates: the topic and the whole body."""
    h = hashlib.sha256(_DOMAIN + topic.encode() + b"\x00")
    h.update(body)
    return h.digest()


def _tag(key: bytes, digest: bytes) -> bytes:
    return hashlib.blake2b(digest, digest_size=TAG_SIZE, key=key).digest()


class PairKeys:
    """The MAC keys one node shares with each peer, derived once per peer and kept.

    ``K[a -> b] = BLAKE2b-256(key = ECDH(a, b), "ledgerlab/mqtt/v2 pair key" || a || b)``
    with ``ECDH`` libsecp256k1's (SHA-256 of the shared point) and ``a``, ``b`` the 64-byte
    node ids: both ends compute the same secret, the id order makes the two directions
    different keys.
    """

    __slots__ = ("_cache", "_private", "node_id", "public_key")

    def __init__(self, key: KeyPair) -> None:
        self._private = coincurve.PrivateKey(key.secret)
        self.public_key = key.public_key
        self.node_id = key.public_key.hex()
        self._cache: dict[str, tuple[bytes, bytes]] = {}

    def get(self, peer_id: str) -> tuple[bytes, bytes] | None:
        """``(K[us -> peer], K[peer -> us])``; None if ``peer_id`` is not a valid
        public key (a member list should never hold one, but it comes from outside)."""
        pair = self._cache.get(peer_id)
        if pair is None:
            try:
                peer = bytes.fromhex(peer_id)
                if len(peer) != 64:
                    return None
                shared = self._private.ecdh(b"\x04" + peer)
            except ValueError:
                return None
            pair = self._cache[peer_id] = (
                _pair_key(shared, self.public_key, peer),
                _pair_key(shared, peer, self.public_key),
            )
        return pair


def _pair_key(shared: bytes, sender: bytes, receiver: bytes) -> bytes:
    return hashlib.blake2b(_KEY_DOMAIN + sender + receiver, digest_size=32, key=shared).digest()


@functools.lru_cache(maxsize=16)
def _pair_keys_of(key: KeyPair) -> PairKeys:
    return PairKeys(key)


def seal_payload(
    key: KeyPair | PairKeys, topic: str, body: bytes, receivers: Iterable[str]
) -> bytes:
    """``body`` with one tag per receiver (node ids; invalid ones are left out)."""
    keys = key if isinstance(key, PairKeys) else _pair_keys_of(key)
    digest = batch_digest(topic, body)
    parts = [body]
    for peer_id in receivers:
        pair = keys.get(peer_id)
        if pair is not None:
            parts.append(bytes.fromhex(peer_id[:_LABEL_HEX]))
            parts.append(_tag(pair[0], digest))
    parts.append((len(parts) // 2).to_bytes(_COUNT_SIZE, "big"))
    return b"".join(parts)


def seal_batch(
    key: KeyPair | PairKeys,
    topic: str,
    frames: list[bytes],
    *,
    receivers: Iterable[str],
    genesis_hash: bytes,
    boot_ms: int,
    boot_nonce: bytes,
    seq: int,
    ts_ms: int | None = None,
) -> bytes:
    """The MQTT payload carrying ``frames`` on ``topic`` to ``receivers`` (wire format above)."""
    if ts_ms is None:
        ts_ms = time.time_ns() // 1_000_000
    body = pack(
        [ENVELOPE_VERSION, key.public_key, genesis_hash, boot_ms, boot_nonce, seq, ts_ms, frames]
    )
    return seal_payload(key, topic, body, receivers)


def _retrieve_disconnect_error(client: aiomqtt.Client) -> None:
    """Mark aiomqtt's disconnect future as seen: we already handled (and logged) the loss,
    and aiomqtt 2.5 leaves it unretrieved, so asyncio would log 'Future exception was
    never retrieved' on every broker restart."""
    fut = getattr(client, "_disconnected", None)
    if isinstance(fut, asyncio.Future) and fut.done() and not fut.cancelled():
        fut.exception()


class _Dropped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _SenderState:
    boot_ms: int
    boot_nonce: bytes
    top: int
    mask: int
    last_seen: float


class MqttTransport(Transport):
    """Transport over an MQTT broker; see the module docstring for the protocol.

    Args:
        key: this node's consensus key; the node id is its public key in hex.
        genesis_hash: batches from nodes with another genesis are dropped.
        chain_id, group_id: name the topic tree, so chains can share a broker.
        members: node ids accepted as senders (sealers + observers).
        settings: broker, TLS files, QoS, batching, presence, back-off and limits
            (:class:`node.transport.settings.MqttSettings`; each field documented there).
        blacklist: node ids dropped even if members.
        tls_context: TLS for ``mqtts``; else built from the settings' ``tls_*`` files.
        **overrides: fields of ``settings`` to replace, by name (tests, scripts); without
            ``settings``, ``broker_url`` must be one of them.
    """

    def __init__(
        self,
        *,
        key: KeyPair,
        genesis_hash: bytes,
        chain_id: str,
        group_id: str | int,
        members: Iterable[str],
        settings: MqttSettings | None = None,
        blacklist: Iterable[str] = (),
        tls_context: ssl.SSLContext | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            if "broker_url" not in overrides:
                raise TypeError("MqttTransport() needs settings or broker_url")
            settings = MqttSettings(broker_url=overrides.pop("broker_url"))
        s = with_overrides(settings, overrides, "MqttTransport")
        super().__init__(key.public_key.hex(), inbox_capacity=s.inbox_capacity)
        self.settings = s
        self.key = key
        self._pair_keys = PairKeys(key)
        self._label = key.public_key[:_LABEL_SIZE]
        self.genesis_hash = bytes(genesis_hash)
        self._genesis_warned: set[str] = set()
        self._stale_warned: set[str] = set()
        self.broker = parse_broker_url(s.broker_url)
        self.username = s.username if s.username is not None else self.broker.username
        self.password = s.password if s.password is not None else self.broker.password
        if self.broker.tls and tls_context is None:
            tls_context = ssl.create_default_context(cafile=s.tls_ca)
            if s.tls_cert:
                tls_context.load_cert_chain(s.tls_cert, s.tls_key)
            if s.tls_insecure:
                tls_context.check_hostname = False
        self.tls_context = tls_context if self.broker.tls else None
        self.root = topic_root(s.topic_prefix, chain_id, str(group_id))
        self.client_id = (
            s.client_id or f"ll-{chain_id}-{group_id}-{self.node_id[:32]}-{os.urandom(8).hex()}"
        )
        self.members = frozenset(members) - {self.node_id}
        # Removed members still get a tag on our broadcasts (bounded, oldest forgotten): a
        # node removed by block k may not have committed k yet, and needs the others'
        # Commits and Status to get there and learn it is out. A tag only proves origin;
        # broadcasts are readable on the broker anyway.
        self._former: dict[str, None] = {}
        self.blacklist = frozenset(blacklist)
        self.qos_broadcast = s.qos_broadcast
        self.qos_unicast = s.qos_unicast
        self.max_batch_bytes = s.max_batch_bytes
        self.max_batch_delay = s.max_batch_delay
        self.max_frame_size = s.max_frame_size
        self.heartbeat_interval = s.heartbeat_interval
        self.peer_timeout = s.peer_timeout
        self.max_age = s.max_age
        self.keepalive = s.keepalive
        self.backoff_initial = s.backoff_initial
        self.backoff_max = s.backoff_max
        self.max_pending_bytes = s.max_pending_bytes
        self.max_inflight = s.max_inflight
        self.max_queued_messages = s.max_queued_messages
        self.bcast_topic = f"{self.root}/bcast/{self.node_id}"
        self._bcast_prefix = f"{self.root}/bcast/"
        self._inbox_prefix = f"{self.root}/p2p/{self.node_id}/"
        self._max_body = s.max_frame_size + 4096
        self._max_message = self._max_body + _MAX_TAGS * _ENTRY_SIZE + _COUNT_SIZE
        self.boot_ms = time.time_ns() // 1_000_000
        self.boot_nonce = os.urandom(8)
        self._seq = 0
        self._buffers: dict[str, list[bytes]] = {}
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._senders: dict[str, _SenderState] = {}
        self._live: frozenset[str] = frozenset()
        self._connected = False
        self._main: asyncio.Task[None] | None = None
        self._rng = random.Random()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        """Start the connection supervisor; returns at once (the broker may be down)."""
        if self._main is not None:
            raise RuntimeError("transport already started")
        self._main = asyncio.create_task(self._supervise(), name=f"mqtt-{self.node_id[:8]}")

    async def close(self) -> None:
        main = self._main
        if main is not None and not main.done():
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        self._set_connected(False)
        self._inbox.close()

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while not self._connected:
                await self.peers_change()

    # -- outbound API ------------------------------------------------------------

    def peers(self) -> frozenset[str]:
        return self._live

    def heard_within(self, seconds: float) -> frozenset[str]:
        """Members whose last batch (a heartbeat at least) arrived within ``seconds``:
        :meth:`peers` with the window checked now, not at the last heartbeat tick."""
        cutoff = time.monotonic() - seconds
        senders = self._senders
        return frozenset(
            s for s in self._live if (st := senders.get(s)) is not None and st.last_seen >= cutoff
        )

    def backlog(self) -> int:
        return self._pending_bytes

    def set_members(self, allowed: Iterable[str] | None, blacklist: Iterable[str] = ()) -> None:
        if allowed is None:
            raise ValueError("the MQTT transport needs an explicit member set")
        allowed = frozenset(allowed) - {self.node_id}
        for gone in self.members - allowed:
            self._former[gone] = None
        for back in allowed:
            self._former.pop(back, None)
        while len(self._former) > MAX_FORMER_MEMBERS:
            del self._former[next(iter(self._former))]
        self.members = allowed
        self.blacklist = frozenset(blacklist)
        live = frozenset(p for p in self._live if p in self.members and p not in self.blacklist)
        if live != self._live:
            self._live = live
            self._notify_peers_changed()

    def send(self, peer_id: str, data: bytes) -> bool:
        if peer_id not in self.members or peer_id in self.blacklist:
            self.stats.dropped["not_member"] += 1
            return False
        return self._queue(f"{self.root}/p2p/{peer_id}/{self.node_id}", data)

    def broadcast(self, data: bytes) -> int:
        if not self._queue(self.bcast_topic, data):
            return 0
        return len(self._live)

    def _queue(self, topic: str, data: bytes) -> bool:
        stats = self.stats
        if len(data) > self.max_frame_size:
            stats.dropped["frame_too_large"] += 1
            return False
        if self._pending_bytes > self.max_pending_bytes:
            stats.dropped["send_buffer_full"] += 1
            return False
        buf = self._buffers.get(topic)
        if buf is None:
            buf = self._buffers[topic] = []
        buf.append(data)
        self._pending_bytes += len(data) + 5
        stats.frames_out += 1
        stats.bytes_out += len(data)
        self._wake.set()
        return True

    # -- connection supervisor ---------------------------------------------------

    def _set_connected(self, value: bool) -> None:
        if self._connected != value:
            self._connected = value
            if not value:
                self._live = frozenset()
            self._notify_peers_changed()

    async def _supervise(self) -> None:
        delay = self.backoff_initial
        where = f"{self.broker.host}:{self.broker.port}"
        while True:
            client: aiomqtt.Client | None = None
            try:
                client = aiomqtt.Client(
                    self.broker.host,
                    self.broker.port,
                    username=self.username,
                    password=self.password,
                    identifier=self.client_id,
                    clean_session=True,
                    keepalive=self.keepalive,
                    tls_context=self.tls_context,
                    timeout=10,
                    max_inflight_messages=self.max_inflight,
                    # paho leaves Nagle on: with delayed ACKs a small vote waits ~40 ms
                    socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
                    max_queued_incoming_messages=self.max_queued_messages,
                    logger=logging.getLogger("ledgerlab.transport.mqtt.client"),
                )
                client.pending_calls_threshold = self.max_inflight + 8  # we bound them ourselves
                async with client:
                    # Before subscribing, so that no message takes aiomqtt's way: its
                    # Message objects, queue and a reader task cost ~30 % of this
                    # transport's CPU per message (docs/performance.md, Transport).
                    client._client.on_message = self._on_paho_message
                    self.stats.connects += 1
                    delay = self.backoff_initial
                    await client.subscribe(
                        [(self._bcast_prefix + "+", 1), (self._inbox_prefix + "+", 1)]
                    )
                    log.info("%s connected to broker %s", self.node_id[:8], where)
                    self._set_connected(True)
                    async with asyncio.TaskGroup() as tg:
                        tg.create_task(self._flush_loop(client, tg), name="mqtt-flush")
                        tg.create_task(self._heartbeat_loop(client), name="mqtt-heartbeat")
            except* (aiomqtt.MqttError, OSError) as group:
                first = group.exceptions[0]
                self.stats.disconnects["broker"] += 1
                log.warning(
                    "%s: broker %s unavailable (%s); retrying in ~%.1fs",
                    self.node_id[:8],
                    where,
                    first,
                    delay,
                )
            except* Exception:  # our bug: keep the node, reconnect
                self.stats.disconnects["internal_error"] += 1
                log.exception("%s: MQTT connection loop failed", self.node_id[:8])
            if client is not None:
                _retrieve_disconnect_error(client)
            self._set_connected(False)
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.5))
            delay = min(delay * 2, self.backoff_max)

    def _on_paho_message(self, _client: Any, _userdata: Any, message: MQTTMessage) -> None:
        """paho's callback, as it parses each message in the event loop's read callback:
        checked and queued at once (the inbox bounds what waits for the node)."""
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers check topics are UTF-8; ours do not rely on it
            self.stats.dropped["malformed"] += 1
            return
        try:
            payload = message.payload
            self.deliver(topic, payload if isinstance(payload, bytes) else bytes(payload))
        except Exception:  # our bug: count it, keep the session
            self.stats.dropped["internal_error"] += 1
            log.exception("%s: checking an MQTT message failed", self.node_id[:8])

    async def _heartbeat_loop(self, client: aiomqtt.Client) -> None:
        task = asyncio.current_task()
        while True:
            payload = self._seal(self.bcast_topic, [])
            await client.publish(self.bcast_topic, payload, qos=0)
            # A publish that waits for the socket ends in asyncio.wait_for, which on
            # Python 3.11 returns instead of raising when a cancel meets completion: without
            # this check the loop would outlive close() and hang it forever.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            self._expire_peers()
            await asyncio.sleep(self.heartbeat_interval)

    async def _flush_loop(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        inflight = asyncio.Semaphore(self.max_inflight)
        while True:
            await self._wake.wait()
            if self._pending_bytes < self.max_batch_bytes:
                await asyncio.sleep(self.max_batch_delay)
            self._wake.clear()
            buffers, self._buffers = self._buffers, {}
            self._pending_bytes = 0
            for topic, frames in buffers.items():
                qos = self.qos_broadcast if topic == self.bcast_topic else self.qos_unicast
                for batch in self._split(frames):
                    payload = self._seal(topic, batch)
                    await inflight.acquire()
                    tg.create_task(
                        self._publish(client, topic, payload, qos, len(batch), inflight),
                        name="mqtt-publish",
                    )

    async def _publish(
        self,
        client: aiomqtt.Client,
        topic: str,
        payload: bytes,
        qos: int,
        frames: int,
        inflight: asyncio.Semaphore,
    ) -> None:
        try:
            await client.publish(topic, payload, qos=qos)
        except aiomqtt.MqttError as exc:
            self.stats.dropped["publish_failed"] += frames
            log.debug("publish on %s failed: %s", topic, exc)
        finally:
            inflight.release()

    def _split(self, frames: list[bytes]) -> list[list[bytes]]:
        out: list[list[bytes]] = []
        cur: list[bytes] = []
        size = 0
        for f in frames:
            if cur and size + len(f) + 5 > self.max_batch_bytes:
                out.append(cur)
                cur, size = [], 0
            cur.append(f)
            size += len(f) + 5
        if cur:
            out.append(cur)
        return out

    def _seal(self, topic: str, frames: list[bytes]) -> bytes:
        self._seq += 1
        if topic == self.bcast_topic:
            receivers: Iterable[str] = (self.members | self._former.keys()) - self.blacklist
        else:
            receivers = (topic.rsplit("/", 2)[1],)  # P/p2p/<dest>/<us>
        return seal_batch(
            self._pair_keys,
            topic,
            frames,
            receivers=receivers,
            genesis_hash=self.genesis_hash,
            boot_ms=self.boot_ms,
            boot_nonce=self.boot_nonce,
            seq=self._seq,
        )

    # -- inbound -----------------------------------------------------------------

    def deliver(self, topic: str, payload: bytes) -> int:
        """Check one MQTT message and queue its frames; returns how many were delivered.

        Public so tests can feed crafted messages; every rejection is counted in
        ``stats.dropped`` (per MQTT message) and never raises.
        """
        try:
            return self._accept(topic, payload)
        except _Dropped as exc:
            self.stats.dropped[exc.reason] += 1
            return 0

    def _accept(self, topic: str, payload: bytes) -> int:
        if topic.startswith(self._bcast_prefix):
            sender = topic[len(self._bcast_prefix) :]
            if sender == self.node_id:
                return 0  # our own broadcast echoed back by the broker
        elif topic.startswith(self._inbox_prefix):
            sender = topic[len(self._inbox_prefix) :]
        else:
            raise _Dropped("foreign_topic")
        if sender in self.blacklist:
            raise _Dropped("blacklisted")
        if sender not in self.members:
            raise _Dropped("unknown_sender")
        if len(payload) > self._max_message:
            raise _Dropped("too_large")
        if len(payload) <= _ENTRY_SIZE + _COUNT_SIZE:
            raise _Dropped("malformed")
        body = self._authenticated_body(topic, sender, payload)
        try:
            fields = expect_list(unpack(body, max_size=self._max_body), 8, "batch")
            version = expect_int(fields[0], "batch.version")
            expect_bytes(fields[1], "batch.sender", size=64)
            genesis = expect_bytes(fields[2], "batch.genesis", max_len=64)
            boot_ms = expect_int(fields[3], "batch.boot_ms")
            boot_nonce = expect_bytes(fields[4], "batch.boot_nonce", size=8)
            seq = expect_int(fields[5], "batch.seq")
            ts_ms = expect_int(fields[6], "batch.ts_ms")
            frames = expect_seq(fields[7], "batch.frames", max_len=self._max_body)
            for f in frames:
                expect_bytes(f, "frame", max_len=self.max_frame_size)
        except DecodeError:
            raise _Dropped("malformed") from None
        if version != ENVELOPE_VERSION or fields[1] != bytes.fromhex(sender):
            raise _Dropped("malformed")
        if genesis != self.genesis_hash:
            if sender not in self._genesis_warned:
                self._genesis_warned.add(sender)
                log.error(
                    "dropping node %s: genesis mismatch: ours %s, theirs %s",
                    sender[:16],
                    self.genesis_hash.hex(),
                    genesis.hex(),
                )
            raise _Dropped("genesis_mismatch")
        self._check_replay(sender, boot_ms, boot_nonce, seq, ts_ms)
        if sender not in self._live:
            self._live = self._live | {sender}
            self._notify_peers_changed()
        if not frames:
            return 0
        inbox = self._inbox
        if inbox.over_capacity():
            self.stats.dropped["inbox_full"] += len(frames)
            return 0
        stats = self.stats
        for f in frames:
            inbox.put(sender, f)
            stats.bytes_in += len(f)
        stats.frames_in += len(frames)
        return len(frames)

    def _authenticated_body(self, topic: str, sender: str, payload: bytes) -> bytes:
        """The body of ``payload`` if it carries a valid tag for us from ``sender``."""
        count = int.from_bytes(payload[-_COUNT_SIZE:], "big")
        body_len = len(payload) - _COUNT_SIZE - count * _ENTRY_SIZE
        pair = self._pair_keys.get(sender)
        if not count or body_len <= 0 or pair is None:
            raise _Dropped("bad_signature")
        label = self._label
        for at in range(body_len, len(payload) - _COUNT_SIZE, _ENTRY_SIZE):
            if payload[at : at + _LABEL_SIZE] == label:
                # Only the first entry labelled for us counts: a sender makes one per
                # receiver, and a forger repeating our label must not buy more hashing.
                body = payload[:body_len]
                tag = payload[at + _LABEL_SIZE : at + _ENTRY_SIZE]
                if hmac.compare_digest(_tag(pair[1], batch_digest(topic, body)), tag):
                    return body
                break
        raise _Dropped("bad_signature")

    def _check_replay(
        self, sender: str, boot_ms: int, boot_nonce: bytes, seq: int, ts_ms: int
    ) -> None:
        now = time.monotonic()
        st = self._senders.get(sender)
        # A later boot takes over at once. So does an earlier-stamped one once the current
        # boot has been silent for peer_timeout: a sender restarted after its clock was
        # set back (chaos found a node 240 s ahead, then corrected, unheard by everyone).
        if (
            st is None
            or boot_ms > st.boot_ms
            or (
                (boot_ms, boot_nonce) != (st.boot_ms, st.boot_nonce)
                and now - st.last_seen > self.peer_timeout
            )
        ):
            age = time.time() - ts_ms / 1000
            if age > self.max_age:
                if sender not in self._stale_warned:  # a replay, or clocks far apart
                    self._stale_warned.add(sender)
                    log.warning(
                        "dropping node %s's batches: stamped %.0f s before our clock, more "
                        "than max_age %.0f s (a replay, or clocks that far apart: "
                        "docs/reliability.md, Clock skew)",
                        sender[:16],
                        age,
                        self.max_age,
                    )
                raise _Dropped("stale")
            self._senders[sender] = _SenderState(boot_ms, boot_nonce, seq, 1, now)
            return
        if boot_ms != st.boot_ms or boot_nonce != st.boot_nonce:
            raise _Dropped("replay")
        if seq > st.top:
            # A jump past the window forgets it: shifting by the jump itself would build a
            # bit mask of up to 2^64 bits (a signed batch with seq 2^64 - 1: MemoryError).
            shift = seq - st.top
            st.mask = ((st.mask << shift) | 1) & _WINDOW_MASK if shift < _REPLAY_WINDOW else 1
            st.top = seq
        else:
            offset = st.top - seq
            if offset >= _REPLAY_WINDOW or (st.mask >> offset) & 1:
                raise _Dropped("replay")
            st.mask |= 1 << offset
        st.last_seen = now

    def _expire_peers(self) -> None:
        cutoff = time.monotonic() - self.peer_timeout
        live = frozenset(
            s for s in self._live if (st := self._senders.get(s)) and st.last_seen >= cutoff
        )
        if live != self._live:
            self._live = live
            self._notify_peers_changed()
