"""What a node does while it cannot write its data directory (disk full, read-only).

A RocksDB write that fails (``ENOSPC``, ``EROFS``, ``EIO``) leaves the database in an
error state: every later write fails too ("Writer has previous error"), even once space
is back, until the database is closed and opened again. So the node cannot simply retry.
The policy, one place for it (docs/node.md, Storage faults):

1. The first write that fails (a decided block, a PBFT state record, a synced block)
   puts the node in **storage fault**: the replica is stepped no more (no vote, no
   proposal, nothing sent as if stored: a decided block it could not store is simply
   not acknowledged), block sync imports nothing, and ``sendRawTransaction`` refuses
   every transaction with ``StorageUnavailable`` (10012). Reads (blocks, receipts,
   status) still answer; ``getConsensusStatus`` has ``storageFault`` (the reason).
   Nothing committed is lost: a failed RocksDB batch is written whole or not at all.
2. Every :data:`PROBE_INTERVAL` seconds the node writes, fsyncs and deletes a
   :data:`PROBE_BYTES`-byte file in its data directory. The first probe that succeeds
   stops the node with a *restart* request: ``python -m node`` closes it (store, RPC,
   transport) and starts it again in the same process, from what is on disk; block sync
   then fetches what it missed. A read-only filesystem never passes the probe: it needs
   the operator (fsck, remount, then restart the node). More than 5 restarts from disk
   within 10 minutes stop the node (status 70): the store fails on a disk that writes.
3. It is never silent: the fault is logged at CRITICAL, then once a minute while it
   lasts, and shown (``storageFault`` in getConsensusStatus, the gauge
   ``ledgerlab_storage_fault``).
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from storage.kv import StorageError

PROBE_BYTES = 1 << 20
"""Free space a probe must find: 1 MiB, about a few hundred blocks of WAL."""
PROBE_INTERVAL = 1.0
REMIND_INTERVAL = 60.0
PROBE_NAME = ".storage-probe"

_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT, errno.EFBIG})


def is_storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is the disk failing, not a bug of ours."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, StorageError):
            return True
        if isinstance(cur, OSError) and cur.errno in _DISK_ERRNOS:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


@dataclass(slots=True)
class StorageFault:
    """One spell of not being able to write, from the first failure on."""

    reason: str
    since: float  # time.monotonic()
    refused: int = 0  # client txs refused meanwhile
    probes: int = 0
    reminded: float = 0.0

    def remind_due(self, now: float) -> bool:
        if now - max(self.since, self.reminded) >= REMIND_INTERVAL:
            self.reminded = now
            return True
        return False


def probe(data_dir: Path) -> str | None:
    """Write, fsync and delete a probe file; None when that worked, else why not."""
    path = data_dir / PROBE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            block = b"\0" * 65536
            for _ in range(PROBE_BYTES // len(block)):
                os.write(fd, block)
            os.fsync(fd)
        finally:
            os.close(fd)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
