"""The channel server's limits, in process with small timeouts (the live tests use the
defaults): a slowloris and an idle client are cut off, the connection limit (TLS
handshakes included) closes the oldest pre-TLS socket, then the idlest, or refuses the
newcomer, a flood of pre-TLS sockets cannot lock an SDK out, receipt watches are
bounded (206) and unique per seq (203), a client that reads nothing is aborted, and a
commit pushes the receipt on its seq."""

from __future__ import annotations

import asyncio
import json
import ssl
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from consensus.crypto import KeyPair
from node.rpc import Dispatcher
from node.rpc.channel import ChannelServer, server_context
from node.transport import pki
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

HEADER = struct.Struct("!IH32si")
pytestmark = pytest.mark.timeout(120)


@dataclass
class Certs:
    ca: Path
    channel: tuple[Path, Path]
    sdk: tuple[Path, Path]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root = tmp_path_factory.mktemp("channel-pki")
    pki.generate_chain_ca(root / "ca", chain_name="c")
    pki.generate_agency(root / "ca", root / "agency", name="a")
    node = pki.generate_secp256k1_cert(root / "agency", root / "n", stem="channel", name="n",
                                       unit="channel")  # fmt: skip
    sdk = pki.generate_secp256k1_cert(root / "agency", root / "s", stem="sdk", name="s",
                                      unit="sdk")  # fmt: skip
    return Certs(root / "ca" / "ca.crt", (node, root / "n" / "channel.key"),
                 (sdk, root / "s" / "sdk.key"))  # fmt: skip


Start = Callable[..., Awaitable[ChannelServer]]


@pytest_asyncio.fixture
async def start(certs: Certs) -> AsyncIterator[tuple[Start, Ledger]]:
    ledger = Ledger()
    servers: list[ChannelServer] = []

    async def go(**limits: Any) -> ChannelServer:
        ctx = server_context(certs.ca, *certs.channel)
        dispatcher = Dispatcher({GROUP: LedgerBackend(ledger)})
        server = ChannelServer(dispatcher, group=GROUP, ssl_context=ctx, port=0, **limits)
        await server.start()
        servers.append(server)
        return server

    try:
        yield go, ledger
    finally:
        for server in servers:
            await server.close()


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send(self, kind: int, body: Any, seq: bytes | None = None) -> bytes:
        seq = seq or uuid.uuid4().hex.encode()
        data = json.dumps(body).encode()
        self.writer.write(HEADER.pack(HEADER.size + len(data), kind, seq, 0) + data)
        return seq

    async def recv(self, timeout: float = 10) -> tuple[int, bytes, int, Any]:
        async with asyncio.timeout(timeout):
            length, kind, seq, result = HEADER.unpack(await self.reader.readexactly(42))
            body = await self.reader.readexactly(length - 42)
        return kind, seq, result, json.loads(body) if body else None

    async def closed(self, timeout: float = 10) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except (ConnectionError, ssl.SSLError):
            pass
        return True

    def close(self) -> None:
        self.writer.transport.abort()


async def dial(server: ChannelServer, certs: Certs) -> Conn:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ecdh_curve("secp256k1")
    ctx.load_verify_locations(cafile=str(certs.ca))
    ctx.load_cert_chain(*map(str, certs.sdk))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx)
    return Conn(reader, writer)


def rpc(method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}


@pytest.mark.asyncio
async def test_slowloris_and_idle_clients_are_cut_off(start: Any, certs: Certs) -> None:
    go, _ = start
    server = await go(read_timeout=0.5, idle_timeout=1.0)
    slow = await dial(server, certs)
    slow.writer.write(b"\x00\x00\x00")  # 3 of 42 header bytes, then nothing
    idle = await dial(server, certs)
    assert await slow.closed() and await idle.closed()
    assert server.stats["timeout"] == 2
    fresh = await dial(server, certs)
    fresh.send(0x12, rpc("getBlockNumber", [GROUP]))
    assert (await fresh.recv())[3]["result"] == "0x0"
    fresh.close()


