"""The transaction pool: admission rules, pending order, and replay protection.

Admission runs the cheap checks first and the ~30 us signature recovery last, so a flood
of malformed or duplicate transactions costs almost nothing; a transaction that passes
is kept with its recovered sender and never verified again on this node. Every
rejection is a :class:`TxRejected` whose ``reason`` is one of the FISCO BCOS names in
:class:`Reason`; the RPC layer maps them to error codes.

Rules (FISCO BCOS 2.x): a transaction is admitted while ``head < block_limit <= head +
window``; it may go into block ``N`` only while ``N <= block_limit``; its nonce must not
be in the pool nor in the last ``nonce_memory`` blocks; its hash must not be in the
chain. Pending transactions leave in arrival order.

Nonce scope: global per group, as in FISCO BCOS. Admission (clients and gossip) refuses a
second transaction with a nonce that is pending or recently committed. A proposal's
transaction that this node lacks is different: the block decides, not the pool, so
:meth:`TxPool.admit_for_proposal` accepts it even when another pending transaction holds
its nonce (and when the pool is full). The pool then holds both; sealing never picks two
of one nonce, and the commit of either evicts the other, which the nonce memory refuses
from then on.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from consensus.codec import DecodeError
from consensus.crypto import InvalidSignature
from node.ledger.tx import MAX_TX_SIZE, SignedTransaction, VerifiedTx

DEFAULT_CAPACITY = 150_000
BLOCK_LIMIT_WINDOW = 1000
NONCE_MEMORY_BLOCKS = 1000
QUARANTINE_MEMORY = 10_000


class Reason(enum.Enum):
    """Why a transaction was refused (FISCO BCOS txpool status names)."""

    ALREADY_KNOWN = "AlreadyKnown"
    ALREADY_IN_CHAIN = "AlreadyInChain"
    NONCE_CHECK_FAIL = "NonceCheckFail"
    BLOCK_LIMIT_CHECK_FAIL = "BlockLimitCheckFail"
    TXPOOL_IS_FULL = "TxPoolIsFull"
    INVALID_CHAIN_ID = "InvalidChainId"
    INVALID_GROUP_ID = "InvalidGroupId"
    MALFORMED = "Malformed"
    INVALID_SIGNATURE = "InvalidSignature"
    QUARANTINED = "Quarantined"
    """ledgerlab's own: executing it raised a bug of ours on this node (never proposed again)."""
    MEMBERSHIP_BREAKS_QUORUM = "MembershipBreaksQuorum"
    """ledgerlab's own: a client's membership change that would leave fewer sealers
    connected to this node than the new set's quorum (refused unless forced)."""
    NOT_A_GROUP_MEMBER = "NotAGroupMember"
    """ledgerlab's own: a client's transaction sent to a free node (in neither list at
    its head): the members do not talk to it, so nothing it admits could commit."""
    STORAGE_UNAVAILABLE = "StorageUnavailable"
    """ledgerlab's own: this node cannot write its data directory (disk full, read-only;
    node/runtime/storage_fault.py); another node can take the transaction."""


