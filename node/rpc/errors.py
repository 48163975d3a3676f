"""Every error code the JSON-RPC door can answer with, defined once.

Three families share the ``error.code`` field of a JSON-RPC response:

* the JSON-RPC 2.0 spec codes (-32700 .. -32603) plus our server codes (-32000 ..);
* FISCO BCOS 2.x RPC codes (-40001 ..) for lookups that name something absent;
* FISCO BCOS transaction-pool statuses (10000 .. 10008) for a rejected transaction, with
  the same numbers FISCO returns, so a FISCO user recognises ``10004`` as "already in
  the pool", and ledgerlab's own refusals after them (10009 ..). ``error.data`` then
  holds ``{"reason": <name>, "status": "0x2714"}``.

``docs/rpc.md`` renders this table; keep the two in step.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """All ``error.code`` values; the member name is the stable reason string."""

    # JSON-RPC 2.0 spec.
    ParseError = -32700
    InvalidRequest = -32600
    MethodNotFound = -32601
    InvalidParams = -32602
    InternalError = -32603
    # Server-defined (the spec reserves -32000 .. -32099 for these).
    RequestTooLarge = -32000
    BatchTooLarge = -32001
    ResponseTooLarge = -32002
    # FISCO BCOS 2.x RPC codes.
    GroupNotFound = -40001
    BlockHashNotFound = -40003
    BlockNumberNotFound = -40004
    InvalidSystemConfig = -40008
    NotReady = -40010
    # FISCO BCOS txpool statuses (TransactionStatus 10000 ..).
    NonceCheckFail = 10000
    BlockLimitCheckFail = 10001
    TxPoolIsFull = 10002
    Malformed = 10003
    AlreadyKnown = 10004
    AlreadyInChain = 10005
    InvalidChainId = 10006
    InvalidGroupId = 10007
    InvalidSignature = 10008
    Quarantined = 10009  # ledgerlab's own: executing the tx hit a bug of ours
    # ledgerlab's own: a Consensus-precompile call whose new sealer set would have fewer
    # members connected to this node than its quorum; sendRawTransaction's {"force": true}
    # submits it anyway.
    MembershipBreaksQuorum = 10010
    # ledgerlab's own: sendRawTransaction to a free node (in neither the sealer nor the
    # observer list at its head): the members do not talk to it, nothing it took could
    # commit; send to a member.
    NotAGroupMember = 10011
    # ledgerlab's own: the node cannot write its data directory (disk full, read-only);
    # it takes no transaction until a write works again. Send to another node.
    StorageUnavailable = 10012


#: Default human message per code (the reason name is always in ``data`` too).
MESSAGES: dict[ErrorCode, str] = {
    ErrorCode.ParseError: "Parse error",
    ErrorCode.InvalidRequest: "Invalid Request",
    ErrorCode.MethodNotFound: "Method not found",
    ErrorCode.InvalidParams: "Invalid params",
    ErrorCode.InternalError: "Internal error",
    ErrorCode.RequestTooLarge: "Request body too large",
    ErrorCode.BatchTooLarge: "Batch too large",
    ErrorCode.ResponseTooLarge: "Response too large",
    ErrorCode.GroupNotFound: "GroupID does not exist",
    ErrorCode.BlockHashNotFound: "BlockHash does not exist",
    ErrorCode.BlockNumberNotFound: "BlockNumber does not exist",
    ErrorCode.InvalidSystemConfig: "Invalid System Config",
    ErrorCode.NotReady: "RPC module initialization is incomplete",
    ErrorCode.NonceCheckFail: "NonceCheckFail",
    ErrorCode.BlockLimitCheckFail: "BlockLimitCheckFail",
    ErrorCode.TxPoolIsFull: "TxPoolIsFull",
    ErrorCode.Malformed: "Malformed",
    ErrorCode.AlreadyKnown: "AlreadyKnown",
    ErrorCode.AlreadyInChain: "AlreadyInChain",
    ErrorCode.InvalidChainId: "InvalidChainId",
    ErrorCode.InvalidGroupId: "InvalidGroupId",
    ErrorCode.InvalidSignature: "InvalidSignature",
    ErrorCode.Quarantined: "Quarantined",
    ErrorCode.MembershipBreaksQuorum: "MembershipBreaksQuorum",
    ErrorCode.NotAGroupMember: "NotAGroupMember",
    ErrorCode.StorageUnavailable: "StorageUnavailable",
}

#: The txpool rejection reasons a backend may report, by name.
TXPOOL_REASONS: frozenset[str] = frozenset(c.name for c in ErrorCode if 10000 <= c.value <= 10999)


class RpcError(Exception):
    """A JSON-RPC error object: raised by methods (or a backend), rendered by the dispatcher.

    The client raises the same class for an error it received, so callers on both sides
    match on ``code``.
    """

    def __init__(self, code: int, message: str | None = None, data: Any = None) -> None:
        if message is None:
            try:
                message = MESSAGES[ErrorCode(code)]
            except ValueError:
                message = f"error {code}"
        super().__init__(message)
        self.code = int(code)
        self.message = message
        self.data = data

    @property
    def reason(self) -> str | None:
        """The :class:`ErrorCode` name of ``code`` (``None`` for a code we do not define)."""
        try:
            return ErrorCode(self.code).name
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        """The ``error`` member of a response."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out

    def __repr__(self) -> str:
        return f"RpcError({self.code}, {self.message!r})"


def invalid_params(message: str) -> RpcError:
    return RpcError(ErrorCode.InvalidParams, f"Invalid params: {message}")


def txpool_error(reason: str, detail: str = "") -> RpcError:
    """The error for a txpool rejection named ``reason`` (one of :data:`TXPOOL_REASONS`)."""
    if reason not in TXPOOL_REASONS:
        return RpcError(ErrorCode.InternalError, f"backend reported unknown rejection {reason!r}")
    code = ErrorCode[reason]
    message = f"{reason}: {detail}" if detail else reason
    return RpcError(code, message, {"reason": reason, "status": hex(code.value)})
