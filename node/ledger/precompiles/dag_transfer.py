"""DagTransfer (0x5002): FISCO BCOS's native asset-transfer precompile.

Semantics and codes follow FISCO BCOS 2.x, including its order of checks: a name is
checked before an amount, ``userAdd`` accepts a zero balance, ``userSave`` creates a
missing user, a transfer to a missing user creates it, and a transfer to oneself is a
no-op that succeeds once names and amount are valid. ledgerlab puts the code in the
receipt's status (FISCO returns it as the ABI-encoded output).

Two modes, fixed in genesis. Open (no asset admins): anyone may do anything, as in
FISCO's performance tests. Permissioned: only an asset admin may mint (``userAdd``,
``userSave``); ``userAdd`` binds the user to an owner account (the optional third
argument, hex, default the sender) and ``userSave`` creating a user binds it to the
sender; only the owner may ``userDraw`` or ``userTransfer`` from a user. A user created
by receiving a transfer has no owner and is held by the asset admins: any admin may draw
or transfer from it. Every refusal is -50000 and changes nothing.

State: key ``u_dag_transfer/<user name, UTF-8>``; value the balance as 32 big-endian
bytes, followed in permissioned mode by the 20-byte owner address (absent when unowned).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.ledger.accounts import parse_address
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.base import (
    NO_PERMISSION,
    OK,
    PRECOMPILED_ERROR,
    SUCCESS,
    CallContext,
    CallResult,
    FastMethod,
    Precompile,
    method,
    precompile,
)
from node.ledger.tx import UINT256_MAX, encode_values
from storage.ledger import MAX_STATE_KEY_LEN

INVALID_USER_NAME = -51400
INVALID_AMOUNT = -51401
USER_NOT_EXIST = -51402
USER_ALREADY_EXIST = -51403
INSUFFICIENT_BALANCE = -51404
BALANCE_OVERFLOW = -51405

TABLE_PREFIX = b"u_dag_transfer/"

_R_INVALID_USER_NAME = CallResult(INVALID_USER_NAME)
_R_INVALID_AMOUNT = CallResult(INVALID_AMOUNT)
_R_USER_NOT_EXIST = CallResult(USER_NOT_EXIST)
_R_USER_ALREADY_EXIST = CallResult(USER_ALREADY_EXIST)
_R_INSUFFICIENT_BALANCE = CallResult(INSUFFICIENT_BALANCE)
_R_BALANCE_OVERFLOW = CallResult(BALANCE_OVERFLOW)
_R_NO_PERMISSION = CallResult(NO_PERMISSION)


def user_key(user: str) -> bytes:
    """The state key of a user's record."""
    return TABLE_PREFIX + user.encode()


def parse_record(value: bytes) -> tuple[int, bytes]:
    """``(balance, owner)`` from a stored record; owner is ``b""`` when there is none."""
    return int.from_bytes(value[:32], "big"), value[32:]