@pytest.mark.asyncio
async def test_connection_limit_refuses_or_evicts_the_idlest(start: Any, certs: Certs) -> None:
    go, _ = start
    server = await go(max_connections=2, read_timeout=0.4)
    first, second = await dial(server, certs), await dial(server, certs)
    for c in (first, second):
        c.send(0x13, {"heartBeat": "0"})
        assert (await c.recv())[0] == 0x13
    with pytest.raises((ssl.SSLError, ConnectionError)):  # both were active just now:
        await dial(server, certs)  # closed before the TLS handshake
    assert server.stats["refused"] == 1
    await asyncio.sleep(0.6)  # both idle for longer than read_timeout now
    second.send(0x13, {"heartBeat": "0"})
    await second.recv()
    fourth = await dial(server, certs)  # makes room by closing the idlest: first
    assert await first.closed()
    fourth.send(0x13, {})
    assert (await fourth.recv())[3] == {"heartBeat": "1"}
    assert server.stats["evicted"] == 1 and server.open_connections == 2
    second.close()
    fourth.close()


@pytest.mark.asyncio
async def test_sockets_that_never_do_tls_count_and_are_cut_off(start: Any, certs: Certs) -> None:
    go, _ = start
    server = await go(max_connections=3, handshake_timeout=0.5)
    raw = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
    await asyncio.sleep(0.1)
    c = await dial(server, certs)  # the limit is full of handshakes: the oldest goes
    c.send(0x13, {})
    assert (await c.recv())[3] == {"heartBeat": "1"}
    for reader, _ in raw:  # evicted, or closed when its handshake time is up
        async with asyncio.timeout(10):
            assert await reader.read() == b""
    assert server.stats["handshake_evicted"] == 1 and server.stats["tls_failed"] == 2
    assert server.stats["refused"] == 0
    c.close()
    for _, writer in raw:
        writer.close()


@pytest.mark.asyncio
async def test_a_pre_tls_flood_cannot_lock_an_sdk_out(start: Any, certs: Certs) -> None:
    """Sockets that never start TLS, reopened as soon as they are closed, more than both
    caps: an SDK still connects and is answered, and the flood never holds more than
    ``max_handshakes`` slots."""
    go, _ = start
    server = await go(max_connections=8, max_handshakes=4, handshake_timeout=30.0)
    flood: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    stop = asyncio.Event()

    async def keep_flooding() -> None:
        while not stop.is_set():
            for i, (reader, writer) in enumerate(flood):
                if reader.at_eof():
                    writer.close()
                    flood[i] = await asyncio.open_connection("127.0.0.1", server.port)
            await asyncio.sleep(0.01)

    for _ in range(20):
        flood.append(await asyncio.open_connection("127.0.0.1", server.port))
    flooder = asyncio.create_task(keep_flooding())
    try:
        await asyncio.sleep(0.3)
        clients = []
        for _ in range(3):
            c = await dial(server, certs)
            c.send(0x12, rpc("getBlockNumber", [GROUP]))
            assert (await c.recv())[3]["result"] == "0x0"
            clients.append(c)
        assert server.stats["handshake_evicted"] >= 16 and server.stats["refused"] == 0
        assert len(server._handshaking) <= 4
    finally:
        stop.set()
        await flooder
        for _, writer in flood:
            writer.close()
    for c in clients:
        c.close()


@pytest.mark.asyncio
async def test_a_silent_socket_is_evicted_before_one_in_its_handshake(
    start: Any, certs: Certs
) -> None:
    go, _ = start
    server = await go(max_handshakes=2, handshake_timeout=30.0)
    talker = await asyncio.open_connection("127.0.0.1", server.port)
    talker[1].write(b"\x16\x03\x01\x00")  # the start of a TLS record: a ClientHello
    await asyncio.sleep(0.3)
    silent = await asyncio.open_connection("127.0.0.1", server.port)
    await asyncio.sleep(0.1)
    third = await asyncio.open_connection("127.0.0.1", server.port)  # cap full: one goes
    async with asyncio.timeout(10):
        assert await silent[0].read() == b""  # the silent one, though younger
    await asyncio.sleep(0.3)
    assert not talker[0].at_eof() and server.stats["handshake_evicted"] == 1
    for _, writer in (talker, silent, third):
        writer.close()


