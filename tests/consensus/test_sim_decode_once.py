"""The simulator decodes each delivered frame once for all its recipients: the run must be
the one each replica decoding its own copy gives (same trace byte for byte, same counters,
same chain), also with garbage frames, drops, duplicates, crashes and a Byzantine node."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pytest

from consensus.events import MessageReceived
from consensus.messages import MESSAGE_TYPES
from consensus.sim import run_scenario
from consensus.sim.engine import Simulation, _decoded
from consensus.sim.summary import chain_hash
from consensus.sim.trace import JsonlTrace
from tests.consensus.test_sim_determinism import busy_scenario

Run = tuple[str, str, list[dict[str, Any]]]


def run(seed: int, monkeypatch: pytest.MonkeyPatch, how: str) -> Run:
    with monkeypatch.context() as m:
        if how == "fresh":  # every recipient decodes its own copy (no shared objects)
            m.setattr(
                Simulation,
                "_decode_once",
                lambda self, data: _decoded(data) if type(data) is bytes else None,
            )
        elif how == "bytes":  # every replica gets bytes and decodes them itself

            step = Simulation._step

            def with_bytes(self: Simulation, node: Any, event: Any) -> None:
                if isinstance(event, MessageReceived) and isinstance(event.message, MESSAGE_TYPES):
                    event = dataclasses.replace(event, message=event.message.encode())
                step(self, node, event)

            m.setattr(Simulation, "_step", with_bytes)
        buf = io.StringIO()
        sim = run_scenario(busy_scenario(seed), trace=JsonlTrace(buf))
    counters = [n.replica.counters.snapshot() for n in sim.nodes if n.replica is not None]
    return buf.getvalue(), chain_hash(sim), counters


@pytest.mark.parametrize("seed", [11, 13])
def test_decoding_once_changes_nothing(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = run(seed, monkeypatch, "cached")
    assert len(cached[0]) > 10_000
    assert run(seed, monkeypatch, "fresh") == cached
    assert run(seed, monkeypatch, "bytes") == cached


def test_garbage_is_still_refused_by_the_replica() -> None:
    sim = Simulation(busy_scenario())
    assert sim._decode_once(b"\xc1 not msgpack") is None
    assert sim._decode_once(bytearray(b"\x93")) is None  # type: ignore[arg-type]
