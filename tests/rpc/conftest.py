"""Fixtures: a real ledger behind a dispatcher, an HTTP server on a free port, clients."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from consensus.crypto import KeyPair
from node.rpc import Dispatcher, RpcServer, gauge, labelled
from tests.loops import both_loops
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

pytest_asyncio_loop_factories = both_loops  # the runtime runs on uvloop


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def backend(ledger: Ledger) -> LedgerBackend:
    return LedgerBackend(ledger)


@pytest.fixture
def dispatcher(backend: LedgerBackend) -> Dispatcher:
    return Dispatcher({GROUP: backend})


@pytest.fixture
def alice() -> KeyPair:
    return KeyPair.from_secret(b"\x11" * 32)


NOTIFY: Any = object()  # req(..., id=NOTIFY) builds a notification (no "id" member)


def req(method: str, *params: Any, id: Any = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": list(params)}
    if id is not NOTIFY:
        out["id"] = id
    return out


async def rpc(dispatcher: Dispatcher, method: str, *params: Any) -> Any:
    """One call through the byte-level entry point; the decoded response object."""
    body = json.dumps(req(method, *params)).encode()
    out = await dispatcher.handle_bytes(body)
    assert out is not None
    return json.loads(out)


def metrics_provider(ledger: Ledger) -> Any:
    def provide() -> list[Any]:
        return [
            gauge("ledgerlab_block_height", "committed head", ledger.head),
            gauge("ledgerlab_txpool_size", "pending txs", len(ledger.pool)),
            labelled(
                "ledgerlab_messages_in_total",
                "counter",
                "messages in",
                "type",
                {"prepare": 3, "commit": 2},
            ),
        ]

    return provide


@pytest_asyncio.fixture
async def server(dispatcher: Dispatcher, ledger: Ledger) -> AsyncIterator[RpcServer]:
    async with RpcServer(
        dispatcher, port=0, metrics=metrics_provider(ledger), idle_timeout=5, read_timeout=5
    ) as srv:
        yield srv


async def raw_exchange(port: int, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send bytes, half-close, read until the server closes; everything it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(read_timeout):
            return await reader.read()
    finally:
        writer.close()


class ThreadedServer:
    """A server on its own event loop in a thread, for plain sockets and the sync client.

    ``run(fn)`` executes ``fn(ledger)`` on the server's loop (the ledger is not
    thread-safe) and returns its result.
    """

    def __init__(self, **server_kwargs: Any) -> None:
        self.ledger = Ledger()
        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(
            Dispatcher({GROUP: LedgerBackend(self.ledger)}), port=0, **server_kwargs
        )
        self._thread = threading.Thread(target=self._run, name="rpc-test-server", daemon=True)
        self._ready = threading.Event()

    @property
    def port(self) -> int:
        return self.server.port

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.close())
        self.loop.close()

    def run(self, fn: Callable[[Ledger], Any]) -> Any:
        async def call() -> Any:
            return fn(self.ledger)

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