@pytest.mark.asyncio
async def test_receipt_pushed_at_commit_and_watches_bounded(start: Any, certs: Certs) -> None:
    go, ledger = start
    server = await go(max_pending=1)
    c = await dial(server, certs)
    key = KeyPair.from_secret(b"\x22" * 32)
    tx1 = ledger.tx(key, "userAdd", ["carol", 10]).encode()
    seq = c.send(0x12, rpc("sendRawTransaction", [GROUP, "0x" + tx1.hex()]))
    kind, got, result, reply = await c.recv()
    assert (kind, got, result) == (0x12, seq, 0)
    tx_hash = reply["result"]
    tx2 = ledger.tx(key, "userAdd", ["dave", 10]).encode()
    seq2 = c.send(0x12, rpc("sendRawTransaction", [GROUP, "0x" + tx2.hex()]))
    assert (await c.recv())[:3] == (0x12, seq2, 206)  # not run: the pool holds one tx
    c.send(0x12, rpc("sendRawTransaction", [GROUP, "0x" + tx2.hex()]), seq=seq)
    assert (await c.recv())[:3] == (0x12, seq, 203)  # this seq already waits
    assert len(ledger.pool) == 1
    block = ledger.commit()
    server.on_commit(block.number, block.tx_hashes())
    kind, got, result, receipt = await c.recv()
    assert (kind, got, result) == (0x1000, seq, 0)
    assert receipt["transactionHash"] == tx_hash and receipt["blockNumber"] == "0x1"
    c.close()


@pytest.mark.asyncio
async def test_a_watched_tx_that_loses_its_nonce_gets_a_failed_push(start: Any, certs: Certs) -> None:  # noqa: E501
    """A tx the pool drops at a commit (another tx took its nonce, or its block limit
    passed) is pushed as a receipt with FISCO's status (0xf, 0x10), and not watched on."""
    go, ledger = start
    server = await go()
    c = await dial(server, certs)
    key = KeyPair.from_secret(b"\x23" * 32)
    seqs, hashes = [], []
    for name in ("erin", "fred"):
        raw = ledger.tx(key, "userAdd", [name, 10]).encode()
        seqs.append(c.send(0x12, rpc("sendRawTransaction", [GROUP, "0x" + raw.hex()])))
        hashes.append(bytes.fromhex((await c.recv())[3]["result"][2:]))
    assert len(server._watch) == 2
    dropped = [(hashes[0], "NonceCheckFail"), (hashes[1], "BlockLimitCheckFail")]
    server.on_commit(1, [], dropped)
    for seq, tx_hash, status in zip(seqs, hashes, ("0xf", "0x10"), strict=True):
        kind, got, result, body = await c.recv()
        assert (kind, got, result) == (0x1000, seq, 0)
        assert body["transactionHash"] == "0x" + tx_hash.hex() and body["status"] == status
    assert not server._watch and server.stats["receipts_failed"] == 2
    c.close()


@pytest.mark.asyncio
async def test_an_already_known_tx_is_watched_for_both_clients(start: Any, certs: Certs) -> None:
    """Two clients send one tx: the second is answered 10004 AlreadyKnown, and both get
    the receipt when it commits."""
    go, ledger = start
    server = await go()
    first, second = await dial(server, certs), await dial(server, certs)
    raw = ledger.tx(KeyPair.from_secret(b"\x24" * 32), "userAdd", ["gina", 10]).encode()
    request = rpc("sendRawTransaction", [GROUP, "0x" + raw.hex()])
    seq1 = first.send(0x12, request)
    tx_hash = (await first.recv())[3]["result"]
    seq2 = second.send(0x12, request)
    assert (await second.recv())[3]["error"]["code"] == 10004
    block = ledger.commit()
    server.on_commit(block.number, block.tx_hashes())
    for c, seq in ((first, seq1), (second, seq2)):
        kind, got, _, receipt = await c.recv()
        assert (kind, got, receipt["transactionHash"]) == (0x1000, seq, tx_hash)
        assert receipt["status"] == "0x0"
    assert not server._watch
    first.close()
    second.close()


@pytest.mark.asyncio
async def test_a_client_that_reads_nothing_is_aborted(start: Any, certs: Certs) -> None:
    go, _ = start
    server = await go(max_write_buffer=64 * 1024)
    c = await dial(server, certs)
    c.send(0x14, {"minimumSupport": 1, "maximumSupport": 3, "clientType": "t"})
    await c.recv()  # now it gets block-number notifies; it reads no more
    c.writer.transport.pause_reading()
    number = 0
    async with asyncio.timeout(90):
        while not server.stats["slow_reader"]:  # ~80-byte notifies until the 64 KiB and
            for _ in range(5000):  # the kernel's socket buffers are full
                number += 1
                server.on_commit(number, ())
            await asyncio.sleep(0.02)
    assert server.stats["slow_reader"] == 1
    assert server.open_connections == 0
    c.close()


