"""Native contracts by address. Every module in this package is imported here, so a
precompile registers itself just by existing (see :mod:`node.ledger.precompiles.base`)."""

from __future__ import annotations

import importlib
import pkgutil

from node.ledger.precompiles.base import (
    CALL_ADDRESS_ERROR,
    NO_PERMISSION,
    PRECOMPILED_ERROR,
    SUCCESS,
    UNKNOWN_FUNCTION,
    CallContext,
    CallResult,
    MethodSpec,
    Precompile,
    SystemConfigValues,
    method,
    precompile,
    registered,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "CALL_ADDRESS_ERROR",
    "NO_PERMISSION",
    "PRECOMPILED_ERROR",
    "SUCCESS",
    "UNKNOWN_FUNCTION",
    "CallContext",
    "CallResult",
    "MethodSpec",
    "Precompile",
    "SystemConfigValues",
    "method",
    "precompile",
    "registered",
]
