"""Key-value engines, the ledger schema on top of them, and execution state views.

Knows bytes, keys, batches and snapshots; knows nothing of PBFT or of transaction types.
See docs/storage.md.
"""

from storage.backends import BACKENDS, DEFAULT_BACKEND, open_store
from storage.kv import KVStore, ReadView, Snapshot, StorageError, WriteBatch
from storage.ledger import (
    BlockCommit,
    BlockOrderError,
    Head,
    LedgerError,
    LedgerReader,
    LedgerSnapshot,
    LedgerStore,
    StateView,
)
from storage.memory import MemoryKV
from storage.overlay import StateOverlay, StateReader, StateWriteError
from storage.state_root import GENESIS_STATE_ROOT, next_state_root

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "GENESIS_STATE_ROOT",
    "BlockCommit",
    "BlockOrderError",
    "Head",
    "KVStore",
    "LedgerError",
    "LedgerReader",
    "LedgerSnapshot",
    "LedgerStore",
    "MemoryKV",
    "ReadView",
    "Snapshot",
    "StateOverlay",
    "StateReader",
    "StateView",
    "StateWriteError",
    "StorageError",
    "WriteBatch",
    "next_state_root",
    "open_store",
]
