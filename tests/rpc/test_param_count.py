"""A wrong number of params is reported as the client sent it: the group included."""

from __future__ import annotations

from typing import Any

import pytest

from node.rpc import Dispatcher, ErrorCode
from tests.rpc.conftest import req
from tests.rpc.test_force import GROUP, PlainBackend, send


@pytest.mark.asyncio
@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("method", "params", "usage"),
    [
        (
            "sendRawTransaction",
            [GROUP, "0x01", {"force": True}, 1],
            "[group, rawTransaction, {force}?]",
        ),
        ("sendRawTransaction", [GROUP], "[group, rawTransaction, {force}?]"),
        ("getBlockNumber", [GROUP, 1], "[group]"),
        ("getTransactionByHash", [GROUP, "0x" + "00" * 32, 2, 3], "[group, txHash]"),
        ("getClientVersion", [GROUP, 1], "[] or [group]"),
    ],
)
async def test_the_count_in_the_message_is_the_params_sent(
    method: str, params: list[Any], usage: str
) -> None:
    backend = PlainBackend()
    dispatcher = Dispatcher({GROUP: backend})  # type: ignore[dict-item]
    answer = await send(dispatcher, req(method, *params))
    error = answer["error"]
    assert error["code"] == ErrorCode.InvalidParams
    assert error["message"] == (f"Invalid params: expected {usage}, got {len(params)} param(s)")
    assert backend.calls == []
