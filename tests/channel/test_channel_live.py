"""The channel against a running 4-process FISCO chain, through a client built from
docs/channel.md: handshake, heartbeat, RPC, receipts pushed on the request's seq (FISCO-
and native-format txs), block-number notifies, malformed frames, TLS refusals."""

from __future__ import annotations

import json
import random
import secrets
import socket
import ssl
import struct
import time
import uuid
from pathlib import Path

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.rpc.client import RpcClient
from node.transport import pki
from scripts.launcher.layout import Chain
from tests.channel.client import (
    BLOCK_NOTIFY,
    HANDSHAKE,
    HEADER,
    HEARTBEAT,
    RECEIPT,
    RPC,
    TOPICS,
    ChannelClient,
    client_context,
)
from tests.channel.conftest import connect, sdk_files
from tests.ledger.fisco_support import calldata, fisco_tx

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ALICE = bytes.fromhex("11" * 32)


def head(client: ChannelClient) -> int:
    _, reply = client.rpc("getBlockNumber", [1])
    return int(reply["result"], 16)


def test_handshake_heartbeat_and_rpc(fisco_chain: Chain) -> None:
    with connect(fisco_chain) as c:
        assert c.sock.version() == "TLSv1.2"
        seq = c.send(HANDSHAKE, {"minimumSupport": 1, "maximumSupport": 5, "clientType": "t"})
        hello = c.wait_for(HANDSHAKE, seq)
        assert hello.result == 0
        assert hello.json()["protocol"] == 3 and hello.json()["nodeVersion"]
        seq = c.send(HEARTBEAT, {"heartBeat": "0"})
        assert c.wait_for(HEARTBEAT, seq).json() == {"heartBeat": "1"}
        seq = c.send(HEARTBEAT, raw_body=b"")  # python-sdk's heartbeat: an empty body
        assert c.wait_for(HEARTBEAT, seq).json() == {"heartBeat": "1"}
        seq = c.send(HEARTBEAT, raw_body=b"0")
        assert c.wait_for(HEARTBEAT, seq).json() == 1
        seq, reply = c.rpc("getBlockNumber", [1])
        http = RpcClient.from_url(fisco_chain.nodes[0].rpc_url, group="1").block_number()
        assert abs(int(reply["result"], 16) - http) <= 1
        _, version = c.rpc("getClientVersion", [])  # what the java-sdk asks first
        assert version["result"]["Chain Id"] == "1"
        major, minor, _ = version["result"]["Supported Version"].split(".")
        assert int(major) == 2 and int(minor) >= 1  # else the java-sdk does no handshake
        assert version["result"]["Supported Version"] == hello.json()["nodeVersion"]


def test_receipts_pushed_on_the_request_seq(fisco_chain: Chain) -> None:
    """A FISCO-format userAdd and a native userAdd on one connection: each receipt comes
    on its own request's seq after its 0x12 reply; a block-number notify follows."""
    with connect(fisco_chain, 1) as c:
        c.send(HANDSHAKE, {"minimumSupport": 1, "maximumSupport": 3, "clientType": "t"})
        c.wait_for(HANDSHAKE)
        limit = head(c) + 500
        name = f"alice-{uuid.uuid4().hex[:8]}"
        raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)", name, 1000),
                       block_limit=limit, randomid=secrets.randbits(64))  # fmt: skip
        fisco_seq, reply = c.rpc("sendRawTransaction", [1, "0x" + raw.hex()])
        fisco_hash = reply["result"]
        native = Transaction.build(
            chain_id="1", group_id="1", to=0x5002, method="userAdd",
            args=(f"bob-{uuid.uuid4().hex[:8]}", 5), block_limit=limit,
        ).sign(KeyPair.generate())  # fmt: skip
        native_seq, reply = c.rpc("sendRawTransaction", [1, "0x" + native.encode().hex()])
        native_hash = reply["result"]
        assert fisco_seq != native_seq
        for seq, tx_hash in ((fisco_seq, fisco_hash), (native_seq, native_hash)):
            pushed = c.wait_for(RECEIPT, seq, timeout=120)
            receipt = pushed.json()
            assert pushed.result == 0
            assert receipt["transactionHash"] == tx_hash
            assert receipt["status"] == "0x0"
            assert receipt["output"] is not None
        frame = c.wait_for(BLOCK_NOTIFY, timeout=120)
        assert frame.seq == b"0" * 32  # after a handshake (protocol 3): a JSON body
        notify = frame.json()
        assert notify["groupID"] == 1 and notify["blockNumber"] >= 1
        # the same receipt over HTTP; and the FISCO user's balance by call over the channel
        http = RpcClient.from_url(fisco_chain.nodes[1].rpc_url, group="1")
        assert http.receipt(fisco_hash) is not None
        _, answer = c.rpc("call", [1, {"from": "0x" + "00" * 20, "to": "0x" + "00" * 18 + "5002",
                                       "data": "0x" + calldata("userBalance(string)", name).hex(),
                                       "value": "0x0"}])  # fmt: skip
        output = bytes.fromhex(answer["result"]["output"][2:])
        assert int.from_bytes(output[:32], "big") == 0  # code 0
        assert int.from_bytes(output[32:64], "big") == 1000


