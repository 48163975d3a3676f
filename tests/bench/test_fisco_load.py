"""``bench --format fisco``'s load, read back with independent libraries (rlp, eth-abi,
eth-keys, eth-hash): FISCO 2.x transactions a FISCO node would take."""

from __future__ import annotations

import random
from pathlib import Path

import eth_abi
import pytest
import rlp
from eth_keys import KeyAPI
from eth_keys.backends import NativeECCBackend

from consensus.crypto import KeyPair
from scripts.bench_load import FORMATS, INITIAL_BALANCE, FiscoDagTransferLoad
from scripts.errors import CommandError
from scripts.launcher.layout import Chain
from tests.ledger.fisco_support import keccak, selector

KEYS = KeyAPI(NativeECCBackend)
SECRET = bytes.fromhex("42" * 32)


def chain(chain_id: str = "1", group_id: str = "1") -> Chain:
    return Chain(Path("/nonexistent"), chain_id, group_id, "tcp", "", 0, 0, False, ())


def sender_of(items: list[bytes]) -> bytes:
    v, r, s = (int.from_bytes(x, "big") for x in items[10:])
    digest = keccak(rlp.encode(items[:10]))
    sig = KEYS.Signature(vrs=(v - 27, r, s))
    return sig.recover_public_key_from_msg_hash(digest).to_canonical_address()


def test_fisco_load_is_fisco_format_dagtransfer() -> None:
    load = FORMATS["fisco"](chain(), KeyPair.from_secret(SECRET), 5)
    assert isinstance(load, FiscoDagTransferLoad)
    me = KEYS.PrivateKey(SECRET).public_key.to_canonical_address()
    setup = load.setup_txs(block_limit=600)
    assert len(setup) == 5
    for (tx_hash, raw), user in zip(setup, load.users, strict=True):
        items = rlp.decode(raw)
        assert len(items) == 13 and tx_hash == "0x" + keccak(raw).hex()
        assert items[4] == bytes(18) + b"\x50\x02" and items[3] == (600).to_bytes(2, "big")
        assert items[7] == b"\x01" and items[8] == b"\x01"  # fiscoChainId, groupId
        data = items[6]
        assert data[:4] == selector("userAdd(string,uint256)")
        assert eth_abi.decode(["string", "uint256"], data[4:]) == (user, INITIAL_BALANCE)
        assert sender_of(items) == me
    rng = random.Random(3)
    for _ in range(20):
        _, raw = load.load_tx(rng, block_limit=700)
        items = rlp.decode(raw)
        assert items[6][:4] == selector("userTransfer(string,string,uint256)")
        src, dst, amount = eth_abi.decode(["string", "string", "uint256"], items[6][4:])
        assert src != dst and {src, dst} <= set(load.users) and 1 <= amount <= 100
        assert sender_of(items) == me
    assert load.expected_total == 5 * INITIAL_BALANCE


def test_fisco_load_needs_numeric_ids() -> None:
    with pytest.raises(CommandError, match="numeric chain and group ids"):
        FiscoDagTransferLoad(chain("chain0", "group0"), KeyPair.from_secret(SECRET), 2)
