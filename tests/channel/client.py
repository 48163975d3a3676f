"""A channel client written from docs/channel.md alone (ssl + struct + json, nothing of
the server's code), as a FISCO SDK would be: TLS 1.2, ECDHE secp256k1, a client
certificate, 42-byte headers ``!IH32si`` and JSON bodies."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADER = struct.Struct("!IH32si")
RPC, HEARTBEAT, HANDSHAKE, TOPICS, RECEIPT, BLOCK_NOTIFY = 0x12, 0x13, 0x14, 0x32, 0x1000, 0x1001


@dataclass
class Frame:
    type: int
    seq: bytes
    result: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def client_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # SDKs connect by IP
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ecdh_curve("secp256k1")
    ctx.load_verify_locations(cafile=str(ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


class ChannelClient:
    def __init__(self, address: str, ctx: ssl.SSLContext, *, timeout: float = 60.0) -> None:
        host, _, port = address.rpartition(":")
        raw = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock = ctx.wrap_socket(raw)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.unclaimed: list[Frame] = []  # read while waiting for another frame

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> ChannelClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sending ------------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, kind: int, body: Any = None, *, seq: bytes | None = None,
             raw_body: bytes | None = None) -> bytes:  # fmt: skip
        seq = uuid.uuid4().hex.encode() if seq is None else seq
        payload = raw_body if raw_body is not None else json.dumps(body).encode()
        self.send_raw(HEADER.pack(HEADER.size + len(payload), kind, seq, 0) + payload)
        return seq

    # -- receiving ----------------------------------------------------------------------

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the node closed the connection")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self) -> Frame:
        length, kind, seq, result = HEADER.unpack(self._read(HEADER.size))
        return Frame(kind, seq, result, self._read(length - HEADER.size))

    def wait_for(self, kind: int, seq: bytes | None = None, *, timeout: float = 60.0) -> Frame:
        """The first frame of ``kind`` (and ``seq``); others are kept in ``unclaimed``."""
        for i, frame in enumerate(self.unclaimed):
            if frame.type == kind and (seq is None or frame.seq == seq):
                return self.unclaimed.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.recv()
            if frame.type == kind and (seq is None or frame.seq == seq):
                return frame
            self.unclaimed.append(frame)
        raise TimeoutError(f"no frame of type 0x{kind:x} within {timeout} s")

    def closed_by_node(self) -> bool:
        """True once the node has closed the connection (EOF or reset)."""
        try:
            while True:
                self.recv()
        except (EOFError, ConnectionError, ssl.SSLError):
            return True

    # -- calls --------------------------------------------------------------------------

    def rpc(self, method: str, params: list[Any]) -> tuple[bytes, Any]:
        seq = self.send(RPC, {"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
        return seq, self.wait_for(RPC, seq).json()
