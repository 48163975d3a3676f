"""MQTT batches (node/transport/mqtt.py ``deliver``): every message is delivered or
dropped and counted once, never an exception, and an honest member is never shut out.

The broker is not trusted, so a message can be anything: random bytes, a member's batch
with flipped bytes (its tag then fails), or -- the deep case -- a batch whose body
was mutated and then tagged again with a member's keys, as a Byzantine member would send
it, which gets past the tag check into the body and replay checks (boot, seq and
timestamp at 0, 2^63, 2^64 - 1, wrong types, frames that are not bytes...).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.codec import pack
from consensus.crypto import KeyPair
from node.transport.mqtt import ENVELOPE_VERSION, MqttTransport, seal_payload
from tests.fuzz.support import (
    BOUNDARY_INTS,
    fuzz,
    mp,
    mutated_bytes,
    mutated_tree,
    time_limit,
    unpack_tree,
    values,
)
from tests.transport.test_mqtt import GENESIS, IDS, KEYS, OUTSIDER, make

_loop = asyncio.new_event_loop()
ROOT = make(0).root
INBOX = f"{ROOT}/p2p/{IDS[0]}/"
BCAST = f"{ROOT}/bcast/"


def body(sender: KeyPair, seq: int, frames: list[bytes], *, boot_ms: int = 1_000) -> bytes:
    """A batch stamped now: the transport drops batches older than ``max_age``, and in a
    full test run this module is imported minutes before its tests run."""
    now_ms = time.time_ns() // 1_000_000
    return pack(
        [ENVELOPE_VERSION, sender.public_key, GENESIS, boot_ms, b"\x01" * 8, seq, now_ms, frames]
    )


def sign(key: KeyPair, topic: str, data: bytes) -> bytes:
    """``data`` as ``key``'s authenticated batch body, with a tag for every member."""
    return seal_payload(key, topic, data, IDS)


def sample_of(i: int) -> bytes:
    """Seed batch ``i``, stamped now (so the fuzzer's mutations reach past ``stale``)."""
    return [
        lambda: body(KEYS[1], 5, [b"a", b"frame"]),
        lambda: body(KEYS[1], 6, []),  # a heartbeat
        lambda: body(KEYS[1], 7, [b"x" * 300] * 3, boot_ms=2_000),
    ][i]()


topics = st.sampled_from(
    [
        INBOX + IDS[1],
        BCAST + IDS[1],
        INBOX + IDS[3],
        BCAST + IDS[0],
        INBOX + OUTSIDER.public_key.hex(),
        f"{ROOT}/p2p/{IDS[2]}/{IDS[1]}",
        "elsewhere/bcast/" + IDS[1],
        INBOX,
        BCAST + IDS[1] + "/x",
        INBOX + IDS[1].upper(),
        "",
    ]
)
signers = st.sampled_from([KEYS[1], KEYS[1], KEYS[3], OUTSIDER])


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, bytes]:
    topic = draw(topics)
    sample = sample_of(draw(st.integers(0, 2)))
    kind = draw(
        st.sampled_from(
            ["random", "flipped", "resigned", "resigned", "envelope", "envelope", "envelope"]
        )
    )
    if kind == "random":
        return topic, draw(st.binary(max_size=400))
    if kind == "flipped":
        return topic, draw(mutated_bytes(sign(KEYS[1], topic, sample)))
    if kind == "resigned":
        return topic, sign(draw(signers), topic, draw(mutated_tree(sample)))
    # one envelope field of a member's own batch, on its own topic, signed by it
    topic = draw(st.sampled_from([INBOX + IDS[1], BCAST + IDS[1]]))
    fields = unpack_tree(sample)
    fields[draw(st.integers(0, len(fields) - 1))] = draw(
        st.sampled_from(BOUNDARY_INTS) | st.sampled_from(BOUNDARY_INTS) | values
    )
    return topic, sign(KEYS[1], topic, mp(fields))


def run(t: MqttTransport, topic: str, payload: bytes) -> int:
    async def go() -> int:
        return t.deliver(topic, payload)

    return _loop.run_until_complete(go())


@pytest.mark.timeout(time_limit(120))
@fuzz(500)
@given(st.lists(messages(), min_size=1, max_size=4))
def test_every_message_is_delivered_or_counted_and_honest_members_get_through(
    msgs: list[tuple[str, bytes]],
) -> None:
    t = make(0, max_frame_size=4096)  # fresh: a node that hears these messages first
    honest = INBOX + IDS[2]
    run(t, honest, sign(KEYS[2], honest, body(KEYS[2], 1, [b"hi"])))
    for topic, payload in [(INBOX + IDS[1], sign(KEYS[1], INBOX + IDS[1], sample_of(0))), *msgs]:
        before = sum(t.stats.dropped.values())
        frames_before = t.stats.frames_in
        got = run(t, topic, payload)
        assert isinstance(got, int) and got >= 0
        dropped = sum(t.stats.dropped.values()) - before
        assert t.stats.frames_in - frames_before == got
        assert dropped <= 1, t.stats.dropped  # one MQTT message, at most one drop
        assert not (got and dropped)
    # an honest member (never used by the fuzzer) is still heard at once
    t.recv_nowait_many()
    assert run(t, honest, sign(KEYS[2], honest, body(KEYS[2], 2, [b"ok"]))) == 1
    assert t.recv_nowait_many() == [(IDS[2], b"ok")]


def test_a_sequence_jump_to_2_64_is_a_new_window_not_a_huge_mask() -> None:
    """Regression: a signed batch whose seq jumped by ~2^64 made ``_check_replay`` shift
    its window mask by the jump (MemoryError, which dropped the broker session); a jump
    of 2^34 would have allocated 2 GiB."""
    t = make(0)
    topic = INBOX + IDS[1]

    async def go() -> list[int]:
        out = [t.deliver(topic, sign(KEYS[1], topic, body(KEYS[1], 1, [b"a"])))]
        out.append(t.deliver(topic, sign(KEYS[1], topic, body(KEYS[1], 2**64 - 1, [b"b"]))))
        out.append(t.deliver(topic, sign(KEYS[1], topic, body(KEYS[1], 2**64 - 1, [b"c"]))))
        out.append(t.deliver(topic, sign(KEYS[1], topic, body(KEYS[1], 2**64 - 2, [b"d"]))))
        out.append(t.deliver(topic, sign(KEYS[1], topic, body(KEYS[1], 2**40, [b"e"]))))
        return out

    assert _loop.run_until_complete(go()) == [1, 1, 0, 1, 0]
    assert t.stats.dropped["replay"] == 2  # the exact replay, and 2^40: far behind the window
