"""Fixtures that run one test body on every backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage import BACKENDS, KVStore, open_store

PERSISTENT = [name for name in BACKENDS if name != "memory"]

OpenStore = Callable[[], KVStore]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def reopen(backend: str, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens the backend's store at one path; each call closes the previous store first.

    For ``memory`` there is no reopening: every call returns the same store.
    """
    opened: list[KVStore] = []

    def _open() -> KVStore:
        if backend == "memory":
            if not opened:
                opened.append(open_store(None))
            return opened[0]
        for store in opened:
            store.close()
        opened.append(open_store(str(tmp_path / "db"), backend))
        return opened[-1]

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def kv(reopen: OpenStore) -> KVStore:
    return reopen()
