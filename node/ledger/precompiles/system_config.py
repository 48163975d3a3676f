"""SystemConfig (0x1000): chain-wide settings changed by transaction.

``setValueByKey(key, value)`` and ``getValueByKey(key)`` with FISCO BCOS's string
values (decimal digits). Keys and bounds are in :data:`node.ledger.genesis.SYSTEM_CONFIG_BOUNDS`
(tx_count_limit, consensus_timeout in seconds, leader_period). Only genesis governors may
set (-50000 otherwise); an unknown key or a value that is not a decimal in bounds is
-51300 (FISCO's CODE_INVALID_CONFIGURATION_VALUES). A change takes effect from the next
block: the executor reads :func:`read_system_config` from the parent's state when a
block starts, while ``getValueByKey`` answers with the latest written value.

State: key ``s_config/<key>``; value the decimal string. Absent keys mean the genesis
value.
"""

from __future__ import annotations

from consensus.crypto import hash32
from node.ledger.block import LogEvent
from node.ledger.genesis import SYSTEM_CONFIG_BOUNDS, GenesisConfig
from node.ledger.precompiles.base import (
    NO_PERMISSION,
    CallContext,
    CallResult,
    Precompile,
    SystemConfigValues,
    method,
    precompile,
)
from node.ledger.tx import encode_values
from storage.overlay import StateReader

INVALID_CONFIGURATION_VALUES = -51300
TABLE_PREFIX = b"s_config/"
SET_TOPIC = hash32(b"setValueByKey(string,string)")


def config_key(key: str) -> bytes:
    return TABLE_PREFIX + key.encode()


def read_system_config(state: StateReader, genesis: GenesisConfig) -> SystemConfigValues:
    """The values in ``state``, falling back to genesis for keys never set."""
    values = genesis.system_config_defaults()
    for key in values:
        raw = state.get(config_key(key))
        if raw is not None:
            values[key] = int(raw)
    return SystemConfigValues(**values)


def _parse_value(key: str, value: str) -> int | None:
    bounds = SYSTEM_CONFIG_BOUNDS.get(key)
    if bounds is None or not (value.isascii() and value.isdigit()) or len(value) > 20:
        return None
    number = int(value)
    return number if bounds[0] <= number <= bounds[1] else None


@precompile("0x1000", "SystemConfig")
class SystemConfig(Precompile):
    def __init__(self, genesis: GenesisConfig) -> None:
        super().__init__(genesis)
        self.governors = frozenset(genesis.governors)

    @method(str, str)
    def setValueByKey(self, ctx: CallContext, key: str, value: str) -> CallResult:
        if ctx.sender not in self.governors:
            return CallResult(NO_PERMISSION)
        number = _parse_value(key, value)
        if number is None:
            return CallResult(INVALID_CONFIGURATION_VALUES)
        ctx.state.put(config_key(key), str(number).encode())
        event = LogEvent(self.address, (SET_TOPIC,), encode_values([key, str(number)]))
        return CallResult(0, b"", (event,))

    @method(str, readonly=True)
    def getValueByKey(self, ctx: CallContext, key: str) -> CallResult:
        """Status 0 and output ``[value as a decimal string]``."""
        if key not in SYSTEM_CONFIG_BOUNDS:
            return CallResult(INVALID_CONFIGURATION_VALUES)
        raw = ctx.state.get(config_key(key))
        value = raw.decode() if raw is not None else str(getattr(ctx.genesis, key))
        return CallResult(0, encode_values([value]))
