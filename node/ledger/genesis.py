"""The genesis configuration every node of a group must agree on, and its block 0.

It fixes the chain and group ids, the initial sealers and observers, who may mint assets
(``asset_admins``; empty means open mode), who may change system config (``governors``)
and the starting system config values. Its canonical encoding is hashed into block 0's
``extra_data``, so nodes with different genesis files disagree from the first block.
Files are TOML (read with :mod:`tomllib`; written by hand, the format is flat).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consensus.codec import DecodeError, pack, unpack
from consensus.crypto import ADDRESS_SIZE, PUBLIC_KEY_SIZE, hash32
from consensus.messages import MAX_SEALERS
from node.ledger.accounts import format_address, parse_address
from node.ledger.block import EMPTY_ROOT, MAX_BLOCK_TXS, Block, BlockHeader
from node.ledger.tx import check_name
from storage.ledger import BlockCommit
from storage.state_root import GENESIS_STATE_ROOT

GENESIS_VERSION = 0

SYSTEM_CONFIG_BOUNDS: dict[str, tuple[int, int]] = {
    "tx_count_limit": (1, MAX_BLOCK_TXS),
    "consensus_timeout": (3, 3600),
    "leader_period": (1, 1000),
}
"""Allowed ``[min, max]`` of each system config key (seconds for consensus_timeout)."""

SYSTEM_CONFIG_DEFAULTS: dict[str, int] = {
    "tx_count_limit": 1000,
    "consensus_timeout": 3,
    "leader_period": 1,
}


class GenesisError(ValueError):
    """A genesis configuration that is malformed or inconsistent."""


@dataclass(frozen=True, slots=True)
class GenesisConfig:
    chain_id: str = "chain0"
    group_id: str = "group0"
    sealers: tuple[bytes, ...] = ()
    """64-byte node public keys, in sealer-index order."""
    observers: tuple[bytes, ...] = ()
    asset_admins: tuple[bytes, ...] = ()
    """Addresses that may mint; empty means open mode (anyone may do anything)."""
    governors: tuple[bytes, ...] = ()
    """Addresses that may set system config values."""
    tx_count_limit: int = SYSTEM_CONFIG_DEFAULTS["tx_count_limit"]
    consensus_timeout: int = SYSTEM_CONFIG_DEFAULTS["consensus_timeout"]
    leader_period: int = SYSTEM_CONFIG_DEFAULTS["leader_period"]
    timestamp: int = 0
    """Milliseconds since the epoch; block 0's timestamp."""

    def __post_init__(self) -> None:
        for name in ("sealers", "observers", "asset_admins", "governors"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise GenesisError(f"{name} must be a list")
            object.__setattr__(self, name, tuple(value))
        for name in ("chain_id", "group_id"):
            try:  # the transaction's rule, or no transaction could name this chain
                check_name(getattr(self, name), name)
            except ValueError as exc:
                raise GenesisError(str(exc)) from None
        for name, size in (
            ("sealers", PUBLIC_KEY_SIZE),
            ("observers", PUBLIC_KEY_SIZE),
            ("asset_admins", ADDRESS_SIZE),
            ("governors", ADDRESS_SIZE),
        ):
            items = getattr(self, name)
            if any(type(x) is not bytes or len(x) != size for x in items):
                raise GenesisError(f"every entry of {name} must be {size} bytes")
            if len(set(items)) != len(items):
                raise GenesisError(f"{name} lists an entry twice")
        if len(self.sealers) > MAX_SEALERS or len(self.observers) > MAX_SEALERS:
            raise GenesisError(f"at most {MAX_SEALERS} sealers and {MAX_SEALERS} observers")
        if set(self.sealers) & set(self.observers):
            raise GenesisError("a node cannot be both sealer and observer")
        for key, (lo, hi) in SYSTEM_CONFIG_BOUNDS.items():
            value = getattr(self, key)
            if type(value) is not int or not lo <= value <= hi:
                raise GenesisError(f"{key} must be an int in [{lo}, {hi}]")
        if type(self.timestamp) is not int or not 0 <= self.timestamp < 2**64:
            raise GenesisError("timestamp must be a uint64 (milliseconds)")

    @property
    def open_mode(self) -> bool:
        """True when there are no asset admins: FISCO's perf-test semantics."""
        return not self.asset_admins

    def system_config_defaults(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in SYSTEM_CONFIG_BOUNDS}

    # ------------------------------------------------------------------ canonical form

    def encode(self) -> bytes:
        return pack(
            [
                GENESIS_VERSION,
                self.chain_id,
                self.group_id,
                list(self.sealers),
                list(self.observers),
                list(self.asset_admins),
                list(self.governors),
                self.tx_count_limit,
                self.consensus_timeout,
                self.leader_period,
                self.timestamp,
            ]
        )

    @property
    def hash(self) -> bytes:
        return hash32(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> GenesisConfig:
        f = unpack(data)
        if type(f) is not list or len(f) != 11 or f[0] != GENESIS_VERSION:
            raise DecodeError("genesis: expected a version-0 list of 11 fields")
        try:
            genesis = cls(
                chain_id=f[1],
                group_id=f[2],
                sealers=f[3],
                observers=f[4],
                asset_admins=f[5],
                governors=f[6],
                tx_count_limit=f[7],
                consensus_timeout=f[8],
                leader_period=f[9],
                timestamp=f[10],
            )
        except GenesisError as exc:
            raise DecodeError(f"genesis: {exc}") from None
        if genesis.encode() != data:
            raise DecodeError("genesis: not the canonical encoding")
        return genesis

    def block(self) -> Block:
        """Block 0: no transactions, the empty state, the genesis hash in ``extra_data``."""
        header = BlockHeader(
            number=0,
            parent_hash=bytes(32),
            timestamp=self.timestamp,
            tx_root=EMPTY_ROOT,
            receipt_root=EMPTY_ROOT,
            state_root=GENESIS_STATE_ROOT,
            sealer=0,
            sealer_list=self.sealers,
            extra_data=self.hash,
        )
        return Block(header)

    def block_commit(self) -> BlockCommit:
        """What :meth:`storage.ledger.LedgerStore.commit_block` needs to store block 0."""
        block = self.block()
        return BlockCommit(
            number=0,
            block_hash=block.hash,
            block=block.encode(),
            tx_hashes=(),
            receipts=(),
            state_writes=(),
            state_root=GENESIS_STATE_ROOT,
        )

    # ------------------------------------------------------------------ TOML

    @classmethod
    def from_toml(cls, text: str) -> GenesisConfig:
        """Parse a genesis file; unknown tables or keys are errors (they are typos)."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise GenesisError(f"genesis is not valid TOML: {exc}") from None
        except RecursionError:  # tomllib recurses once per level of nesting
            raise GenesisError("genesis is not valid TOML: nested too deeply") from None
        known = {
            "chain": {"chain_id", "group_id", "timestamp"},
            "consensus": {"sealers", "observers"},
            "assets": {"admins"},
            "governance": {"governors"},
            "system_config": set(SYSTEM_CONFIG_BOUNDS),
        }
        for table, body in doc.items():
            if table not in known or not isinstance(body, dict):
                raise GenesisError(f"unknown genesis table [{table}]")
            for key in body:
                if key not in known[table]:
                    raise GenesisError(f"unknown genesis key {table}.{key}")

        def get(table: str, key: str, default: Any) -> Any:
            return doc.get(table, {}).get(key, default)

        def keys(table: str, key: str) -> tuple[bytes, ...]:
            values = get(table, key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise GenesisError(f"{table}.{key} must be a list of hex strings")
            try:
                return tuple(bytes.fromhex(v.removeprefix("0x")) for v in values)
            except ValueError:
                raise GenesisError(f"{table}.{key}: not hex") from None

        def addresses(table: str, key: str) -> tuple[bytes, ...]:
            values = get(table, key, [])
            if not isinstance(values, list):
                raise GenesisError(f"{table}.{key} must be a list of addresses")
            try:
                return tuple(parse_address(v) if isinstance(v, str) else b"" for v in values)
            except ValueError as exc:
                raise GenesisError(f"{table}.{key}: {exc}") from None

        defaults = SYSTEM_CONFIG_DEFAULTS
        return cls(
            chain_id=get("chain", "chain_id", "chain0"),
            group_id=get("chain", "group_id", "group0"),
            timestamp=get("chain", "timestamp", 0),
            sealers=keys("consensus", "sealers"),
            observers=keys("consensus", "observers"),
            asset_admins=addresses("assets", "admins"),
            governors=addresses("governance", "governors"),
            **{k: get("system_config", k, defaults[k]) for k in SYSTEM_CONFIG_BOUNDS},
        )

    def to_toml(self) -> str:
        def strings(items: list[str]) -> str:
            if not items:
                return "[]"
            return "[\n" + "".join(f'  "{s}",\n' for s in items) + "]"

        lines = [
            "# ledgerlab genesis: every node of the group must have the same file.",
            "[chain]",
            f'chain_id = "{_toml_str(self.chain_id)}"',
            f'group_id = "{_toml_str(self.group_id)}"',
            f"timestamp = {self.timestamp}",
            "",
            "[consensus]",
            "# node public keys (64 bytes hex), in sealer-index order",
            f"sealers = {strings([k.hex() for k in self.sealers])}",
            f"observers = {strings([k.hex() for k in self.observers])}",
            "",
            "[assets]",
            (
                "# accounts allowed to mint (userAdd); an empty list means open mode"
                if self.asset_admins
                else "# empty: open mode (anyone may mint and move any balance, "
                "FISCO perf-test rules)"
            ),
            f"admins = {strings([format_address(a) for a in self.asset_admins])}",
            "",
            "[governance]",
            "# accounts allowed to call SystemConfig.setValueByKey",
            f"governors = {strings([format_address(a) for a in self.governors])}",
            "",
            "[system_config]",
            *(f"{key} = {getattr(self, key)}" for key in SYSTEM_CONFIG_BOUNDS),
            "",
        ]
        return "\n".join(lines)

    @classmethod
    def load(cls, path: str | Path) -> GenesisConfig:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise GenesisError(f"cannot read genesis file {path}: {exc}") from None
        return cls.from_toml(text)

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(self.to_toml(), encoding="utf-8")


def _toml_str(value: str) -> str:
    """Escape a string for a TOML basic string."""
    out = []
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)
