"""Genesis config: validation, canonical encoding, TOML round trip, block 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.codec import DecodeError
from node.ledger.block import EMPTY_ROOT, Block
from node.ledger.genesis import GenesisConfig, GenesisError
from storage.state_root import GENESIS_STATE_ROOT
from tests.ledger.support import ADMIN, ALICE, GOVERNOR, SEALERS, permissioned_genesis


def test_defaults_and_modes() -> None:
    g = GenesisConfig()
    assert (g.tx_count_limit, g.consensus_timeout, g.leader_period) == (1000, 3, 1)
    assert g.open_mode
    assert not permissioned_genesis().open_mode


def test_encode_decode_and_hash() -> None:
    g = permissioned_genesis(timestamp=123)
    assert GenesisConfig.decode(g.encode()) == g
    assert g.hash != permissioned_genesis(timestamp=124).hash
    with pytest.raises(DecodeError):
        GenesisConfig.decode(b"\x90")
    with pytest.raises(DecodeError):
        GenesisConfig.decode(g.encode()[:-1])


def test_toml_round_trip(tmp_path: Path) -> None:
    g = GenesisConfig(
        chain_id='ch"ain\\1',
        group_id="group7",
        sealers=SEALERS[:3],
        observers=SEALERS[3:],
        asset_admins=(ADMIN.address,),
        governors=(GOVERNOR.address, ALICE.address),
        tx_count_limit=2000,
        consensus_timeout=4,
        leader_period=2,
        timestamp=1_700_000_000_000,
    )
    path = tmp_path / "genesis.toml"
    g.dump(path)
    assert GenesisConfig.load(path) == g
    assert GenesisConfig.from_toml(GenesisConfig().to_toml()) == GenesisConfig()


def test_toml_minimal_file_uses_defaults() -> None:
    g = GenesisConfig.from_toml('[chain]\nchain_id = "c1"\n')
    assert g.chain_id == "c1" and g.group_id == "group0" and g.tx_count_limit == 1000


@pytest.mark.parametrize(
    "text",
    [
        "[chain\n",
        "[chian]\nchain_id = 'x'\n",
        "[chain]\nchainid = 'x'\n",
        "[system_config]\ntx_count_limit = 0\n",
        "[system_config]\nconsensus_timeout = 2\n",
        "[system_config]\nleader_period = true\n",
        "[consensus]\nsealers = ['zz']\n",
        "[consensus]\nsealers = ['00']\n",
        "[consensus]\nsealers = 5\n",
        "[assets]\nadmins = ['0xnope']\n",
        "[assets]\nadmins = [5]\n",
        "[governance]\ngovernors = '0x1'\n",
        "[chain]\ntimestamp = -1\n",
        "[chain]\nchain_id = ''\n",
        "chain = 5\n",
    ],
)
def test_bad_toml(text: str) -> None:
    with pytest.raises(GenesisError):
        GenesisConfig.from_toml(text)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GenesisError):
        GenesisConfig.load(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "kw",
    [
        dict(sealers=(SEALERS[0], SEALERS[0])),
        dict(sealers=SEALERS, observers=SEALERS[:1]),
        dict(governors=(b"\x00" * 19,)),
        dict(tx_count_limit=10_001),
        dict(chain_id=5),
    ],
)
def test_validation(kw: dict[str, object]) -> None:
    with pytest.raises(GenesisError):
        GenesisConfig(**kw)  # type: ignore[arg-type]


def test_block_zero() -> None:
    g = permissioned_genesis(timestamp=99)
    block = g.block()
    h = block.header
    assert (h.number, h.parent_hash, h.timestamp) == (0, bytes(32), 99)
    assert (h.tx_root, h.receipt_root, h.state_root) == (EMPTY_ROOT, EMPTY_ROOT, GENESIS_STATE_ROOT)
    assert h.sealer_list == SEALERS and h.extra_data == g.hash
    assert Block.decode(block.encode()) == block
    commit = g.block_commit()
    assert (commit.number, commit.block_hash, commit.block) == (0, block.hash, block.encode())