def test_block_notify_without_a_handshake_is_protocol_1_text(fisco_chain: Chain) -> None:
    """As python-sdk: a topic report, no handshake; the notify body is "group,number"."""
    with connect(fisco_chain, 2) as c:
        c.send(TOPICS, ["_block_notify_1"])
        limit = head(c) + 500
        name = f"erin-{uuid.uuid4().hex[:8]}"
        raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)", name, 7),
                       block_limit=limit, randomid=secrets.randbits(64))  # fmt: skip
        seq, reply = c.rpc("sendRawTransaction", [1, "0x" + raw.hex()])
        assert "result" in reply, reply
        receipt = c.wait_for(RECEIPT, seq, timeout=120).json()
        frame = c.wait_for(BLOCK_NOTIFY, timeout=120)
        group, number = frame.body.decode().split(",")
        assert frame.seq == b"0" * 32 and group == "1"
        assert int(number) >= int(receipt["blockNumber"], 16) - 1
        c.send(TOPICS, [])  # an empty report turns them off: the next block brings none
        raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)", name + "x", 7),
                       block_limit=limit, randomid=secrets.randbits(64))  # fmt: skip
        seq, _ = c.rpc("sendRawTransaction", [1, "0x" + raw.hex()])
        c.wait_for(RECEIPT, seq, timeout=120)
        c.unclaimed = [f for f in c.unclaimed if f.type != BLOCK_NOTIFY]
        seq = c.send(HEARTBEAT, {})  # a round trip after the commit: no notify before it
        c.wait_for(HEARTBEAT, seq)
        assert not [f for f in c.unclaimed if f.type == BLOCK_NOTIFY]


def test_a_rejected_tx_gets_no_push(fisco_chain: Chain) -> None:
    with connect(fisco_chain) as c:
        raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)", "x", 1), block_limit=0)
        seq, reply = c.rpc("sendRawTransaction", [1, "0x" + raw.hex()])
        assert reply["error"]["code"] == 10001  # BlockLimitCheckFail
        _, reply = c.rpc("getBlockNumber", [1])  # served on; nothing pushed on seq meanwhile
        assert all(f.seq != seq for f in c.unclaimed)


def error_of(c: ChannelClient, kind: int, seq: bytes) -> tuple[int, int]:
    frame = c.wait_for(kind, seq, timeout=30)
    body = frame.json()
    assert body["error"]["code"] == frame.result and body["error"]["message"]
    return frame.result, frame.type


@pytest.mark.parametrize(
    ("length", "code"),
    [(10, 201), (41, 201), (2 * 1024 * 1024 + 1, 202), (0xFFFFFFFF, 202)],
    ids=["length-10", "length-41", "over-2MiB", "4GiB"],
)
def test_bad_length_gets_an_error_frame_and_a_close(
    fisco_chain: Chain, length: int, code: int
) -> None:
    with connect(fisco_chain) as c:
        seq = uuid.uuid4().hex.encode()
        c.send_raw(HEADER.pack(length, RPC, seq, 0))
        assert error_of(c, RPC, seq) == (code, RPC)
        assert c.closed_by_node()
    with connect(fisco_chain) as c:
        assert head(c) >= 0


