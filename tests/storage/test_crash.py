"""Crash safety for real: SIGKILL a committing process many times, then check the store.

After every kill the reopened store must equal, byte for byte and key for key, a ledger
built in memory by replaying blocks ``0..head`` with the same deterministic block
builder: so every block up to head is there with its index entries and receipts, nothing
beyond head exists, and the state (and its root) is exactly the replayed one.

The default backend runs by default; set ``LEDGERLAB_CRASH_BACKENDS=rocksdb,lmdb,sqlite``
to run others. ``LEDGERLAB_CRASH_SEED`` changes the kill schedule.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import DEFAULT_BACKEND, Head, LedgerStore, MemoryKV, open_store

from .crash_writer import META, next_block

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 40
BACKENDS = os.environ.get("LEDGERLAB_CRASH_BACKENDS", DEFAULT_BACKEND).split(",")
SEED = int(os.environ.get("LEDGERLAB_CRASH_SEED", "20240611"))


def _number(head: Head | None) -> int:
    return -1 if head is None else head.number


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_leaves_a_consistent_ledger(backend: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    path = str(tmp_path / "db")
    replay = LedgerStore(MemoryKV())
    previous, advanced = -1, 0
    after_ready = 0.03  # grows while killed runs commit nothing (a loaded machine)
    for kill in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), path, backend],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        in_startup = rng.random() < 0.25  # some land in start-up/recovery, most mid-commit
        if in_startup:
            time.sleep(rng.uniform(0.0, 0.1))
        else:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            opened = ready and proc.stdout.readline() == b"ready\n"
            assert opened, "the writer never opened the store"
            time.sleep(rng.uniform(after_ready, 4 * after_ready))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"writer died on its own:\n{err.decode()}"

        kv = open_store(path, backend)
        try:
            ledger = LedgerStore(kv)
            head = ledger.head()
            number = _number(head)
            assert number >= previous, f"kill {kill}: head went back from {previous} to {number}"
            advanced += number > previous
            if not in_startup and number == previous:
                after_ready = min(2 * after_ready, 1.0)
            while _number(replay.head()) < number:
                replay.commit_block(next_block(replay))
            assert replay.head() == head
            if head is not None:
                assert ledger.get_meta(META) == b"%d" % head.number
            assert list(kv.scan()) == list(replay.kv.scan()), f"kill {kill}: store != replay"
            previous = number
        finally:
            kv.close()
    print(f"{backend}: {KILLS} kills, final head {previous}, {advanced} runs committed blocks")
    assert advanced >= KILLS // 2, f"only {advanced} of {KILLS} runs committed anything"
