"""Run one function over many seeds: in this process, on every local core, or on a Dask cluster.

``run_seeds(fn, seeds)`` yields ``(seed, fn(seed))`` in seed order, whatever runs them:

- ``workers=1``: here, one after the other;
- ``workers=None`` (the default) or ``K``: a local process pool (``concurrent.futures``)
  of every usable core, or of K processes;
- ``scheduler="tcp://host:8786"``: a running Dask distributed cluster (the optional
  ``soak`` extra; imported only here, never when the package is imported).

``fn`` must be a module-level function (or a ``functools.partial`` of one) so that it
pickles by reference, and deterministic in its seed: the order and the place a seed runs
then change nothing but the wall time. It should return its failures rather than raise;
an exception is re-raised here with the seed in a note. ``batch`` seeds travel as one task
(worth it when a seed takes milliseconds: a Dask task costs about a millisecond of
scheduling and a round trip). Both the simulator soak (``python -m consensus.sim.soak``)
and a chaos soak can drive their seeds through it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from queue import SimpleQueue
from typing import Any, TypeVar

R = TypeVar("R")

DASK_HINT = "pip install 'ledgerlab[soak]'  (Dask distributed)"


class SeedRunError(RuntimeError):
    """The seeds could not be run where asked (no Dask, no scheduler, mismatched workers)."""


def local_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_seeds(
    fn: Callable[[int], R],
    seeds: Iterable[int],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    batch: int = 1,
    check: Callable[[], object] | None = None,
    log: Callable[[str], None] | None = None,
    connect_timeout: float = 10.0,
) -> Iterator[tuple[int, R]]:
    """Yield ``(seed, fn(seed))`` for every seed, in the order given.

    ``workers`` and ``scheduler`` exclude each other. ``check`` (Dask only) is called
    here and on every worker; a worker whose answer differs is refused (the soak passes a
    fingerprint of its source, so a worker with another checkout cannot mix its results
    in). ``log`` receives one-line notes: where the seeds run, warnings. A scheduler that
    does not answer within ``connect_timeout`` s, or has no worker 30 s later, is an error.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give workers or scheduler, not both")
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    if batch < 1:
        raise ValueError("batch must be at least 1")
    say = log or (lambda _line: None)
    if scheduler is not None:
        yield from _on_dask(fn, seeds, batch, scheduler, check, say, connect_timeout)
        return
    count = workers if workers is not None else local_cores()
    if count == 1:
        say("in this process")
        for seed in seeds:
            yield from _call(fn, [seed])
        return
    say(f"{count} local processes")
    finished: SimpleQueue[Future[list[tuple[int, R]]]] = SimpleQueue()

    def submit(chunk: list[int]) -> Future[list[tuple[int, R]]]:
        future = pool.submit(_call, fn, chunk)
        future.add_done_callback(finished.put)
        return future

    with ProcessPoolExecutor(max_workers=count) as pool:
        try:
            yield from _window(submit, finished.get, seeds, batch, lambda: count)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _call(fn: Callable[[int], R], seeds: list[int]) -> list[tuple[int, R]]:
    """One task: ``fn`` over a few seeds (runs in a worker)."""
    out = []
    for seed in seeds:
        try:
            out.append((seed, fn(seed)))
        except Exception as exc:
            exc.add_note(f"while running seed {seed}")
            raise
    return out


def _window(
    submit: Callable[[list[int]], Any],
    next_done: Callable[[], Any],
    seeds: Iterable[int],
    batch: int,
    slots: Callable[[], int],
) -> Iterator[tuple[int, R]]:
    """Keep about 2 x slots tasks in flight, refilled as any completes; yield in order.

    Refilling on completion (not on the oldest) keeps every worker busy behind one slow
    task; finished tasks wait in ``ready`` until their turn.
    """
    it = iter(seeds)
    futures: dict[Any, int] = {}  # in flight -> its position
    ready: dict[int, Any] = {}  # position -> finished future
    head = submitted = 0
    exhausted = False
    while True:
        target = max(2 * slots(), 4)
        while not exhausted and len(futures) < target:
            chunk = list(islice(it, batch))
            if not chunk:
                exhausted = True
                break
            futures[submit(chunk)] = submitted
            submitted += 1
        if not futures and head == submitted:
            return
        if head not in ready:
            done = next_done()
            ready[futures.pop(done)] = done
        while head in ready:
            yield from ready.pop(head).result()
            head += 1