def test_frames_with_a_bad_body_type_or_seq_keep_the_connection(fisco_chain: Chain) -> None:
    with connect(fisco_chain) as c:
        seq = c.send(RPC, raw_body=b'{"jsonrpc": "2.0", "method": ')
        assert error_of(c, RPC, seq) == (204, RPC)
        seq = c.send(RPC, raw_body=b"\xff\xfe not utf-8")
        assert error_of(c, RPC, seq) == (204, RPC)
        seq = c.send(0x99, {"x": 1})
        assert error_of(c, 0x99, seq) == (205, 0x99)
        seq = c.send(RECEIPT, {})  # a push type, sent to the node
        assert error_of(c, RECEIPT, seq) == (205, RECEIPT)
        bad_seq = b"\x00" * 32
        c.send(HEARTBEAT, {"heartBeat": "0"}, seq=bad_seq)
        assert error_of(c, HEARTBEAT, bad_seq) == (203, HEARTBEAT)
        seq = c.send(HANDSHAKE, {"minimumSupport": 7, "maximumSupport": 9, "clientType": "t"})
        assert error_of(c, HANDSHAKE, seq) == (204, HANDSHAKE)
        seq = c.send(HANDSHAKE, ["not", "an", "object"])
        assert error_of(c, HANDSHAKE, seq) == (204, HANDSHAKE)
        seq, reply = c.rpc("noSuchMethod", [1])  # a JSON-RPC error: result 0, as over HTTP
        assert reply["error"]["code"] == -32601
        assert head(c) >= 0  # the same connection still serves


def test_a_short_header_then_eof_closes_only_that_connection(fisco_chain: Chain) -> None:
    with connect(fisco_chain) as c:
        c.send_raw(struct.pack("!IH", 100, RPC) + b"abc")  # 9 of 42 header bytes
        c.sock.shutdown(socket.SHUT_WR)  # the TLS close_notify: the node sees EOF
        assert c.closed_by_node()
    with connect(fisco_chain) as c:
        assert head(c) >= 0


def test_pipelined_frames_are_answered_in_order(fisco_chain: Chain) -> None:
    with connect(fisco_chain) as c:
        seqs = []
        blob = b""
        for i in range(50):
            seq = uuid.uuid4().hex.encode()
            body = json.dumps({"jsonrpc": "2.0", "method": "getBlockNumber", "params": [1],
                               "id": i}).encode()  # fmt: skip
            blob += HEADER.pack(HEADER.size + len(body), RPC, seq, 0) + body
            seqs.append(seq)
        c.send_raw(blob)
        got = [c.wait_for(RPC) for _ in seqs]
        assert [f.seq for f in got] == seqs
        assert [f.json()["id"] for f in got] == list(range(50))


def foreign_sdk(tmp_path: Path) -> tuple[Path, Path]:
    pki.generate_chain_ca(tmp_path / "ca", chain_name="other")
    pki.generate_agency(tmp_path / "ca", tmp_path / "agency", name="agency-x")
    cert = pki.generate_secp256k1_cert(
        tmp_path / "agency", tmp_path / "sdk", stem="sdk", name="sdk", unit="sdk"
    )
    return cert, tmp_path / "sdk" / "sdk.key"


def handshake_fails(chain: Chain, ctx: ssl.SSLContext) -> bool:
    node = chain.nodes[0]
    assert node.channel is not None
    try:
        with ChannelClient(node.channel, ctx, timeout=30) as c:
            c.send(HEARTBEAT, {"heartBeat": "0"})
            c.recv()  # TLS 1.2: the server's refusal of the client cert may land here
    except (ssl.SSLError, ConnectionError, EOFError):
        return True
    return False


def test_tls_refuses_a_client_of_another_ca_or_without_a_certificate(
    fisco_chain: Chain, tmp_path: Path
) -> None:
    ca, _, _ = sdk_files(fisco_chain)
    cert, key = foreign_sdk(tmp_path)
    assert handshake_fails(fisco_chain, client_context(ca, cert, key))
    assert handshake_fails(fisco_chain, client_context(ca, None, None))
    tls13 = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls13.check_hostname = False
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    tls13.load_verify_locations(cafile=str(ca))
    tls13.load_cert_chain(str(sdk_files(fisco_chain)[1]), str(sdk_files(fisco_chain)[2]))
    assert handshake_fails(fisco_chain, tls13)
    with connect(fisco_chain) as c:  # and the chain's own SDK certificate still gets in
        assert head(c) >= 0


