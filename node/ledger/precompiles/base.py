"""What a precompile is: a class at an address with named, typed methods.

A precompile module decorates its class with :func:`precompile` and its methods with
:func:`method`; importing the module registers it. :mod:`node.ledger.precompiles` imports every
module of the package, so adding a precompile means adding one file.

A method is called as ``method(self, ctx, *args)`` after the executor has checked the
argument count and types against the declaration, and returns a :class:`CallResult`.
It reads and writes state only through ``ctx.state``; the executor undoes the writes of
a call that does not return status 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar

from node.ledger.accounts import parse_address
from node.ledger.block import LogEvent
from node.ledger.genesis import GenesisConfig

# Status codes (FISCO BCOS 2.x). Precompile-specific codes are negative; 0 is success.
SUCCESS = 0
PRECOMPILED_ERROR = 21
"""Wrong argument count or types, or an exception inside a precompile."""
CALL_ADDRESS_ERROR = 26
"""No precompile at the transaction's ``to`` address."""
NO_PERMISSION = -50000
"""FISCO's CODE_NO_AUTHORIZED: the sender may not do this."""
UNKNOWN_FUNCTION = -50100
"""FISCO's CODE_UNKNOW_FUNCTION_CALL: the precompile has no such method."""


class State(Protocol):
    """The state a method sees: the block's overlay (or a throwaway one for ``call``)."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class SystemConfigValues:
    """System config in force for a block: read from the parent block's state."""

    tx_count_limit: int
    consensus_timeout: int
    leader_period: int


@dataclass(slots=True)
class CallContext:
    """Who is calling, on what state, in which block, under which configuration."""

    sender: bytes
    state: State
    block_number: int
    genesis: GenesisConfig
    config: SystemConfigValues


class CallResult(NamedTuple):
    status: int
    output: bytes = b""
    events: tuple[LogEvent, ...] = ()


OK = CallResult(SUCCESS)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    func: Callable[..., CallResult]
    arg_types: tuple[type, ...]
    min_args: int
    readonly: bool


FastMethod = Callable[
    [dict[bytes, bytes | None], Callable[[bytes], bytes | None], tuple[Any, ...]], int | None
]
"""A method's specialised form for the executor's block loop: ``fast(writes, load, args)``
on the block overlay's :meth:`~storage.overlay.StateOverlay.direct` parts returns the
status the method would return through the executor, having written what it would, or
None when it does not decide (nothing written: the executor then takes the general path).
It writes only once it cannot fail (there is no savepoint), only keys and values the
overlay's ``put`` accepts, and needs no sender or block number."""


class Precompile:
    """Base class; one instance per executor, built from the genesis config."""

    address: ClassVar[bytes]
    name: ClassVar[str]
    methods: ClassVar[dict[str, MethodSpec]]

    def __init__(self, genesis: GenesisConfig) -> None:
        self.genesis = genesis

    def fast_methods(self) -> dict[str, FastMethod]:
        """Methods with a :data:`FastMethod` form, by name (none by default). Each must
        give the very receipt and writes the general path gives, for every input."""
        return {}


F = TypeVar("F", bound=Callable[..., CallResult])
P = TypeVar("P", bound=type[Precompile])

_REGISTRY: dict[bytes, type[Precompile]] = {}


def method(
    *arg_types: type, min_args: int | None = None, readonly: bool = False
) -> Callable[[F], F]:
    """Declare a callable method taking ``arg_types`` (``str`` or ``int`` = uint256).

    Trailing arguments beyond ``min_args`` are optional; ``readonly`` methods never
    write and are what clients use with ``call``.
    """
    for t in arg_types:
        if t not in (str, int):
            raise TypeError("precompile arguments are str or int (uint256)")

    def mark(func: F) -> F:
        func.__precompile_method__ = (  # type: ignore[attr-defined]
            tuple(arg_types),
            len(arg_types) if min_args is None else min_args,
            readonly,
        )
        return func

    return mark


def precompile(address: str | int, name: str | None = None) -> Callable[[P], P]:
    """Register the decorated class at ``address`` (e.g. ``"0x5002"``)."""
    raw = parse_address(address)

    def register(cls: P) -> P:
        if raw in _REGISTRY:
            raise RuntimeError(
                f"two precompiles at {address}: {_REGISTRY[raw].__name__}, {cls.__name__}"
            )
        methods: dict[str, MethodSpec] = {}
        for attr, value in vars(cls).items():
            spec: Any = getattr(value, "__precompile_method__", None)
            if spec is not None:
                methods[attr] = MethodSpec(attr, value, spec[0], spec[1], spec[2])
        cls.address = raw
        cls.name = name or cls.__name__
        cls.methods = methods
        _REGISTRY[raw] = cls
        return cls

    return register


def registered() -> dict[bytes, type[Precompile]]:
    """Every registered precompile class by address (import node.ledger.precompiles first)."""
    return dict(sorted(_REGISTRY.items()))
