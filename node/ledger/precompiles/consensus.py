"""Consensus (0x1003): the sealer and observer lists, changed by transaction.

FISCO BCOS's ConsensusPrecompiled with its method names: ``addSealer(string nodeId)``,
``addObserver(string nodeId)`` and ``remove(string nodeId)``, where ``nodeId`` is the
node's 64-byte consensus public key as 128 hex digits (either case, no ``0x``), plus the
read-only ``getSealerList(uint256 start?)`` and ``getObserverList(uint256 start?)``.
Only genesis governors may call the writers (-50000 otherwise). Codes, checked in this
order after the permission:

* -51100 invalid node id: not 128 hex digits, or not a secp256k1 public key;
* -51105 the node already has that role (``addSealer`` of a sealer, ``addObserver`` of an
  observer; FISCO 2.x SDKs' ALREADY_EXISTS_IN_SEALER_LIST / _OBSERVER_LIST number);
* -51104 ``addSealer`` of a node that is not an observer: a node joins as an observer
  first, syncs the chain, and only then becomes a sealer (FISCO 3.1's rule), so a new
  sealer can vote from its first height instead of stalling the quorum while it catches up;
* -51101 the last sealer cannot be removed or turned observer;
* -51103 ``remove`` of a node that is neither sealer nor observer;
* -51106 the change would make a list longer than :data:`consensus.messages.MAX_SEALERS`
  (256; a block header and a seal cannot name more).

``addObserver`` of a sealer demotes it; ``remove`` of either makes it a free node.
Sealer order is the sealer index order: ``addSealer`` appends at the end, and removing or
demoting a sealer shifts the later ones down by one. Every successful change emits one
event with topic ``hash32("<method>(string)")`` and data ``[nodeId]`` (lower-case hex).

A change takes effect from the next block, like SystemConfig: the executor reads
:func:`read_membership` from the parent block's state, the header's ``sealer_list`` is
that list, and that is the list a block's seal is checked against. Several changes in
one block apply in order (each sees the ones before it); the next block runs with the
final lists.

State: ``s_consensus/sealers`` and ``s_consensus/observers``, each the canonical msgpack
array of the 64-byte keys, in order. Absent keys mean the genesis lists (a chain that
never changed its membership has no such keys); every change writes both.
"""

from __future__ import annotations

from typing import NamedTuple

import coincurve

from consensus.codec import DecodeError, expect_bytes, expect_seq, pack, unpack
from consensus.crypto import PUBLIC_KEY_SIZE, hash32
from consensus.messages import MAX_SEALERS
from node.ledger.block import LogEvent
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.base import (
    NO_PERMISSION,
    CallContext,
    CallResult,
    Precompile,
    method,
    precompile,
)
from node.ledger.tx import encode_values
from storage.overlay import StateReader

INVALID_NODE_ID = -51100
LAST_SEALER = -51101
NODE_NOT_EXIST = -51103
MUST_BE_OBSERVER = -51104
ALREADY_IN_LIST = -51105
TOO_MANY_NODES = -51106

ADDRESS = "0x1003"
TABLE_PREFIX = b"s_consensus/"
SEALERS_KEY = TABLE_PREFIX + b"sealers"
OBSERVERS_KEY = TABLE_PREFIX + b"observers"
WRITERS = frozenset({"addSealer", "addObserver", "remove"})
"""The methods that change the membership (what admission's quorum check looks at)."""
PAGE = 15
"""Node ids per getter answer: with the count, 16 values (what any output decoder reads,
``node.ledger.tx.MAX_ARGS``) of at most 130 encoded bytes, within a receipt's 4 KiB."""

TOPICS = {name: hash32(f"{name}(string)".encode()) for name in sorted(WRITERS)}


class Membership(NamedTuple):
    """The sealers (in index order) and observers in force for a block."""

    sealers: tuple[bytes, ...]
    observers: tuple[bytes, ...]

    def role_of(self, key: bytes) -> str:
        """``"sealer"``, ``"observer"`` or ``"free"`` (in neither list)."""
        if key in self.sealers:
            return "sealer"
        return "observer" if key in self.observers else "free"

    @property
    def members(self) -> tuple[bytes, ...]:
        """Sealers then observers: the nodes of the group."""
        return self.sealers + self.observers


def genesis_membership(genesis: GenesisConfig) -> Membership:
    return Membership(tuple(genesis.sealers), tuple(genesis.observers))


def _decode_list(raw: bytes, what: str) -> tuple[bytes, ...]:
    items = expect_seq(unpack(raw), what, max_len=MAX_SEALERS)
    keys = tuple(expect_bytes(k, what, size=PUBLIC_KEY_SIZE) for k in items)
    if pack(list(keys)) != raw or len(set(keys)) != len(keys):
        raise DecodeError(f"{what}: not a canonical list of distinct keys")
    return keys