def _on_dask(
    fn: Callable[[int], R],
    seeds: Iterable[int],
    batch: int,
    address: str,
    check: Callable[[], object] | None,
    say: Callable[[str], None],
    connect_timeout: float,
) -> Iterator[tuple[int, R]]:
    try:
        import distributed
    except ImportError:
        raise SeedRunError(f"--scheduler needs Dask distributed: {DASK_HINT}") from None
    dask: Any = distributed  # untyped library: keep mypy's strict mode out of it
    try:
        client = dask.Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SeedRunError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=30)
        except TimeoutError:
            raise SeedRunError(f"the Dask scheduler at {address} has no worker") from None
        nthreads: dict[str, int] = client.nthreads()
        if check is not None:
            _check_workers(client, check)
        say(
            f"Dask scheduler {address}: {len(nthreads)} workers, "
            f"{sum(nthreads.values())} threads"
        )
        for line in worker_notes(nthreads, client.run(_malloc_environ)):
            say(line)
        last = [time.monotonic(), sum(nthreads.values())]

        def slots() -> int:
            if time.monotonic() - last[0] > 2.0:  # workers may join or leave
                last[:] = [time.monotonic(), sum(client.nthreads().values()) or 1]
            return int(last[1])

        finished = dask.as_completed(loop=client.loop)

        def submit(chunk: list[int]) -> Any:
            future = client.submit(_call, fn, chunk, pure=False)
            finished.add(future)
            return future

        yield from _window(submit, lambda: next(finished), seeds, batch, slots)


WORKER_COMMAND = "MALLOC_MMAP_THRESHOLD_=1048576 dask worker ADDRESS --nworkers auto --nthreads 1"
MALLOC_VARS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def _malloc_environ() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in MALLOC_VARS}


def worker_notes(
    nthreads: dict[str, int], environ: dict[str, dict[str, str | None]]
) -> list[str]:
    """Warnings about workers set up to run pure-Python seeds slowly.

    Several threads in one worker process share one core (the GIL). And Dask's nanny
    starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes glibc's mmap
    threshold at 128 KiB: every ``msgpack.packb`` (a 256 KiB buffer) is then an mmap and
    a munmap, and a simulator seed costs about twice the CPU (measured, docs/reliability.md).
    An explicit ``MALLOC_MMAP_THRESHOLD_`` above 256 KiB puts those buffers back on the heap.
    """
    notes = []
    threaded = [w for w, n in nthreads.items() if n > 1]
    if threaded:
        notes.append(
            f"note: {len(threaded)} worker(s) run several threads in one process; pure-Python "
            f"seeds use one core per process: start workers with `{WORKER_COMMAND}`"
        )
    trimmed = [
        w
        for w, env in environ.items()
        if env.get("MALLOC_TRIM_THRESHOLD_") is not None
        and env.get("MALLOC_MMAP_THRESHOLD_") is None
    ]
    if trimmed:
        notes.append(
            f"note: {len(trimmed)} worker(s) run with MALLOC_TRIM_THRESHOLD_ and no "
            "MALLOC_MMAP_THRESHOLD_ (Dask's default), which about doubles the CPU per "
            f"simulator seed: start workers with `{WORKER_COMMAND}`"
        )
    return notes


def _check_workers(client: Any, check: Callable[[], object]) -> None:
    here = check()
    answers: dict[str, object] = client.run(check)
    wrong = sorted(w for w, a in answers.items() if a != here)
    if wrong:
        raise SeedRunError(
            f"{len(wrong)} of {len(answers)} Dask worker(s) run different code "
            f"({wrong[0]}: {answers[wrong[0]]!r}, here: {here!r}); install the same "
            "checkout on every worker and restart the workers"
        )