def test_random_frames_change_nothing_and_cost_no_internal_error(fisco_chain: Chain) -> None:
    """300 seeded random frames (any type, lengths around the limits, bodies of random
    bytes or JSON) over reconnecting connections: the node answers or closes, serves on,
    and its supervisor counts no bug of ours."""
    rng = random.Random(15)
    kinds = [RPC, HEARTBEAT, HANDSHAKE, TOPICS, RECEIPT, BLOCK_NOTIFY, 0, 0xFFFF, 0x30]
    bodies = [b"", b"{}", b"[]", b"null", b'"0"', b"\xff" * 7, b'{"jsonrpc":"2.0"}',
              b'[{"method":"getBlockNumber","params":[1],"id":1}]', b"{" * 5000]  # fmt: skip
    c = connect(fisco_chain, 3)
    sent = 0
    try:
        while sent < 300:
            body = rng.choice(bodies) if rng.random() < 0.7 else rng.randbytes(rng.randrange(64))
            length = HEADER.size + len(body)
            if rng.random() < 0.05:
                length = rng.choice([0, 1, 41, 2**21 + 1, 2**32 - 1])
            seq = rng.randbytes(32) if rng.random() < 0.1 else uuid.uuid4().hex.encode()
            try:
                c.send_raw(HEADER.pack(length, rng.choice(kinds), seq, 0) + body)
                sent += 1
                if length != HEADER.size + len(body):  # the node closes: start afresh
                    assert c.closed_by_node()
                    c.close()
                    c = connect(fisco_chain, 3)
            except (ConnectionError, ssl.SSLError):
                c.close()
                c = connect(fisco_chain, 3)
        assert head(c) >= 0
    finally:
        c.close()
    status = RpcClient.from_url(fisco_chain.nodes[3].rpc_url, group="1").consensus_status()
    assert status["internalErrors"] == 0


def test_a_nonce_race_across_nodes_pushes_the_loser_a_failed_receipt(fisco_chain: Chain) -> None:
    """Two txs with one randomid, sent at once through the channels of two nodes: both
    are accepted (each node had its own first), one commits, and the other's client gets
    a failed push (status 0xf NonceCheckFail) instead of waiting 900 s for nothing."""
    with connect(fisco_chain, 0) as a, connect(fisco_chain, 1) as b:
        for _ in range(10):
            randomid, limit = secrets.randbits(64), head(a) + 500
            frames = []
            for client, amount in ((a, 1), (b, 2)):
                raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)",
                                                    f"race-{randomid}", amount),
                               block_limit=limit, randomid=randomid)  # fmt: skip
                request = {"jsonrpc": "2.0", "method": "sendRawTransaction",
                           "params": [1, "0x" + raw.hex()], "id": 1}  # fmt: skip
                frames.append((client, client.send(RPC, request)))
            replies = [c.wait_for(RPC, seq).json() for c, seq in frames]
            if all("result" in r for r in replies):
                break  # both accepted: the race this test is about
            for (c, seq), reply in zip(frames, replies, strict=True):
                if "result" in reply:  # the one accepted commits: take its push
                    c.wait_for(RECEIPT, seq, timeout=120)
        else:
            pytest.fail("no attempt had both nodes accept their tx")
        statuses = sorted(c.wait_for(RECEIPT, seq, timeout=120).json()["status"]
                          for c, seq in frames)  # fmt: skip
        assert statuses == ["0x0", "0xf"]


def test_an_already_known_tx_still_gets_its_receipt(fisco_chain: Chain) -> None:
    """A tx sent through node 1, then through node 0 which has it by gossip: node 0
    answers 10004 AlreadyKnown, and still pushes the receipt when it commits."""
    with connect(fisco_chain, 0) as a, connect(fisco_chain, 1) as b:
        for attempt in range(12):
            raw = fisco_tx(ALICE, data=calldata("userAdd(string,uint256)",
                                                f"known-{uuid.uuid4().hex[:8]}", 3),
                           block_limit=head(a) + 500, randomid=secrets.randbits(64))  # fmt: skip
            params = [1, "0x" + raw.hex()]
            first, reply = b.rpc("sendRawTransaction", params)
            tx_hash = reply["result"]
            time.sleep(0.02 * (attempt % 4 + 1))  # gossip is batched (gossip_max_delay_ms)
            second, again = a.rpc("sendRawTransaction", params)
            known = again.get("error", {}).get("code") == 10004
            watchers = [(b, first)] + ([(a, second)] if known or "result" in again else [])
            for c, seq in watchers:  # (an AlreadyInChain answer is not watched)
                assert c.wait_for(RECEIPT, seq, timeout=120).json()["transactionHash"] == tx_hash
            if known:
                break
        else:
            pytest.fail(f"node 0 never had the tx by gossip before the client sent it: {again}")