def read_membership(state: StateReader, genesis: GenesisConfig) -> Membership:
    """The lists in ``state`` (the genesis lists where never changed).

    Raises :class:`DecodeError` if the stored lists are corrupt (only this module writes
    them, so that is a damaged store, not anyone's input).
    """
    sealers_raw = state.get(SEALERS_KEY)
    observers_raw = state.get(OBSERVERS_KEY)
    sealers = (
        tuple(genesis.sealers)
        if sealers_raw is None
        else _decode_list(sealers_raw, "stored sealer list")
    )
    observers = (
        tuple(genesis.observers)
        if observers_raw is None
        else _decode_list(observers_raw, "stored observer list")
    )
    return Membership(sealers, observers)


def parse_node_id(node_id: str) -> bytes | None:
    """The 64-byte key named by ``node_id`` (128 hex digits), or None if invalid."""
    if len(node_id) != 2 * PUBLIC_KEY_SIZE or not node_id.isascii():
        return None
    try:
        key = bytes.fromhex(node_id)
    except ValueError:
        return None
    if len(key) != PUBLIC_KEY_SIZE:  # fromhex skips whitespace
        return None
    try:
        coincurve.PublicKey(b"\x04" + key)
    except Exception:  # not a point of the curve: no node can sign with it
        return None
    return key


def _write(ctx: CallContext, new: Membership) -> None:
    ctx.state.put(SEALERS_KEY, pack(list(new.sealers)))
    ctx.state.put(OBSERVERS_KEY, pack(list(new.observers)))


def _page(keys: tuple[bytes, ...], start: int) -> CallResult:
    """Status 0 and ``[total, id, id, ...]``: up to :data:`PAGE` ids from ``start``."""
    return CallResult(0, encode_values([len(keys), *(k.hex() for k in keys[start : start + PAGE])]))


@precompile(ADDRESS, "Consensus")
class Consensus(Precompile):
    def __init__(self, genesis: GenesisConfig) -> None:
        super().__init__(genesis)
        self.governors = frozenset(genesis.governors)

    def _change(self, ctx: CallContext, node_id: str) -> tuple[bytes, Membership] | int:
        """The key and the current lists, or the refusal code (permission, node id)."""
        if ctx.sender not in self.governors:
            return NO_PERMISSION
        key = parse_node_id(node_id)
        if key is None:
            return INVALID_NODE_ID
        return key, read_membership(ctx.state, self.genesis)

    def _done(self, ctx: CallContext, name: str, key: bytes, new: Membership) -> CallResult:
        _write(ctx, new)
        event = LogEvent(self.address, (TOPICS[name],), encode_values([key.hex()]))
        return CallResult(0, b"", (event,))

    @method(str)
    def addSealer(self, ctx: CallContext, node_id: str) -> CallResult:
        found = self._change(ctx, node_id)
        if isinstance(found, int):
            return CallResult(found)
        key, (sealers, observers) = found
        if key in sealers:
            return CallResult(ALREADY_IN_LIST)
        if key not in observers:
            return CallResult(MUST_BE_OBSERVER)
        if len(sealers) >= MAX_SEALERS:
            return CallResult(TOO_MANY_NODES)
        new = Membership((*sealers, key), tuple(k for k in observers if k != key))
        return self._done(ctx, "addSealer", key, new)

    @method(str)
    def addObserver(self, ctx: CallContext, node_id: str) -> CallResult:
        found = self._change(ctx, node_id)
        if isinstance(found, int):
            return CallResult(found)
        key, (sealers, observers) = found
        if key in observers:
            return CallResult(ALREADY_IN_LIST)
        if key in sealers and len(sealers) == 1:
            return CallResult(LAST_SEALER)
        if len(observers) >= MAX_SEALERS:
            return CallResult(TOO_MANY_NODES)
        new = Membership(tuple(k for k in sealers if k != key), (*observers, key))
        return self._done(ctx, "addObserver", key, new)

    @method(str)
    def remove(self, ctx: CallContext, node_id: str) -> CallResult:
        found = self._change(ctx, node_id)
        if isinstance(found, int):
            return CallResult(found)
        key, (sealers, observers) = found
        if key in sealers:
            if len(sealers) == 1:
                return CallResult(LAST_SEALER)
            new = Membership(tuple(k for k in sealers if k != key), observers)
        elif key in observers:
            new = Membership(sealers, tuple(k for k in observers if k != key))
        else:
            return CallResult(NODE_NOT_EXIST)
        return self._done(ctx, "remove", key, new)

    @method(int, min_args=0, readonly=True)
    def getSealerList(self, ctx: CallContext, start: int = 0) -> CallResult:
        """``[sealer count, up to 15 node ids from index start]`` (latest written lists)."""
        return _page(read_membership(ctx.state, self.genesis).sealers, start)

    @method(int, min_args=0, readonly=True)
    def getObserverList(self, ctx: CallContext, start: int = 0) -> CallResult:
        """``[observer count, up to 15 node ids from position start]``."""
        return _page(read_membership(ctx.state, self.genesis).observers, start)
