"""One supervision policy for a node's own bugs.

A node runs a handful of long-lived loops (inbound frames, ticks, sealing, gossip, status,
block sync) and short tasks (fetching a proposal's transactions). Nothing received from
outside may raise out of them: inputs are decoded into typed values or dropped and
counted. What still raises is a bug of ours, and this module decides what happens then,
in one place:

* **One input failed** (a frame, an RPC request, executing one proposal): the caller
  reports it with :meth:`Supervisor.report`; the traceback is logged, the failure is
  counted under the loop's name (``ledgerlab_internal_errors_total{loop=...}``) and the
  loop goes on with the next input.
* **A loop raised**: logged and counted the same way, then the loop is started again
  after a back-off (0.1 s, doubling, at most 5 s). A one-shot task (``restart=False``)
  is not started again.
* **A loop keeps failing** (more than ``max_restarts`` failures within ``window``
  seconds), or the caller declares a failure fatal with :meth:`Supervisor.fatal` (for
  example a decided block that cannot be stored): every task is cancelled,
  :attr:`Supervisor.failure` holds a one-line reason, and :attr:`Supervisor.stopped` is
  set. ``python -m node`` then exits with status 70 and prints the reason; nothing is
  left half alive.
* **The node must start again from disk** (its storage failed and came back,
  node/runtime/storage_fault.py): :meth:`Supervisor.restart` cancels every task the
  same way, :attr:`Supervisor.restart_reason` says why, :attr:`Supervisor.stopped` is
  set, and ``python -m node`` opens the node again in the same process.

Cancellation is not a failure: it is how the node stops its tasks.

What reaches the event loop's last-resort handler instead (a callback that raised, a
future whose exception nobody retrieved: mostly a library's own, such as aiomqtt's when a
broker drops the connection) has no loop to blame or restart: :meth:`Supervisor.on_loop_error`
logs it with asyncio's default handler and counts it apart
(``ledgerlab_event_loop_errors_total``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("ledgerlab.supervisor")

EXIT_INTERNAL_ERROR = 70
"""Exit status of a node stopped by this policy (EX_SOFTWARE in sysexits.h)."""

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    """Runs named tasks under the policy in the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        max_restarts: int = 5,
        window: float = 60.0,
        first_backoff: float = 0.1,
        max_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.max_restarts = max_restarts
        self.window = window
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self._clock = clock
        self.errors: Counter[str] = Counter()
        """Failures by loop name: ``ledgerlab_internal_errors_total``."""
        self.restarts: Counter[str] = Counter()
        self.loop_errors = 0
        """Errors that reached the event loop's handler: ``ledgerlab_event_loop_errors_total``."""
        self.failure: str | None = None
        """Why the node stopped itself (None while it runs)."""
        self.restart_reason: str | None = None
        """Why the node asked to be started again from disk (None otherwise)."""
        self.stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- running tasks -------------------------------------------------------------------

    def spawn(self, loop: str, factory: LoopFactory, *, restart: bool = True) -> None:
        """Run ``factory()`` as task ``loop``; restart it on failure if ``restart``."""
        if self.failure is not None:
            return
        task = asyncio.get_running_loop().create_task(
            self._supervise(loop, factory, restart), name=f"{self.name}:{loop}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervise(self, loop: str, factory: LoopFactory, restart: bool) -> None:
        failures: deque[float] = deque()
        while True:
            try:
                await factory()
                if not restart:
                    return
                raise RuntimeError("the loop returned")  # a loop that ends is a bug too
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.failure is not None or self.restart_reason is not None:
                    return  # stopping: what failed on the way out does not matter
                self.report(loop, exc)
                if not restart:
                    return
                now = self._clock()
                failures.append(now)
                while failures and failures[0] < now - self.window:
                    failures.popleft()
                if len(failures) > self.max_restarts:
                    self.fatal(
                        f"{loop} loop failed {len(failures)} times in {self.window:g} s; "
                        f"last: {_one_line(exc)}"
                    )
                    return
                delay = min(self.first_backoff * 2 ** (len(failures) - 1), self.max_backoff)
                self.restarts[loop] += 1
                log.warning("%s: restarting the %s loop in %.1f s", self.name, loop, delay)
                await asyncio.sleep(delay)

    # -- the policy --------------------------------------------------------------------

    def report(self, loop: str, exc: BaseException) -> None:
        """A bug of ours in ``loop``: log the traceback and count it."""
        self.errors[loop] += 1
        log.error(
            "%s: internal error in %s: %s", self.name, loop, _one_line(exc), exc_info=exc
        )

    def catch_loop_errors(self) -> Callable[[], None]:
        """Make :meth:`on_loop_error` the running loop's exception handler; returns the
        function that puts the previous one back. One node per process (``python -m
        node``); in a process that runs several, the node started last counts them."""
        loop = asyncio.get_running_loop()
        previous = loop.get_exception_handler()
        loop.set_exception_handler(self.on_loop_error)
        return lambda: loop.set_exception_handler(previous)

    def on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's handler: count, then log as asyncio would (with the traceback)."""
        self.loop_errors += 1
        loop.default_exception_handler(context)

    def fatal(self, reason: str, loop: str = "", exc: BaseException | None = None) -> None:
        """Stop every task: the node cannot go on correctly (``reason``: one line).

        ``exc``, the failure behind it, is reported (logged, counted) under ``loop`` first.
        """
        if exc is not None:
            self.report(loop, exc)
        if self.failure is not None:
            return
        self.failure = reason
        log.critical("%s: stopping: %s", self.name, reason)
        for task in list(self._tasks):
            task.cancel()  # the calling task too, at its next await
        self.stopped.set()

    def restart(self, reason: str) -> None:
        """Stop every task so that the node is started again from disk (``reason``)."""
        if self.failure is not None or self.restart_reason is not None:
            return
        self.restart_reason = reason
        log.warning("%s: restarting from disk: %s", self.name, reason)
        for task in list(self._tasks):
            task.cancel()
        self.stopped.set()

    async def aclose(self) -> None:
        """Cancel every task and wait until they have finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def running(self) -> list[str]:
        """Names of the tasks alive now (for tests and diagnostics)."""
        return sorted(t.get_name() for t in self._tasks if not t.done())


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