@pytest.mark.asyncio
async def test_a_reply_never_drained_is_a_write_timeout(start: Any, certs: Certs) -> None:
    """A client that sends requests but reads nothing: once its reply cannot leave for
    ``write_timeout`` it is cut off, counted as write_timeout (not the reader's timeout)."""
    go, _ = start
    server = await go(write_timeout=0.5)
    c = await dial(server, certs)
    c.writer.transport.pause_reading()
    batch = [rpc("getBlockByNumber", [GROUP, "0x0", True])] * 5000  # ~2 MB of replies
    async with asyncio.timeout(90):
        while not server.stats["write_timeout"]:
            c.send(0x12, batch)
            await asyncio.sleep(0.2)
    assert server.stats["timeout"] == 0 and server.stats["slow_reader"] == 0
    families = {m.name: m for m in server.metrics()}
    samples = families["ledgerlab_channel_errors_total"].samples
    assert {labels["reason"]: v for labels, v in samples}["write_timeout"] == 1
    c.close()


@pytest.mark.asyncio
async def test_heartbeat_and_handshake_bodies(start: Any, certs: Certs) -> None:
    """The documented heartbeat bodies are answered, any other is BadBody (204); a
    handshake's clientType may be left out, but is a short string when given."""
    go, _ = start
    server = await go()
    c = await dial(server, certs)
    for body, reply in (({"heartBeat": "0"}, {"heartBeat": "1"}), ({}, {"heartBeat": "1"}),
                        (0, 1), ("0", 1)):  # fmt: skip
        seq = c.send(0x13, body)
        assert (await c.recv())[1:] == (seq, 0, reply)
    for body in ("zzz", 7, [0], None, False):
        seq = c.send(0x13, body)
        assert (await c.recv())[1:3] == (seq, 204)
    for hello, result in (({"minimumSupport": 1, "maximumSupport": 3}, 0),
                          ({"minimumSupport": 1, "maximumSupport": 3, "clientType": 5}, 204),
                          ({"minimumSupport": 1, "maximumSupport": 3,
                            "clientType": "x" * 257}, 204),
                          ({"minimumSupport": 1, "maximumSupport": 3,
                            "clientType": "\ud800"}, 204)):  # fmt: skip
        seq = c.send(0x14, hello)
        assert (await c.recv())[1:3] == (seq, result)
    seq = c.send(0x32, ["\ud800"])  # a lone surrogate has no UTF-8 form: BadBody, kept
    assert (await c.recv())[1:3] == (seq, 204)
    seq = c.send(0x13, {})
    assert (await c.recv())[1:] == (seq, 0, {"heartBeat": "1"})
    c.close()


@pytest.mark.asyncio
async def test_metrics_count_connections_frames_and_errors(start: Any, certs: Certs) -> None:
    go, _ = start
    server = await go()
    c = await dial(server, certs)
    seq = c.send(0x99, {})
    assert (await c.recv())[:3] == (0x99, seq, 205)
    families = {m.name: m for m in server.metrics()}
    assert families["ledgerlab_channel_connections_open"].samples[0][1] == 1
    frames = families["ledgerlab_channel_frames_total"].samples
    assert {labels["direction"]: v for labels, v in frames} == {"in": 1, "out": 1}
    samples = families["ledgerlab_channel_errors_total"].samples
    errors = {labels["reason"]: v for labels, v in samples}
    assert errors["unknown_type"] == 1 and errors["bad_body"] == 0
    c.close()


@pytest.mark.asyncio
async def test_a_frame_near_the_limit_is_read_whole(start: Any, certs: Certs) -> None:
    """A body far above the stream buffer (64 KiB) but within 2 MiB is answered; one byte
    over the limit is FrameTooLarge (202), with the body still being sent."""
    go, _ = start
    server = await go()
    c = await dial(server, certs)
    big = "x" * (2 * 1024 * 1024 - 200)
    seq = c.send(0x12, rpc("getBlockByHash", [GROUP, big]))
    kind, got, result, reply = await c.recv()
    assert (kind, got, result) == (0x12, seq, 0) and reply["error"]["code"] == -32602
    payload = b"y" * (2 * 1024 * 1024 - 41)  # the frame is 2 MiB + 1 byte
    c.writer.write(HEADER.pack(42 + len(payload), 0x12, b"s" * 32, 0) + payload)
    kind, got, result, reply = await c.recv()
    assert (kind, got, result) == (0x12, b"s" * 32, 202)
    assert await c.closed()
