"""Running nodes for the live fuzz tests: an event loop in a thread that the (synchronous)
Hypothesis tests talk to through real sockets or :meth:`LoopThread.call`.

Hypothesis drives plain functions, and a cluster must outlive many examples, so the
cluster lives on its own loop in a background thread (like tests/rpc/conftest.py
``ThreadedServer``); an example sends its garbage, then asks the loop for counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from node.runtime import Node

T = TypeVar("T")


class LoopThread:
    """An asyncio loop in a daemon thread; ``call`` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fuzz-loop", daemon=True)
        self._stack = contextlib.AsyncExitStack()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.call(self._stack.aclose, timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        async def go() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout)

    def do(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """Run the plain function ``fn`` on the loop (node state is not thread-safe)."""

        async def go() -> T:
            return fn()

        return self.call(go, timeout)

    async def aenter(self, cm: Any) -> Any:
        """On the loop: enter ``cm``; it exits with this thread."""
        return await self._stack.enter_async_context(cm)

    def enter(self, cm: Any, timeout: float = 120) -> Any:
        """Enter the async context manager ``cm`` on the loop; it exits with this thread."""

        async def go() -> Any:
            return await self._stack.enter_async_context(cm)

        return self.call(go, timeout)


def fates(node: Node) -> Counter[str]:
    """Every counter that says what became of an inbound frame, flat (as
    tests/runtime/test_node_faults.py counts them)."""
    c: Counter[str] = Counter()
    c.update({f"in.{k}": v for k, v in node.frames_in.items()})
    c.update({f"dropped.{k}": v for k, v in node.dropped.items()})
    c.update({f"replica.{k}": v for k, v in node.replica.counters.drops.items()})
    c.update({f"sync.{k}": v for k, v in node.sync.stats.items()})
    c.update({f"pool.{r.value}": v for r, v in node.pool.rejected.items()})
    return c


def internal_errors(node: Node) -> int:
    """Bugs of ours the node caught (docs/node.md, Supervision); must stay 0."""
    return sum(node.supervisor.errors.values())


def wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