@precompile("0x5002", "DagTransfer")
class DagTransfer(Precompile):
    def __init__(self, genesis: GenesisConfig) -> None:
        super().__init__(genesis)
        self.admins = frozenset(genesis.asset_admins)
        self.permissioned = bool(self.admins)

    def fast_methods(self) -> dict[str, FastMethod]:
        """Open mode only (permissioned mode needs the sender): the writers by name."""
        if self.permissioned:
            return {}
        return {
            "userAdd": _fast_add,
            "userSave": _fast_save,
            "userDraw": _fast_draw,
            "userTransfer": _fast_transfer,
        }

    def _may_spend(self, sender: bytes, owner: bytes) -> bool:
        if not self.permissioned:
            return True
        return sender == owner if owner else sender in self.admins

    @method(str, int, str, min_args=2)
    def userAdd(self, ctx: CallContext, user: str, balance: int, owner: str = "") -> CallResult:
        if self.permissioned and ctx.sender not in self.admins:
            return _R_NO_PERMISSION
        if not user:
            return _R_INVALID_USER_NAME
        try:
            owner_address = parse_address(owner) if owner else ctx.sender
        except ValueError:
            return CallResult(PRECOMPILED_ERROR)
        key = user_key(user)
        state = ctx.state
        if state.get(key) is not None:
            return _R_USER_ALREADY_EXIST
        record = balance.to_bytes(32, "big")
        state.put(key, record + owner_address if self.permissioned else record)
        return OK

    @method(str, int)
    def userSave(self, ctx: CallContext, user: str, amount: int) -> CallResult:
        if self.permissioned and ctx.sender not in self.admins:
            return _R_NO_PERMISSION
        if not user:
            return _R_INVALID_USER_NAME
        if amount == 0:
            return _R_INVALID_AMOUNT
        key = user_key(user)
        state = ctx.state
        value = state.get(key)
        if value is None:
            record = amount.to_bytes(32, "big")
            state.put(key, record + ctx.sender if self.permissioned else record)
            return OK
        balance = int.from_bytes(value[:32], "big") + amount
        if balance > UINT256_MAX:
            return _R_BALANCE_OVERFLOW
        state.put(key, balance.to_bytes(32, "big") + value[32:])
        return OK

    @method(str, int)
    def userDraw(self, ctx: CallContext, user: str, amount: int) -> CallResult:
        if not user:
            return _R_INVALID_USER_NAME
        if amount == 0:
            return _R_INVALID_AMOUNT
        key = user_key(user)
        state = ctx.state
        value = state.get(key)
        if value is None:
            return _R_USER_NOT_EXIST
        if self.permissioned and not self._may_spend(ctx.sender, value[32:]):
            return _R_NO_PERMISSION
        balance = int.from_bytes(value[:32], "big")
        if balance < amount:
            return _R_INSUFFICIENT_BALANCE
        state.put(key, (balance - amount).to_bytes(32, "big") + value[32:])
        return OK

    @method(str, readonly=True)
    def userBalance(self, ctx: CallContext, user: str) -> CallResult:
        """Status 0 and output ``[balance]`` (see node.tx.decode_values)."""
        if not user:
            return _R_INVALID_USER_NAME
        value = ctx.state.get(user_key(user))
        if value is None:
            return _R_USER_NOT_EXIST
        return CallResult(0, encode_values([int.from_bytes(value[:32], "big")]))

    @method(str, str, int)
    def userTransfer(self, ctx: CallContext, src: str, dst: str, amount: int) -> CallResult:
        if not src or not dst:
            return _R_INVALID_USER_NAME
        if amount == 0:
            return _R_INVALID_AMOUNT
        if src == dst:
            return OK
        state = ctx.state
        src_key = TABLE_PREFIX + src.encode()
        src_value = state.get(src_key)
        if src_value is None:
            return _R_USER_NOT_EXIST
        if self.permissioned and not self._may_spend(ctx.sender, src_value[32:]):
            return _R_NO_PERMISSION
        src_balance = int.from_bytes(src_value[:32], "big")
        if src_balance < amount:
            return _R_INSUFFICIENT_BALANCE
        dst_key = TABLE_PREFIX + dst.encode()
        dst_value = state.get(dst_key)
        if dst_value is None:
            dst_balance, dst_owner = 0, b""
        else:
            dst_balance, dst_owner = int.from_bytes(dst_value[:32], "big"), dst_value[32:]
        if dst_balance + amount > UINT256_MAX:
            return _R_BALANCE_OVERFLOW
        state.put(src_key, (src_balance - amount).to_bytes(32, "big") + src_value[32:])
        state.put(dst_key, (dst_balance + amount).to_bytes(32, "big") + dst_owner)
        return OK


# ------------------------------------------------------------------ the executor's fast path
#
# The open-mode writers as :data:`~node.ledger.precompiles.base.FastMethod`s: the checks of
# the methods above in the same order, after the executor's argument checks (count, exact
# types), without its dispatch, savepoint, overlay calls and result objects. Each writes
# only after every check passed, and hands back None (nothing written) wherever the general
# path would go past what it decides here: other argument shapes, a name with no UTF-8 form
# or too long for a state key, an amount outside uint256. tests/ledger/test_dag_fast_path.py
# holds them equal to the general path on random blocks.

Writes = dict[bytes, bytes | None]
Load = Callable[[bytes], bytes | None]
_from_bytes = int.from_bytes
"""Bound once, big-endian by default (3.11): ~0.1 us per call cheaper than
``int.from_bytes(value, "big")``, four conversions per transfer."""


