"""Choosing and opening a backend by name.

Backends are imported only when opened, so ``import storage`` does not need ``lmdb`` or
``rocksdict`` and a machine without one can still use the others.
"""

from __future__ import annotations

import importlib

from storage.kv import KVStore, StorageError
from storage.memory import MemoryKV

DEFAULT_BACKEND = "rocksdb"
"""Measured on the block-commit workload; see docs/storage.md for the figures and why."""

_PERSISTENT: dict[str, tuple[str, str]] = {
    "rocksdb": ("storage.rocksdb_kv", "RocksKV"),
    "lmdb": ("storage.lmdb_kv", "LmdbKV"),
    "sqlite": ("storage.sqlite_kv", "SqliteKV"),
}
BACKENDS = ("memory", *_PERSISTENT)


def open_store(path: str | None, backend: str = DEFAULT_BACKEND, *, sync: bool = True) -> KVStore:
    """Open (creating if needed) a store in directory ``path``; ``None`` means in memory.

    ``sync=True`` (what a node uses) makes every :meth:`KVStore.write` reach the disk
    before it returns; ``sync=False`` survives a killed process but not a power cut.
    """
    if path is None or backend == "memory":
        if path is not None:
            raise ValueError("the memory backend takes no path")
        return MemoryKV()
    try:
        module_name, class_name = _PERSISTENT[backend]
    except KeyError:
        raise ValueError(f"unknown storage backend {backend!r}; choose from {BACKENDS}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StorageError(f"backend {backend!r} is not installed: {exc}") from exc
    store: KVStore = getattr(module, class_name)(path, sync=sync)
    return store
