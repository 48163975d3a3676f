"""MQTT transport: envelope checks offline, then real Mosquitto brokers (marked ``mqtt``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.client import MQTTMessage

from consensus.crypto import KeyPair
from node.transport.mqtt import (
    MqttTransport,
    PairKeys,
    parse_broker_url,
    seal_batch,
    seal_payload,
    topic_root,
)
from tests.brokers import Mosquitto

pytestmark = pytest.mark.asyncio

KEYS = [KeyPair.from_secret(bytes([i]) * 32) for i in range(1, 5)]
IDS = [k.public_key.hex() for k in KEYS]
OUTSIDER = KeyPair.from_secret(b"\x77" * 32)
GENESIS = b"\xaa" * 32


def make(
    i: int, url: str = "mqtt://127.0.0.1:1", chain: str = "chain0", **kw: Any
) -> MqttTransport:
    opts: dict[str, Any] = {
        "key": KEYS[i],
        "genesis_hash": GENESIS,
        "broker_url": url,
        "chain_id": chain,
        "group_id": 1,
        "members": IDS,
        "heartbeat_interval": 0.2,
        "backoff_initial": 0.1,
        "backoff_max": 0.5,
    }
    opts.update(kw)
    return MqttTransport(**opts)


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


# -- offline: URL, topics and the envelope checks ---------------------------------


async def test_parse_broker_url() -> None:
    a = parse_broker_url("mqtt://127.0.0.1:1883")
    assert (a.host, a.port, a.tls, a.username) == ("127.0.0.1", 1883, False, None)
    b = parse_broker_url("mqtts://node%201:s3cret@broker.example")
    assert (b.host, b.port, b.tls, b.username, b.password) == (
        "broker.example",
        8883,
        True,
        "node 1",
        "s3cret",
    )
    for bad in ("http://h:1", "mqtt://", "mqtt://h:notaport", "h:1883"):
        with pytest.raises(ValueError):
            parse_broker_url(bad)
    with pytest.raises(ValueError):
        topic_root("ledgerlab", "chain/0", "1")
    with pytest.raises(ValueError):
        topic_root("ledgerlab", "chain0", "#")


def _seal(key: KeyPair, topic: str, frames: list[bytes], seq: int, **kw: Any) -> bytes:
    opts: dict[str, Any] = {
        "genesis_hash": GENESIS,
        "boot_ms": 1_000,
        "boot_nonce": b"\x01" * 8,
        "seq": seq,
        "receivers": IDS,  # every member: the receiver finds its own tag
    }
    opts.update(kw)
    return seal_batch(key, topic, frames, **opts)


async def test_envelope_accepts_authenticated_member_batches() -> None:
    t = make(0)
    topic = f"{t.root}/p2p/{IDS[0]}/{IDS[1]}"
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"a", b"b"], 1)) == 2
    assert t.recv_nowait_many() == [(IDS[1], b"a"), (IDS[1], b"b")]
    bcast = f"{t.root}/bcast/{IDS[2]}"
    assert t.deliver(bcast, _seal(KEYS[2], bcast, [], 1)) == 0  # heartbeat
    assert t.peers() == {IDS[1], IDS[2]}
    assert t.stats.frames_in == 2 and not t.stats.dropped


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("outsider", "unknown_sender"),
        ("wrong_key", "bad_signature"),  # reason names any failed authenticator check
        ("redirected", "bad_signature"),
        ("tampered", "bad_signature"),
        ("not_for_us", "bad_signature"),
        ("tag_for_another", "bad_signature"),
        ("tags_cut", "bad_signature"),
        ("count_too_big", "bad_signature"),
        ("our_label_twice", "bad_signature"),
        ("short", "malformed"),
        ("not_msgpack", "malformed"),
        ("foreign_topic", "foreign_topic"),
        ("blacklisted", "blacklisted"),
    ],
)
async def test_envelope_rejections_are_counted(case: str, reason: str) -> None:
    t = make(0, blacklist=[IDS[3]])
    inbox = f"{t.root}/p2p/{IDS[0]}/"
    topic, payload = inbox + IDS[1], b""
    if case == "outsider":
        topic = inbox + OUTSIDER.public_key.hex()
        payload = _seal(OUTSIDER, topic, [b"x"], 1)
    elif case == "wrong_key":  # claims to be node 1, tagged with node 2's keys
        payload = _seal(KEYS[2], topic, [b"x"], 1)
    elif case == "redirected":  # node 1's batch for node 2 replayed into node 0's inbox
        meant = f"{t.root}/p2p/{IDS[2]}/{IDS[1]}"
        payload = _seal(KEYS[1], meant, [b"x"], 1)
    elif case == "tampered":
        good = _seal(KEYS[1], topic, [b"pay 1"], 1)
        payload = good.replace(b"pay 1", b"pay 9")
    elif case == "not_for_us":  # node 1's batch tagged for node 2 only, in node 0's inbox
        payload = _seal(KEYS[1], topic, [b"x"], 1, receivers=[IDS[2]])
    elif case == "tag_for_another":  # node 2's tag relabelled as ours
        good = _seal(KEYS[1], topic, [b"x"], 1, receivers=[IDS[2]])
        at = len(good) - 2 - 24
        payload = good[:at] + KEYS[0].public_key[:8] + good[at + 8 :]
    elif case == "tags_cut":  # the last of the four tags cut off, the count left at 4
        payload = _seal(KEYS[1], topic, [b"x"], 1)[:-26] + b"\x00\x04"
    elif case == "our_label_twice":  # a wrong tag for us first, node 1's valid one after it
        good = _seal(KEYS[1], topic, [b"x"], 1, receivers=[IDS[0]])
        entry = good[-26:-2]
        fake = entry[:8] + bytes(16)
        payload = good[:-26] + fake + entry + b"\x00\x02"
    elif case == "count_too_big":
        payload = _seal(KEYS[1], topic, [b"x"], 1)[:-2] + b"\xff\xff"
    elif case == "short":
        payload = b"\x00" * 10
    elif case == "not_msgpack":
        payload = seal_payload(KEYS[1], topic, b"\xc1\xc1\xc1", IDS)  # authentic, not a body
    elif case == "foreign_topic":
        topic = "ledgerlab/otherchain/1/bcast/" + IDS[1]
        payload = _seal(KEYS[1], topic, [b"x"], 1)
    elif case == "blacklisted":
        topic = inbox + IDS[3]
        payload = _seal(KEYS[3], topic, [b"x"], 1)
    assert t.deliver(topic, payload) == 0
    assert t.stats.dropped == {reason: 1}
    assert t.recv_nowait_many() == [] and t.peers() == frozenset()


async def test_pair_keys_agree_per_direction_and_refuse_bad_ids() -> None:
    a, b = PairKeys(KEYS[0]), PairKeys(KEYS[1])
    a_out, a_in = a.get(IDS[1]) or (b"", b"")
    b_out, b_in = b.get(IDS[0]) or (b"", b"")
    assert a_out == b_in and a_in == b_out and a_out != a_in and len(a_out) == 32
    assert PairKeys(KEYS[2]).get(IDS[1]) not in (None, (a_out, a_in))  # another pair
    assert a.get("00" * 64) is None  # not a point on the curve
    assert a.get("ab" * 10) is None and a.get("zz" * 64) is None


async def test_a_sender_tags_each_receiver_once() -> None:
    t = make(0, blacklist=[IDS[3]])
    bcast = t._seal(t.bcast_topic, [b"v"])
    uni = t._seal(f"{t.root}/p2p/{IDS[2]}/{IDS[0]}", [b"u"])
    assert int.from_bytes(bcast[-2:], "big") == 2  # members 1 and 2, not the blacklisted 3
    assert int.from_bytes(uni[-2:], "big") == 1
    for i, payload, topic in ((1, bcast, t.bcast_topic), (2, bcast, t.bcast_topic)):
        assert make(i).deliver(topic, payload) == 1
    assert make(2).deliver(f"{t.root}/p2p/{IDS[2]}/{IDS[0]}", uni) == 1
    three = make(3)
    assert three.deliver(t.bcast_topic, bcast) == 0
    assert three.stats.dropped == {"bad_signature": 1}


async def test_a_removed_member_still_authenticates_our_broadcasts_but_not_our_sends() -> None:
    # Removed by block k, it may not have committed k yet: it needs our Commits and Status.
    t = make(0)
    t.set_members(IDS[:3])  # 3 leaves
    bcast = t._seal(t.bcast_topic, [b"v"])
    assert int.from_bytes(bcast[-2:], "big") == 3  # members 1, 2 and the former 3
    assert make(3).deliver(t.bcast_topic, bcast) == 1
    assert not t.send(IDS[3], b"x") and t.stats.dropped["not_member"] == 1
    t.set_members(IDS)  # back in: a member again, not a former one
    assert int.from_bytes(t._seal(t.bcast_topic, [])[-2:], "big") == 3
    t.set_members(IDS[:1])
    assert len(t._former) == 3
    t.set_members([IDS[0], IDS[3]], blacklist=[IDS[1]])  # the blacklist wins
    assert int.from_bytes(t._seal(t.bcast_topic, [])[-2:], "big") == 2  # 3, and the former 2


async def test_a_member_id_that_is_no_public_key_is_skipped_and_refused() -> None:
    bogus = "00" * 64
    t = make(0, members=[*IDS, bogus])
    assert int.from_bytes(t._seal(t.bcast_topic, [])[-2:], "big") == 3
    topic = f"{t.root}/p2p/{IDS[0]}/{bogus}"
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"x"], 1)) == 0
    assert t.stats.dropped == {"bad_signature": 1}


async def test_replays_and_old_boots_are_dropped() -> None:
    t = make(0, max_age=60)
    topic = f"{t.root}/bcast/{IDS[1]}"
    first = _seal(KEYS[1], topic, [b"1"], 5)
    assert t.deliver(topic, first) == 1
    assert t.deliver(topic, first) == 0  # exact replay
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"3"], 3)) == 1  # late but new
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"3"], 3)) == 0
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"9"], 9000)) == 1  # window slides
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"6"], 6)) == 0  # fell out of the window
    # the sender restarts: a newer boot is accepted, the old boot is then dead
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"new"], 1, boot_ms=2_000)) == 1
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"old"], 9001)) == 0
    assert t.stats.dropped["replay"] == 4
    # a first contact whose batch is older than max_age is a replay from the past
    old_ts = time.time_ns() // 1_000_000 - 120_000
    stale = _seal(KEYS[2], f"{t.root}/bcast/{IDS[2]}", [b"x"], 1, ts_ms=old_ts)
    assert t.deliver(f"{t.root}/bcast/{IDS[2]}", stale) == 0
    assert t.stats.dropped["stale"] == 1


async def test_a_boot_stamped_earlier_takes_over_once_the_current_one_is_silent() -> None:
    """A sender restarted after its clock was set back (booted 240 s ahead, then
    corrected) stamps its new boot earlier than the old one: dropped as an old boot
    while the old one still speaks, taken once it has been silent for peer_timeout."""
    t = make(0)
    topic = f"{t.root}/bcast/{IDS[1]}"
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"a"], 1, boot_ms=900_000)) == 1
    back = _seal(KEYS[1], topic, [b"b"], 1, boot_ms=660_000, boot_nonce=b"\x02" * 8)
    assert t.deliver(topic, back) == 0 and t.stats.dropped["replay"] == 1
    t._senders[IDS[1]].last_seen -= t.peer_timeout + 1  # the old boot went quiet
    again = _seal(KEYS[1], topic, [b"c"], 2, boot_ms=660_000, boot_nonce=b"\x02" * 8)
    assert t.deliver(topic, again) == 1
    assert t.deliver(topic, again) == 0  # the new boot's replay window holds
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"e"], 3, boot_ms=660_000,
                                  boot_nonce=b"\x02" * 8)) == 1  # fmt: skip


async def test_stale_batches_are_logged_once_per_sender(caplog: pytest.LogCaptureFixture) -> None:
    """A sender whose clock is more than max_age behind ours is cut off: say so, once."""
    t = make(0)
    topic = f"{t.root}/bcast/{IDS[2]}"
    old_ts = time.time_ns() // 1_000_000 - 400_000  # 400 s behind, max_age is 300 s here
    with caplog.at_level(logging.WARNING, logger="ledgerlab.transport.mqtt"):
        for seq in (1, 2, 3):
            assert t.deliver(topic, _seal(KEYS[2], topic, [b"x"], seq, ts_ms=old_ts)) == 0
    assert t.stats.dropped["stale"] == 3
    warned = [r for r in caplog.records if "max_age" in r.getMessage()]
    assert len(warned) == 1 and "Clock skew" in warned[0].getMessage()


async def test_other_genesis_is_dropped_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    t = make(0)
    topic = f"{t.root}/bcast/{IDS[1]}"
    other = b"\xbb" * 32
    for seq in (1, 2):
        assert t.deliver(topic, _seal(KEYS[1], topic, [b"x"], seq, genesis_hash=other)) == 0
    assert t.stats.dropped == {"genesis_mismatch": 2}
    lines = [r.getMessage() for r in caplog.records if "genesis mismatch" in r.getMessage()]
    assert len(lines) == 1 and GENESIS.hex() in lines[0] and other.hex() in lines[0]


async def test_membership_change_drops_removed_peer() -> None:
    t = make(0)
    topic = f"{t.root}/bcast/{IDS[1]}"
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"x"], 1)) == 1
    assert t.peers() == {IDS[1]}
    t.set_members([IDS[0], IDS[2]])
    assert t.peers() == frozenset()
    assert t.deliver(topic, _seal(KEYS[1], topic, [b"y"], 2)) == 0
    assert t.stats.dropped == {"unknown_sender": 1}
    assert not t.send(IDS[1], b"z")


async def test_own_broadcast_echo_is_ignored_silently() -> None:
    t = make(0)
    assert t.deliver(t.bcast_topic, _seal(KEYS[0], t.bcast_topic, [b"me"], 1)) == 0
    assert not t.stats.dropped and t.recv_nowait_many() == []


async def test_a_message_in_our_inbox_that_names_us_as_sender_is_counted() -> None:
    t = make(0)  # we never send to ourselves, so this is no echo: someone else put it there
    inbox = f"{t.root}/p2p/{IDS[0]}/{IDS[0]}"
    assert t.deliver(inbox, _seal(KEYS[0], inbox, [b"me"], 1)) == 0
    assert t.stats.dropped == {"unknown_sender": 1} and t.recv_nowait_many() == []


async def test_the_client_id_is_new_at_every_start() -> None:
    a, b = make(0), make(0)
    prefix = f"ll-chain0-1-{IDS[0][:32]}-"
    assert a.client_id.startswith(prefix) and b.client_id.startswith(prefix)
    assert a.client_id != b.client_id and len(a.client_id) == len(prefix) + 16
    assert make(0, client_id="mine").client_id == "mine"


async def test_batches_are_bounded_by_size() -> None:
    t = make(0, max_batch_bytes=1000)
    batches = t._split([b"x" * 300] * 10 + [b"y" * 5000])
    assert [len(b) for b in batches] == [3, 3, 3, 1, 1]
    assert all(sum(len(f) + 5 for f in b) <= 1000 for b in batches[:-1])


async def test_paho_hands_each_message_to_deliver_and_bad_ones_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = make(0)
    topic = f"{t.root}/p2p/{IDS[0]}/{IDS[1]}"
    good = MQTTMessage(topic=topic.encode())
    good.payload = _seal(KEYS[1], topic, [b"a"], 1)
    t._on_paho_message(None, None, good)
    assert t.recv_nowait_many() == [(IDS[1], b"a")]
    not_utf8 = MQTTMessage(topic=b"ledgerlab/\xff")
    t._on_paho_message(None, None, not_utf8)
    assert t.stats.dropped == {"malformed": 1}

    def our_bug(topic: str, payload: bytes) -> int:
        raise RuntimeError("bug")

    t.deliver = our_bug  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="ledgerlab.transport.mqtt"):
        t._on_paho_message(None, None, good)  # does not raise into paho's read loop
    assert t.stats.dropped == {"malformed": 1, "internal_error": 1}
    assert "checking an MQTT message failed" in caplog.text


async def test_send_rules_without_broker() -> None:
    t = make(0, max_frame_size=100)
    assert not t.send(OUTSIDER.public_key.hex(), b"x")
    assert not t.send(IDS[1], b"x" * 101)
    assert t.send(IDS[1], b"queued until connected")
    assert t.stats.dropped == {"not_member": 1, "frame_too_large": 1}


# -- real broker -------------------------------------------------------------------


def _chain() -> str:
    return "t" + uuid.uuid4().hex[:12]  # isolates each test on a shared broker


@pytest.mark.mqtt
async def test_frames_flow_through_the_broker(mqtt_broker: str) -> None:
    chain = _chain()
    a, b, c = (make(i, mqtt_broker, chain) for i in range(3))
    async with a, b, c:
        for t in (a, b, c):
            await t.wait_for_peers(set(IDS[:3]) - {t.node_id}, timeout=10)
        assert a.send(IDS[1], b"a->b")
        assert await asyncio.wait_for(b.recv(), 5) == (IDS[0], b"a->b")
        assert b.send(IDS[0], b"b->a")
        assert await asyncio.wait_for(a.recv(), 5) == (IDS[1], b"b->a")
        assert c.broadcast(b"from c") == 2
        assert await asyncio.wait_for(a.recv(), 5) == (IDS[2], b"from c")
        assert await asyncio.wait_for(b.recv(), 5) == (IDS[2], b"from c")
        frames = [i.to_bytes(4, "big") * (i % 50) for i in range(5000)]
        for f in frames:
            a.send(IDS[1], f)
        got = [await asyncio.wait_for(b.recv(), 5) for _ in frames]
        assert [d for _, d in got] == frames  # batched, yet complete and in order
        assert c.recv_nowait_many() == []  # unicast is not seen by others
        assert not a.stats.dropped and not b.stats.dropped


@pytest.mark.mqtt
async def test_forged_and_foreign_publishes_change_nothing(mqtt_broker: str) -> None:
    chain = _chain()
    a, b = make(0, mqtt_broker, chain), make(1, mqtt_broker, chain)
    addr = parse_broker_url(mqtt_broker)
    async with a, b, aiomqtt.Client(addr.host, addr.port) as intruder:
        await a.wait_for_peers([IDS[1]], timeout=10)
        await b.wait_for_peers([IDS[0]], timeout=10)
        inbox = f"{a.root}/p2p/{IDS[0]}/"
        outsider_topic = inbox + OUTSIDER.public_key.hex()
        await intruder.publish(
            outsider_topic, _seal(OUTSIDER, outsider_topic, [b"let me in"], 1), qos=1
        )
        await intruder.publish(  # impersonates node 1 without its key
            inbox + IDS[1], _seal(OUTSIDER, inbox + IDS[1], [b"vote"], 1), qos=1
        )
        await intruder.publish(inbox + IDS[1], b"random garbage" * 10, qos=1)
        await until(
            lambda: a.stats.dropped["unknown_sender"] == 1 and a.stats.dropped["bad_signature"] == 2
        )
        b.send(IDS[0], b"legit")
        assert await asyncio.wait_for(a.recv(), 5) == (IDS[1], b"legit")
        assert a.recv_nowait_many() == []
        assert a.peers() == {IDS[1]}


@pytest.mark.mqtt
async def test_a_client_with_a_guessable_client_id_cannot_take_a_nodes_session(
    mqtt_broker: str,
) -> None:
    """A broker hands a client id's session to its newest connection. With the id a node
    used to have (derived from its public node id alone), anyone could knock it off the
    broker again and again; two nodes of four, and the chain halted."""
    chain = _chain()
    a, b = make(0, mqtt_broker, chain), make(1, mqtt_broker, chain)
    addr = parse_broker_url(mqtt_broker)
    guessed = f"ll-{chain}-1-{IDS[0][:32]}"
    async with a, b:
        await a.wait_for_peers([IDS[1]], timeout=10)
        for _ in range(3):
            async with aiomqtt.Client(addr.host, addr.port, identifier=guessed):
                await asyncio.sleep(0.3)
        b.send(IDS[0], b"still here")
        assert await asyncio.wait_for(a.recv(), 5) == (IDS[1], b"still here")
        assert a.stats.connects == 1 and not a.stats.disconnects


@pytest.mark.mqtt
async def test_broker_restart_reconnects_and_resubscribes(
    private_broker: Mosquitto,
) -> None:
    url = private_broker.url
    ts = [make(i, url, keepalive=5) for i in range(3)]
    async with ts[0], ts[1], ts[2]:
        for t in ts:
            await t.wait_for_peers(set(IDS[:3]) - {t.node_id}, timeout=10)
        ts[0].broadcast(b"before")
        for t in ts[1:]:
            assert await asyncio.wait_for(t.recv(), 5) == (IDS[0], b"before")

        await asyncio.to_thread(private_broker.stop)
        await until(lambda: not any(t.connected for t in ts), timeout=10)
        assert all(t.peers() == frozenset() for t in ts)
        await asyncio.sleep(2)  # the broker stays down for a while
        await asyncio.to_thread(private_broker.start)

        for t in ts:
            await t.wait_for_peers(set(IDS[:3]) - {t.node_id}, timeout=15)
            assert t.stats.connects >= 2 and t.stats.disconnects["broker"] >= 1
        for t in ts:  # drop anything flushed from before the outage
            t.recv_nowait_many(10_000)
        ts[1].send(IDS[2], b"unicast after")
        assert await asyncio.wait_for(ts[2].recv(), 5) == (IDS[1], b"unicast after")
        ts[2].broadcast(b"broadcast after")
        assert await asyncio.wait_for(ts[0].recv(), 5) == (IDS[2], b"broadcast after")
        assert await asyncio.wait_for(ts[1].recv(), 5) == (IDS[2], b"broadcast after")
