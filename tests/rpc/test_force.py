"""sendRawTransaction's optional {"force": true}: params, and how the dispatcher routes
forced submissions (backend.submit_forced, in order within a batch)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from node.rpc import Dispatcher, ErrorCode
from node.rpc.backend import Rejection
from tests.rpc.conftest import req

pytestmark = pytest.mark.asyncio
GROUP = "group0"


class Backend:
    """Accepts every raw tx (its hash: 32 copies of its first byte) and records the calls;
    unforced txs starting with 0xee are refused as MembershipBreaksQuorum."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[bytes]]] = []

    async def submit(self, raw_txs: Sequence[bytes]) -> list[bytes | Rejection]:
        self.calls.append(("submit", list(raw_txs)))
        return [
            Rejection("MembershipBreaksQuorum", "only 2 of them") if r[0] == 0xEE else r[:1] * 32
            for r in raw_txs
        ]

    async def submit_forced(self, raw_txs: Sequence[bytes]) -> list[bytes]:
        self.calls.append(("forced", list(raw_txs)))
        return [r[:1] * 32 for r in raw_txs]


class PlainBackend:
    def __init__(self) -> None:
        self.calls: list[list[bytes]] = []

    async def submit(self, raw_txs: Sequence[bytes]) -> list[bytes]:
        self.calls.append(list(raw_txs))
        return [r[:1] * 32 for r in raw_txs]


async def send(dispatcher: Dispatcher, payload: Any) -> Any:
    out = await dispatcher.handle_bytes(json.dumps(payload).encode())
    return None if out is None else json.loads(out)


def raw_req(raw: bytes, *options: Any, id: int = 1) -> dict[str, Any]:
    return req("sendRawTransaction", GROUP, "0x" + raw.hex(), *options, id=id)


async def test_force_routes_to_submit_forced_and_keeps_the_batch_order() -> None:
    backend = Backend()
    dispatcher = Dispatcher({GROUP: backend})  # type: ignore[dict-item]
    batch = [
        raw_req(b"\x01", id=1),
        raw_req(b"\xee", id=2),
        raw_req(b"\xee", {"force": True}, id=3),
        raw_req(b"\x04", {"force": True}, id=4),
        raw_req(b"\x05", {"force": False}, id=5),
        raw_req(b"\x06", {}, id=6),
    ]
    answers = await send(dispatcher, batch)
    assert [a["id"] for a in answers] == [1, 2, 3, 4, 5, 6]
    assert answers[0]["result"] == "0x" + "01" * 32
    error = answers[1]["error"]
    assert error["code"] == ErrorCode.MembershipBreaksQuorum.value == 10010
    assert error["data"] == {"reason": "MembershipBreaksQuorum", "status": "0x271a"}
    assert error["message"] == "MembershipBreaksQuorum: only 2 of them"
    assert answers[2]["result"] == "0x" + "ee" * 32
    assert backend.calls == [
        ("submit", [b"\x01", b"\xee"]),
        ("forced", [b"\xee", b"\x04"]),
        ("submit", [b"\x05", b"\x06"]),
    ]


async def test_a_backend_without_submit_forced_gets_forced_txs_in_submit() -> None:
    backend = PlainBackend()
    dispatcher = Dispatcher({GROUP: backend})  # type: ignore[dict-item]
    answer = await send(dispatcher, raw_req(b"\x07", {"force": True}))
    assert answer["result"] == "0x" + "07" * 32 and backend.calls == [[b"\x07"]]


@pytest.mark.parametrize(
    "options",
    [[True], [{"force": 1}], [{"force": "true"}], [{"forc": True}], [{"force": True}, 1], [[]]],
)
async def test_bad_options_are_invalid_params(options: list[Any]) -> None:
    backend = Backend()
    dispatcher = Dispatcher({GROUP: backend})  # type: ignore[dict-item]
    answer = await send(dispatcher, raw_req(b"\x01", *options))
    assert answer["error"]["code"] == ErrorCode.InvalidParams
    assert backend.calls == []