class TxRejected(Exception):
    """A transaction the pool refused; nothing about the pool changed."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class TxPool:
    """Pending transactions of one node, keyed by hash, in arrival order."""

    def __init__(
        self,
        *,
        chain_id: str,
        group_id: str,
        in_chain: Callable[[bytes], bool],
        capacity: int = DEFAULT_CAPACITY,
        max_tx_size: int = MAX_TX_SIZE,
        block_limit_window: int = BLOCK_LIMIT_WINDOW,
        nonce_memory: int = NONCE_MEMORY_BLOCKS,
        sees_every_commit: bool = False,
    ) -> None:
        """``in_chain(tx_hash)`` answers whether a transaction is already committed.

        ``sees_every_commit``: :meth:`on_commit` is called for every block the chain
        commits (and at start-up for the last ``nonce_memory`` ones), as the node does.
        """
        self.chain_id = chain_id
        self.group_id = group_id
        self.capacity = capacity
        self.max_tx_size = max_tx_size
        self.block_limit_window = block_limit_window
        self._in_chain = in_chain
        self._pending: dict[bytes, VerifiedTx] = {}
        self._pool_nonces: dict[str, bytes] = {}
        # Rare: pending txs that share a nonce with the one in _pool_nonces (fetched for
        # a proposal). Kept apart so the common path stays one dict lookup.
        self._rivals: dict[str, set[bytes]] = {}
        self._quarantined: dict[bytes, None] = {}
        self._chain_nonces: set[str] = set()
        self._nonces_by_block: deque[tuple[int, list[str]]] = deque()
        self._nonce_memory = nonce_memory
        # When the pool sees every commit, a committed tx keeps its nonce in the nonce memory
        # until its block_limit is behind the head (nonce_memory >= block_limit_window), so
        # the storage lookup behind ``in_chain`` can only change *which* refusal a tx gets:
        # skip it otherwise (~3 us per admission and per inclusion check on RocksDB).
        self._lookup_always = not sees_every_commit or nonce_memory < block_limit_window
        self._min_limit = 1 << 64  # <= every pending block_limit: skips the expiry scan
        self.rejected: dict[Reason, int] = dict.fromkeys(Reason, 0)
        self.admitted = 0
        self.quarantined = 0
        """Transactions ever quarantined (the refusal memory keeps the last 10,000)."""

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._pending

    def get(self, tx_hash: bytes) -> VerifiedTx | None:
        return self._pending.get(tx_hash)

    # -- admission -------------------------------------------------------------------

    def admit(
        self,
        raw: bytes,
        head: int,
        *,
        for_proposal: bool = False,
        vet: Callable[[VerifiedTx], None] | None = None,
    ) -> VerifiedTx:
        """Check ``raw`` against every rule with the chain at ``head`` and add it.

        Raises :class:`TxRejected`; on success the pool holds the transaction.
        ``for_proposal``: a proposal names it, so another pending transaction with the
        same nonce, or a full pool, does not refuse it (the block decides).
        ``vet(vtx)``: the caller's last check, on the verified transaction before it is
        added; it refuses by raising :class:`TxRejected` (counted like the others).
        """
        result = self.admit_many((raw,), head, for_proposal=for_proposal, vet=vet)[0]
        if isinstance(result, TxRejected):
            raise result
        return result

    def admit_for_proposal(self, raw: bytes, head: int) -> VerifiedTx:
        """:meth:`admit` for a transaction a proposal names."""
        return self.admit(raw, head, for_proposal=True)

    def admit_many(
        self,
        raws: Iterable[bytes],
        head: int,
        *,
        for_proposal: bool = False,
        vet: Callable[[VerifiedTx], None] | None = None,
    ) -> list[VerifiedTx | TxRejected]:
        """:meth:`admit` of each of ``raws`` in turn: one result per raw, in order, the
        :class:`VerifiedTx` added or the :class:`TxRejected` that refused it (counted).

        The one home of the admission rules (:meth:`admit` is this for one raw): a
        gossip frame or an RPC batch pays the attribute lookups once, not per transaction.
        Each transaction sees the pool as the ones before it left it.
        """
        out: list[VerifiedTx | TxRejected] = []
        append = out.append
        decode = SignedTransaction.decode
        pending = self._pending
        quarantined = self._quarantined
        chain_nonces = self._chain_nonces
        pool_nonces = self._pool_nonces
        rejected = self.rejected
        in_chain = self._in_chain
        lookup_always = self._lookup_always
        max_size = self.max_tx_size
        chain_id = self.chain_id
        group_id = self.group_id
        capacity = self.capacity
        top = head + self.block_limit_window
        admitted = 0
        try:
            for raw in raws:
                try:
                    if len(raw) > max_size:  # FISCO-format (an RLP list) messages say so
                        kind = "fisco tx: " if raw and raw[0] >= 0xC0 else "transaction of "
                        raise TxRejected(
                            Reason.MALFORMED, f"{kind}{len(raw)} bytes exceeds {max_size}"
                        )
                    try:
                        stx = decode(raw)
                    except DecodeError as exc:
                        raise TxRejected(Reason.MALFORMED, str(exc)) from None
                    tx = stx.tx
                    if tx.chain_id != chain_id:
                        raise TxRejected(
                            Reason.INVALID_CHAIN_ID, f"chain {tx.chain_id!r} is not ours"
                        )
                    if tx.group_id != group_id:
                        raise TxRejected(
                            Reason.INVALID_GROUP_ID, f"group {tx.group_id!r} is not ours"
                        )
                    tx_hash = stx.hash
                    if tx_hash in pending:
                        raise TxRejected(Reason.ALREADY_KNOWN, "already in the pool")
                    if quarantined and tx_hash in quarantined:
                        raise TxRejected(Reason.QUARANTINED, "executing it failed on this node")
                    nonce = tx.nonce
                    limit = tx.block_limit
                    limit_ok = head < limit <= top
                    if (lookup_always or not limit_ok or nonce in chain_nonces) and in_chain(
                        tx_hash
                    ):
                        raise TxRejected(Reason.ALREADY_IN_CHAIN, "already committed")
                    if not limit_ok:
                        raise TxRejected(
                            Reason.BLOCK_LIMIT_CHECK_FAIL,
                            f"block_limit {limit} outside ({head}, {top}]",
                        )
                    if nonce in chain_nonces:
                        raise TxRejected(
                            Reason.NONCE_CHECK_FAIL, f"nonce {nonce!r} already committed"
                        )
                    rival = pool_nonces.get(nonce)
                    if not for_proposal:
                        if rival is not None:
                            raise TxRejected(
                                Reason.NONCE_CHECK_FAIL, f"nonce {nonce!r} already pending"
                            )
                        if len(pending) >= capacity:
                            raise TxRejected(
                                Reason.TXPOOL_IS_FULL, f"{capacity} transactions pending"
                            )
                    try:
                        vtx = stx.verified()
                    except InvalidSignature as exc:
                        raise TxRejected(Reason.INVALID_SIGNATURE, str(exc)) from None
                    if vet is not None:
                        vet(vtx)
                except TxRejected as exc:
                    rejected[exc.reason] += 1
                    append(exc)
                    continue
                pending[tx_hash] = vtx
                if rival is None:
                    pool_nonces[nonce] = tx_hash
                else:
                    self._rivals.setdefault(nonce, set()).add(tx_hash)
                if limit < self._min_limit:
                    self._min_limit = limit
                admitted += 1
                append(vtx)
        finally:
            self.admitted += admitted
        return out

    def quarantine(self, tx_hash: bytes) -> None:
        """Drop ``tx_hash`` and refuse it from now on: executing it hit a bug of ours."""
        vtx = self._pending.pop(tx_hash, None)
        if vtx is not None:
            self._forget_nonce(vtx.tx.tx.nonce, tx_hash)
        if tx_hash not in self._quarantined:
            self.quarantined += 1
        self._quarantined[tx_hash] = None
        while len(self._quarantined) > QUARANTINE_MEMORY:
            del self._quarantined[next(iter(self._quarantined))]

    # -- sealing and proposals -------------------------------------------------------

    def includable(self, vtx: VerifiedTx, number: int) -> bool:
        """Whether ``vtx`` may go into block ``number`` (limits, replay, nonces)."""
        tx = vtx.tx.tx
        return (
            tx.chain_id == self.chain_id
            and tx.group_id == self.group_id
            and number <= tx.block_limit < number + self.block_limit_window
            and tx.nonce not in self._chain_nonces
            and not (self._lookup_always and self._in_chain(vtx.hash))
        )

    def seal(self, limit: int, number: int) -> list[VerifiedTx]:
        """Up to ``limit`` pending transactions for block ``number``, in arrival order."""
        picked: list[VerifiedTx] = []
        if self._rivals:  # never two transactions of one nonce in a block
            nonces: set[str] = set()
            for vtx in self._pending.values():
                tx = vtx.tx.tx
                if tx.block_limit >= number and tx.nonce not in nonces:
                    nonces.add(tx.nonce)
                    picked.append(vtx)
                    if len(picked) == limit:
                        break
            return picked
        for vtx in self._pending.values():
            if vtx.tx.tx.block_limit >= number:
                picked.append(vtx)
                if len(picked) == limit:
                    break
        return picked

    def matching(self, predicate: Callable[[VerifiedTx], bool]) -> list[VerifiedTx]:
        """The pending transactions ``predicate`` accepts, in arrival (sealing) order.

        O(pool): for rare questions (the membership changes pending), not the hot path."""
        return [v for v in self._pending.values() if predicate(v)]

    def missing(self, hashes: Iterable[bytes]) -> list[bytes]:
        """The hashes among ``hashes`` the pool does not hold."""
        pending = self._pending
        return [h for h in hashes if h not in pending]

    # -- after a commit --------------------------------------------------------------

    def on_commit(
        self, number: int, txs: Sequence[SignedTransaction]
    ) -> list[tuple[bytes, Reason]]:
        """Block ``number`` committed ``txs``: drop them, remember their nonces, expire.

        Returns the pending transactions this dropped without committing them, each with
        why (``NONCE_CHECK_FAIL``: a committed transaction took its nonce;
        ``BLOCK_LIMIT_CHECK_FAIL``: its block limit passed), so the channel can tell the
        clients that wait for them. Also called at start-up for the last ``nonce_memory``
        blocks of the chain.
        """
        nonces = []
        dropped: list[tuple[bytes, Reason]] = []
        for stx in txs:
            nonce = stx.tx.nonce
            nonces.append(nonce)
            self._chain_nonces.add(nonce)
            self._pending.pop(stx.hash, None)
            # every other pending transaction with this nonce is now invalid
            other = self._pool_nonces.pop(nonce, None)
            if other is not None and self._pending.pop(other, None) is not None:
                dropped.append((other, Reason.NONCE_CHECK_FAIL))
            if self._rivals:
                for h in self._rivals.pop(nonce, ()):
                    if self._pending.pop(h, None) is not None:
                        dropped.append((h, Reason.NONCE_CHECK_FAIL))
        self._nonces_by_block.append((number, nonces))
        while self._nonces_by_block and self._nonces_by_block[0][0] <= number - self._nonce_memory:
            _, old = self._nonces_by_block.popleft()
            self._chain_nonces.difference_update(old)
        if self._min_limit > number:
            return dropped  # nothing can have expired: no O(pool) scan per block
        expired = []
        low = 1 << 64
        for h, v in self._pending.items():
            limit = v.tx.tx.block_limit
            if limit <= number:
                expired.append(h)
            elif limit < low:
                low = limit
        for h in expired:
            vtx = self._pending.pop(h)
            self._forget_nonce(vtx.tx.tx.nonce, h)
        self._min_limit = low
        dropped.extend((h, Reason.BLOCK_LIMIT_CHECK_FAIL) for h in expired)
        return dropped

    def _forget_nonce(self, nonce: str, tx_hash: bytes) -> None:
        """``tx_hash`` (nonce ``nonce``) left the pool: a rival may now hold the nonce."""
        rivals = self._rivals.get(nonce)
        if self._pool_nonces.get(nonce) == tx_hash:
            del self._pool_nonces[nonce]
            if rivals:
                self._pool_nonces[nonce] = rivals.pop()
        elif rivals:
            rivals.discard(tx_hash)
        if rivals is not None and not rivals:
            del self._rivals[nonce]