def _fast_key(user: str) -> bytes | None:
    try:
        key = TABLE_PREFIX + user.encode()
    except UnicodeEncodeError:
        return None
    return key if len(key) <= MAX_STATE_KEY_LEN else None


def _fast_add(writes: Writes, load: Load, args: tuple[Any, ...]) -> int | None:
    if len(args) != 2:
        return None  # the optional owner is parsed by the general path
    user, balance = args
    if type(user) is not str or type(balance) is not int or not 0 <= balance <= UINT256_MAX:
        return None
    if not user:
        return INVALID_USER_NAME
    key = _fast_key(user)
    if key is None:
        return None
    if (writes[key] if key in writes else load(key)) is not None:
        return USER_ALREADY_EXIST
    writes[key] = balance.to_bytes(32)
    return SUCCESS


def _fast_user_amount(args: tuple[Any, ...]) -> tuple[bytes, int] | int | None:
    """userSave/userDraw arguments: (state key, amount), a status code for a bad name or
    amount, or None for what only the general path judges."""
    if len(args) != 2:
        return None
    user, amount = args
    if type(user) is not str or type(amount) is not int or not 0 <= amount <= UINT256_MAX:
        return None
    if not user:
        return INVALID_USER_NAME
    if amount == 0:
        return INVALID_AMOUNT
    key = _fast_key(user)
    return None if key is None else (key, amount)


def _fast_save(writes: Writes, load: Load, args: tuple[Any, ...]) -> int | None:
    parsed = _fast_user_amount(args)
    if not isinstance(parsed, tuple):
        return parsed
    key, amount = parsed
    value = writes[key] if key in writes else load(key)
    if value is None:
        writes[key] = amount.to_bytes(32)
        return SUCCESS
    balance = _from_bytes(value[:32]) + amount
    if balance > UINT256_MAX:
        return BALANCE_OVERFLOW
    writes[key] = balance.to_bytes(32) + value[32:]
    return SUCCESS


def _fast_draw(writes: Writes, load: Load, args: tuple[Any, ...]) -> int | None:
    parsed = _fast_user_amount(args)
    if not isinstance(parsed, tuple):
        return parsed
    key, amount = parsed
    value = writes[key] if key in writes else load(key)
    if value is None:
        return USER_NOT_EXIST
    balance = _from_bytes(value[:32])
    if balance < amount:
        return INSUFFICIENT_BALANCE
    writes[key] = (balance - amount).to_bytes(32) + value[32:]
    return SUCCESS


def _fast_transfer(writes: Writes, load: Load, args: tuple[Any, ...]) -> int | None:
    if len(args) != 3:
        return None
    src, dst, amount = args
    if (
        type(src) is not str
        or type(dst) is not str
        or type(amount) is not int
        or not 0 <= amount <= UINT256_MAX
    ):
        return None
    if not src or not dst:
        return INVALID_USER_NAME
    if amount == 0:
        return INVALID_AMOUNT
    if src == dst:
        return SUCCESS
    try:
        src_key = TABLE_PREFIX + src.encode()
        dst_key = TABLE_PREFIX + dst.encode()
    except UnicodeEncodeError:
        return None
    if len(src_key) > MAX_STATE_KEY_LEN or len(dst_key) > MAX_STATE_KEY_LEN:
        return None
    src_value = writes[src_key] if src_key in writes else load(src_key)
    if src_value is None:
        return USER_NOT_EXIST
    src_balance = _from_bytes(src_value[:32])
    if src_balance < amount:
        return INSUFFICIENT_BALANCE
    dst_value = writes[dst_key] if dst_key in writes else load(dst_key)
    if dst_value is None:
        dst_balance, dst_owner = 0, b""
    else:
        dst_balance, dst_owner = _from_bytes(dst_value[:32]), dst_value[32:]
    if dst_balance + amount > UINT256_MAX:
        return BALANCE_OVERFLOW
    writes[src_key] = (src_balance - amount).to_bytes(32) + src_value[32:]
    writes[dst_key] = (dst_balance + amount).to_bytes(32) + dst_owner
    return SUCCESS
