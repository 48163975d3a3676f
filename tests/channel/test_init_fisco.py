"""What ``init --fisco`` writes, read back the way the clients read it (no nodes run)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import eth_abi
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from eth_keys import KeyAPI
from eth_keys.backends import NativeECCBackend

from node.ledger.genesis import GenesisConfig
from node.ledger.tx import SignedTransaction, VerifiedTx
from node.runtime.config import NodeConfig
from scripts.launcher import accounts, expand, hosts
from scripts.launcher.layout import init_chain, load_chain
from tests.cli.conftest import assert_one_line_error, run_cli
from tests.ledger import fisco_support as fs
from tests.ledger.support import Chain as Ledger
from tests.ledger.support import make_tx

KEYS = KeyAPI(NativeECCBackend)


def test_init_fisco_writes_what_caliper_and_the_sdks_read(tmp_path: Path) -> None:
    chain = init_chain(tmp_path / "c", nodes=4, fisco=True, channel_port=24100,
                       p2p_port=24200, rpc_port=24300, chain_id="1", group_id="1")  # fmt: skip
    again = load_chain(chain.root)
    ids = (again.chain_id, again.group_id, again.fisco, again.channel_port)
    assert ids == ("1", "1", True, 24100)
    assert [n.channel for n in again.nodes] == [f"127.0.0.1:{24100 + i}" for i in range(4)]
    for n in again.nodes:
        assert NodeConfig.load(n.config_path).channel_listen == n.channel
        cert = x509.load_pem_x509_certificates((n.home / "conf" / "channel.crt").read_bytes())
        key = cert[0].public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256k1"
    sdk = chain.root / "sdk"
    sdk_cert = x509.load_pem_x509_certificates((sdk / "sdk.crt").read_bytes())
    assert len(sdk_cert) == 2  # the SDK certificate, then the agency's
    assert b"BEGIN PRIVATE KEY" in (sdk / "sdk.key").read_bytes()  # PKCS#8 (java-sdk)

    net = json.loads((chain.root / "fisco/caliper/networks/fisco-bcos.json").read_text())
    assert net["caliper"]["blockchain"] == "fisco-bcos"
    fisco = net["fisco-bcos"]
    assert fisco["network"]["groupID"] == 1
    assert [(n["rpcPort"], n["channelPort"]) for n in fisco["network"]["nodes"]] == [
        (str(24300 + i), str(24100 + i)) for i in range(4)
    ]
    assert all(Path(p).is_file() for p in fisco["network"]["authentication"].values())
    admin = accounts.load_key(chain.accounts_dir / "admin.key")
    assert fisco["config"]["privateKey"] == admin.secret.hex()
    address = KEYS.PrivateKey(admin.secret).public_key.to_checksum_address().lower()
    assert fisco["config"]["account"] == address  # the Keccak address, by eth-keys
    assert fisco["smartContracts"][0]["address"].endswith("5002")
    workload = (chain.root / "fisco/caliper/benchmarks/dagtransfer.js").read_text()
    assert "module.exports.createWorkloadModule = createWorkloadModule;" in workload
    assert "dagtransfer.js" in (chain.root / "fisco/caliper/benchmarks/config.yaml").read_text()

    settings: dict[str, object] = {}
    exec((chain.root / "fisco/python-sdk/client_config.py").read_text(), settings)
    assert (settings["fiscoChainId"], settings["groupid"]) == (1, 1)
    assert settings["channel_port"] == 24100 and settings["client_protocol"] == "channel"
    java = tomllib.loads((chain.root / "fisco/java-sdk/config.toml").read_text())
    assert java["network"]["peers"] == [f"127.0.0.1:{24100 + i}" for i in range(4)]
    abi = json.loads((chain.root / "fisco/abi/DagTransfer.abi").read_text())
    assert {e["name"] for e in abi} == {"userAdd", "userSave", "userDraw", "userBalance",
                                        "userTransfer"}  # fmt: skip

    _, node4 = expand.create_node(again)  # add-node: its own channel port and cert
    assert node4.channel == "127.0.0.1:24104"
    assert NodeConfig.load(node4.config_path).channel_listen == node4.channel
    assert (node4.home / "conf" / "channel.crt").is_file()
    assert load_chain(chain.root).nodes[-1].channel == node4.channel


def test_init_fisco_across_hosts_gives_each_host_its_channel_ports(tmp_path: Path) -> None:
    chain = hosts.init_hosts(tmp_path / "h", "127.0.0.1:2,127.0.0.2:1", fisco=True,
                             channel_port=24600, chain_id="1", group_id="1")  # fmt: skip
    assert [n.channel for n in chain.nodes] == [
        "127.0.0.1:24600", "127.0.0.1:24601", "127.0.0.2:24600"
    ]  # fmt: skip
    net = json.loads((chain.root / "fisco/caliper/networks/fisco-bcos.json").read_text())
    assert [(n["ip"], n["channelPort"]) for n in net["fisco-bcos"]["network"]["nodes"]] == [
        ("127.0.0.1", "24600"), ("127.0.0.1", "24601"), ("127.0.0.2", "24600")
    ]  # fmt: skip
    for n in chain.nodes:
        assert NodeConfig.load(n.config_path).channel_listen == n.channel
        assert (n.home / "conf" / "channel.crt").is_file()


def test_a_plain_chain_has_no_channel(tmp_path: Path) -> None:
    chain = init_chain(tmp_path / "c", nodes=1, p2p_port=24400, rpc_port=24500)
    assert chain.channel_port is None and not chain.fisco
    assert NodeConfig.load(chain.nodes[0].config_path).channel_listen is None
    assert not (chain.root / "sdk").exists() and not (chain.root / "fisco").exists()


def test_fisco_needs_numeric_ids_and_ports_apart(tmp_path: Path) -> None:
    res = run_cli("init", "--fisco", "--chain-id", "abc", "--dir", str(tmp_path / "a"),
                  cwd=tmp_path)  # fmt: skip
    assert_one_line_error(res, "numeric --chain-id")
    for flag, bad in (("--chain-id", "01"), ("--group", "\u00b2"), ("--chain-id", str(2**64))):
        res = run_cli("init", "--fisco", flag, bad, "--dir", str(tmp_path / "u"), cwd=tmp_path)
        assert_one_line_error(res, f"numeric {flag}")
        assert not (tmp_path / "u").exists()
    res = run_cli("init", "--fisco", "--channel-port", "20201", "--dir", str(tmp_path / "b"),
                  cwd=tmp_path)  # fmt: skip
    assert_one_line_error(res, "channel ports 20201.. and --rpc-port ports 20200.. overlap")


def test_init_fisco_admin_key_may_mint_and_govern_when_it_signs_fisco(tmp_path: Path) -> None:
    """Caliper signs with the admin key in FISCO format (its Keccak address): on a
    permissioned chain its userAdd must mint, and on any --fisco chain its SystemConfig
    and Consensus writes must pass, beside the same key signing natively."""
    for permissioned in (True, False):
        chain = init_chain(tmp_path / f"p{permissioned}", nodes=4, fisco=True,
                           permissioned=permissioned, channel_port=24100, p2p_port=24200,
                           rpc_port=24300, chain_id="1", group_id="1")  # fmt: skip
        admin = accounts.load_key(chain.accounts_dir / "admin.key")
        genesis = GenesisConfig.load(chain.root / "genesis.toml")
        both = {admin.address, fs.address_of(admin.secret)}
        assert set(genesis.governors) == both
        assert set(genesis.asset_admins) == (both if permissioned else set())
        text = (chain.root / "genesis.toml").read_text()
        assert ("open mode (anyone" in text) is not permissioned
        ledger = Ledger(genesis)

        def fisco(sig: str, *args: object, to: bytes = fs.DAG, rid: int = 1,
                  secret: bytes = admin.secret) -> VerifiedTx:  # fmt: skip
            raw = fs.fisco_tx(secret, data=fs.calldata(sig, *args), block_limit=900,
                              to=to, randomid=rid)  # fmt: skip
            return SignedTransaction.decode(raw).verified()

        receipts = ledger.run(
            fisco("userAdd(string,uint256)", "caliper0", 1000),
            fisco("setValueByKey(string,string)", "tx_count_limit", "500", to=fs.SYS, rid=2),
            fisco("remove(string)", genesis.sealers[3].hex(), to=fs.CONSENSUS, rid=3),
            make_tx(admin, "userAdd", "native0", 5, chain_id="1", group_id="1"),
        ).receipts
        outputs = [int(eth_abi.decode(["int256"], r.output)[0]) for r in receipts[:3]]
        assert outputs == [0, 1, 1] and receipts[3].status == 0
        assert ledger.balance("caliper0") == 1000
