"""The dispatcher's fast path for plain sendRawTransaction requests answers exactly as the
general path does: same bytes out, same stats, same transactions reach the backend, for
well-formed and malformed submissions mixed with reads, notifications and tight budgets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.crypto import KeyPair
from node.rpc import Dispatcher
from node.rpc.jsonrpc import SUBMIT_CHUNK
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

ALICE = KeyPair.from_secret(b"\x11" * 32)
_raws = Ledger()
RAWS = [_raws.tx(ALICE, "userAdd", [f"user{i}", 5]).encode() for i in range(6)]
HEX = "0x" + RAWS[0].hex()


def send(*params: Any, id: Any = 1, jsonrpc: Any = "2.0", drop: str = "") -> dict[str, Any]:
    item: dict[str, Any] = {
        "jsonrpc": jsonrpc,
        "id": id,
        "method": "sendRawTransaction",
        "params": list(params),
    }
    if drop:
        del item[drop]
    return item


ITEMS: list[Any] = [
    *[send(GROUP, "0x" + raw.hex(), id=i) for i, raw in enumerate(RAWS)],
    send(GROUP, HEX, id=7),  # AlreadyKnown (or new, first time)
    send(GROUP, HEX, id="seven"),
    send(GROUP, HEX, id=None),
    send(GROUP, HEX, id=7.5),
    send(GROUP, HEX, id=True),
    send(GROUP, HEX, id=[1]),
    send(GROUP, HEX, drop="id"),  # a notification
    send(GROUP, HEX, drop="jsonrpc"),
    send(GROUP, HEX, jsonrpc="1.0"),
    send(GROUP, HEX, drop="params"),
    send(GROUP, HEX, {"force": True}),
    send(GROUP, HEX, {"force": False}),
    send(GROUP, HEX, {"other": 1}),
    send(GROUP, HEX, {}, 3),
    send(GROUP),
    send(),
    send(0, HEX),
    send("group9", HEX),
    send(GROUP, HEX.upper()),
    send(GROUP, "0X" + HEX[2:]),
    send(GROUP, HEX[:-1]),  # odd length
    send(GROUP, HEX[:10] + " " + HEX[11:]),  # whitespace (bytes.fromhex would skip it)
    send(GROUP, HEX[:10] + "zz" + HEX[12:]),
    send(GROUP, HEX[:10] + "\u00e9" + HEX[11:]),
    send(GROUP, "0x"),
    send(GROUP, "0x00"),
    send(GROUP, "0x" + "ab" * 300),
    send(GROUP, 5),
    send(GROUP, ["0x00"]),
    {"jsonrpc": "2.0", "id": 9, "method": "sendRawTransaction", "params": {"a": 1}},
    {"jsonrpc": "2.0", "id": 9, "method": "getBlockNumber", "params": [GROUP]},
    {"jsonrpc": "2.0", "id": 9, "method": "getPendingTxSize", "params": [GROUP]},
    "not an object",
    [],
]


async def both(batch: Any, max_response: int) -> tuple[Any, Any]:
    """(fast path's outcome, general path's outcome) on two equal fresh ledgers."""
    outcomes = []
    for plain in (True, False):
        ledger = Ledger()
        backend = LedgerBackend(ledger)
        calls: list[list[bytes]] = []
        real = backend.submit

        async def submit(raws: Any, real: Any = real, calls: Any = calls) -> Any:
            calls.append(list(raws))
            return await real(raws)

        backend.submit = submit  # type: ignore[method-assign]
        dispatcher = Dispatcher({GROUP: backend}, max_response=max_response)
        dispatcher._plain_submit = plain
        body = json.dumps(batch).encode()
        out = await dispatcher.handle_bytes(body)
        pool = [v.hash for v in ledger.pool.seal(1000, ledger.head + 1)]
        outcomes.append((out, dispatcher.stats, calls, pool, dict(ledger.pool.rejected)))
    return outcomes[0], outcomes[1]


def test_every_case_alone_and_all_together_answer_alike() -> None:
    async def go() -> None:
        for item in ITEMS:
            fast, general = await both(item, 1 << 24)
            assert fast == general, item
            fast, general = await both([item, item], 1 << 24)
            assert fast == general, item
        fast, general = await both(ITEMS, 1 << 24)
        assert fast == general

    asyncio.run(go())


def test_the_plain_case_takes_the_fast_path() -> None:
    async def go() -> None:
        ledger = Ledger()
        dispatcher = Dispatcher({GROUP: LedgerBackend(ledger)})
        routed = 0
        real = dispatcher._route

        def route(*args: Any) -> Any:
            nonlocal routed
            routed += 1
            return real(*args)

        dispatcher._route = route  # type: ignore[method-assign]
        batch = [send(GROUP, "0x" + raw.hex(), id=i) for i, raw in enumerate(RAWS)]
        answers = json.loads(await dispatcher.handle_bytes(json.dumps(batch).encode()) or b"")
        assert routed == 0
        assert [a["result"] for a in answers] == [
            "0x" + v.hash.hex() for v in ledger.pool.seal(100, ledger.head + 1)
        ]
        assert dispatcher.stats.calls == {"sendRawTransaction": len(RAWS)}

    asyncio.run(go())


@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(st.sampled_from(ITEMS), min_size=1, max_size=SUBMIT_CHUNK // 8),
    max_response=st.sampled_from([1 << 24, 200, 700, 1500, 4000]),
)
def test_random_batches_and_budgets_answer_alike(batch: list[Any], max_response: int) -> None:
    fast, general = asyncio.run(both(batch, max_response))
    assert fast == general
