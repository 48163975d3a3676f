"""The execution overlay: a block's writes kept apart from committed state.

Reads fall through to the committed state; writes stay here until the block commits.
A journal of previous values lets one failed transaction be undone alone
(:meth:`StateOverlay.mark` / :meth:`StateOverlay.revert`) while earlier transactions of
the same block keep their writes.

A write is checked when it is made, not when the block commits: a key that is not bytes of
1..:data:`~storage.ledger.MAX_STATE_KEY_LEN`, or a value that is not bytes, raises
:class:`StateWriteError` at once. Executed inside a precompile, that is one failed
transaction (the executor reverts it), where a check at commit time would be a block that
no node can store.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Protocol

from storage.ledger import MAX_STATE_KEY_LEN

_ABSENT = object()
_KEY = itemgetter(0)
"""Sort pairs by key alone: one bytes comparison where a tuple comparison makes two."""


class StateWriteError(ValueError):
    """A state write the ledger could not store (key type or length, value type);
    nothing was written."""


def _check_key(key: object) -> None:
    if not isinstance(key, bytes):
        raise StateWriteError(f"state keys are bytes, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_STATE_KEY_LEN:
        raise StateWriteError(f"state key length {len(key)} is outside 1..{MAX_STATE_KEY_LEN}")


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


class StateOverlay:
    """Uncommitted state changes on top of a :class:`StateReader`."""

    __slots__ = ("_base", "_journal", "_read", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, object]] = []
        self._read: dict[bytes, bytes | None] = {}  # base values already fetched

    def get(self, key: bytes) -> bytes | None:
        value = self._writes.get(key, _ABSENT)  # one lookup when this block wrote it
        if value is not _ABSENT:
            return value  # type: ignore[return-value]
        value = self._base.get(key)
        self._read[key] = value  # write_set compares against it without a second read
        return value

    def put(self, key: bytes, value: bytes) -> None:
        """Write ``key``; :class:`StateWriteError` (and nothing written) if it cannot be stored."""
        if not (type(key) is bytes and 0 < len(key) <= MAX_STATE_KEY_LEN):
            _check_key(key)  # raises (bytes subclasses are accepted, as by the KV stores)
        if not isinstance(value, bytes):
            raise StateWriteError(f"state values are bytes, not {type(value).__name__}")
        self._journal.append((key, self._writes.get(key, _ABSENT)))
        self._writes[key] = value

    def delete(self, key: bytes) -> None:
        """Delete ``key``; :class:`StateWriteError` (and nothing written) for a bad key."""
        if not (type(key) is bytes and 0 < len(key) <= MAX_STATE_KEY_LEN):
            _check_key(key)
        self._journal.append((key, self._writes.get(key, _ABSENT)))
        self._writes[key] = None

    def direct(self) -> tuple[dict[bytes, bytes | None], Callable[[bytes], bytes | None]]:
        """``(writes, load)`` for a caller that inlines its reads and writes (the executor's
        fast path, :data:`node.ledger.precompiles.base.FastMethod`): ``writes`` is this
        overlay's own dict of written keys (``None``: deleted) and ``load(key)`` reads a key
        that is not in it, as :meth:`get` would. A write made straight into ``writes`` has
        no savepoint and no check: it must be a whole transaction's, made once the
        transaction cannot fail, with keys and values that :meth:`put` accepts."""
        return self._writes, self._load

    def _load(self, key: bytes) -> bytes | None:
        value = self._base.get(key)
        self._read[key] = value
        return value

    def mark(self) -> int:
        """A savepoint to :meth:`revert` to (the start of a transaction)."""
        return len(self._journal)

    def revert(self, mark: int) -> None:
        """Undo every write made since ``mark``."""
        while len(self._journal) > mark:
            key, previous = self._journal.pop()
            if previous is _ABSENT:
                del self._writes[key]
            else:
                self._writes[key] = previous  # type: ignore[assignment]

    def write_set(self) -> list[tuple[bytes, bytes | None]]:
        """The net changes against the base, sorted by key; ``None`` means deleted.

        A key written back to its committed value is not a change, so a block that
        leaves the state as it was produces an empty write set (and the same root).
        """
        base_get = self._base.get
        read = self._read
        return [
            (key, value)
            for key, value in sorted(self._writes.items(), key=_KEY)  # keys are unique
            if (read[key] if key in read else base_get(key)) != value
        ]
