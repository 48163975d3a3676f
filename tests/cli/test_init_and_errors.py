"""``ledgerlab init`` and the one-line errors for common mistakes (no node is started)."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from node.ledger.genesis import GenesisConfig
from node.runtime.config import NodeConfig
from node.transport.pki import load_node
from scripts.cli import main
from scripts.launcher.accounts import load_key
from scripts.launcher.layout import load_chain
from tests.cli.conftest import assert_one_line_error, run_cli


def test_init_writes_a_complete_chain_directory(tmp_path: Path, ports: tuple[int, int]) -> None:
    p2p, rpc = ports
    res = run_cli(
        "init", "--nodes", "4", "--observers", "1", "--dir", "c",
        "--p2p-port", str(p2p), "--rpc-port", str(rpc), "--chain-id", "c7", "--group", "g7",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.code == 0, res.err
    assert "node4" in res.out and "observer" in res.out
    root = tmp_path / "c"
    chain = load_chain(root)
    assert (chain.chain_id, chain.group_id, chain.transport) == ("c7", "g7", "tcp")
    assert [n.role for n in chain.nodes] == ["sealer"] * 4 + ["observer"]

    genesis = GenesisConfig.load(root / "genesis.toml")
    admin = load_key(root / "accounts" / "admin.key")
    assert genesis.governors == (admin.address,)
    assert genesis.asset_admins == ()  # open mode by default
    assert [k.hex() for k in genesis.sealers] == [n.node_id for n in chain.nodes[:4]]
    assert [k.hex() for k in genesis.observers] == [chain.nodes[4].node_id]
    assert stat.S_IMODE((root / "accounts" / "admin.key").stat().st_mode) == 0o600

    for n in chain.nodes:
        config = NodeConfig.load(n.home / "config.toml")
        assert config.name == n.name
        assert config.rpc_listen == f"127.0.0.1:{rpc + n.index}"
        assert config.p2p_listen == f"127.0.0.1:{p2p + n.index}"
        assert sorted(config.peers) == sorted(m.p2p for m in chain.nodes if m is not n)
        assert config.path(config.log_file or Path()) == n.home / "log" / "node.log"
        assert GenesisConfig.load(config.path(config.genesis)) == genesis
        assert load_node(config.path(config.conf_dir)).node_id == n.node_id
        assert stat.S_IMODE((n.home / "conf" / "consensus.key").stat().st_mode) == 0o600


def test_init_permissioned_lists_admin_as_asset_admin(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    p2p, rpc = ports
    res = run_cli(
        "init", "--permissioned", "--nodes", "1", "--transport", "mqtt",
        "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=tmp_path,
    )  # fmt: skip
    assert res.code == 0, res.err
    root = tmp_path / "chain"  # the default --dir
    admin = load_key(root / "accounts" / "admin.key")
    assert GenesisConfig.load(root / "genesis.toml").asset_admins == (admin.address,)
    doc = tomllib.loads((root / "node0" / "config.toml").read_text())
    assert doc["p2p"]["transport"] == "mqtt"
    assert doc["mqtt"]["broker"] == "mqtt://127.0.0.1:1883"


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, ports: tuple[int, int]) -> None:
    p2p, rpc = ports
    args = ("init", "--dir", "c", "--p2p-port", str(p2p), "--rpc-port", str(rpc))
    assert run_cli(*args, cwd=tmp_path).code == 0
    first = load_chain(tmp_path / "c").nodes[0].node_id
    (tmp_path / "c" / "node0" / "data" / "marker").write_text("old data")

    res = run_cli(*args, cwd=tmp_path)
    assert_one_line_error(res, "already exists", "--force")
    assert load_chain(tmp_path / "c").nodes[0].node_id == first  # untouched

    res = run_cli(*args, "--force", "--nodes", "2", cwd=tmp_path)
    assert res.code == 0, res.err
    chain = load_chain(tmp_path / "c")
    assert len(chain.nodes) == 2 and chain.nodes[0].node_id != first
    assert not (tmp_path / "c" / "node0" / "data" / "marker").exists()
    assert not (tmp_path / "c" / "node3").exists()


def test_init_refuses_a_folder_that_is_not_a_chain(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("mine")
    res = run_cli("init", "--dir", "stuff", "--force", cwd=tmp_path)
    assert_one_line_error(res, "not a ledgerlab chain")
    assert (tmp_path / "stuff" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--nodes", "0"), "--nodes"),
        (("--p2p-port", "20200", "--rpc-port", "20202"), "overlap"),
        (("--rpc-port", "65534"), "must fit"),
        (("--broker", "http://x"), "--broker"),
    ],
)
def test_init_rejects_bad_options(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    assert_one_line_error(run_cli("init", *args, cwd=tmp_path), fragment)
    assert not (tmp_path / "chain").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("status",),
        ("down",),
        ("logs",),
        ("stop-node", "1"),
        ("asset", "balance", "alice"),
        ("asset", "transfer", "alice", "bob", "5"),
        ("block",),
        ("accounts", "new"),
    ],
)
def test_no_chain_directory_is_one_line(tmp_path: Path, argv: tuple[str, ...]) -> None:
    assert_one_line_error(run_cli(*argv, cwd=tmp_path), "no chain directory", "ledgerlab init")


def test_dir_from_environment(tmp_path: Path, ports: tuple[int, int]) -> None:
    p2p, rpc = ports
    env = {"LEDGERLAB_DIR": str(tmp_path / "envchain")}
    res = run_cli("init", "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=tmp_path, env=env)
    assert res.code == 0, res.err
    assert load_chain(tmp_path / "envchain")
    res = run_cli("accounts", "new", "carol", "--json", cwd=tmp_path, env=env)
    assert res.code == 0, res.err
    assert (tmp_path / "envchain" / "accounts" / "carol.key").is_file()
    assert_one_line_error(run_cli("accounts", "new", "carol", cwd=tmp_path, env=env), "exists")
    assert_one_line_error(
        run_cli("accounts", "new", "../x", cwd=tmp_path, env=env), "bad account name"
    )


@pytest.fixture
def stopped_chain(tmp_path: Path, ports: tuple[int, int]) -> Path:
    p2p, rpc = ports
    res = run_cli(
        "init", "--dir", "c", "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=tmp_path
    )
    assert res.code == 0, res.err
    return tmp_path / "c"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("asset", "balance", "alice"), ("no node of the chain", "ledgerlab up")),
        (("asset", "balance", "alice", "--node", "2"), ("cannot reach node2", "start-node 2")),
        (("asset", "add", "alice", "1.5"), ("bad amount '1.5'",)),
        (("asset", "add", "alice", "-3"), ("bad amount",)),
        (("asset", "transfer", "alice", "bob", "0"), ("bad amount 0",)),
        (("asset", "save", "alice", "abc"), ("bad amount 'abc'",)),
        (("asset", "add", "alice", str(2**256)), ("larger than uint256",)),
        (("asset", "add", "alice", "5", "--owner", "bob"), ("bad owner 'bob'",)),
        (("tx", "0x1234"), ("not a transaction hash",)),
        (("receipt", "zz"), ("not a transaction hash",)),
        (("block", "nope"), ("not a block number or hash",)),
        (("config", "get", "gas_limit"), ("unknown system config key", "tx_count_limit")),
        (("config", "set", "tx_count_limit", "0"), ("bad value",)),
        (("stop-node", "1"), ("node1 is not running", "start-node 1")),
        (("stop-node", "9"), ("no node 9",)),
        (("up", "--nodes", "7"), ("already holds a chain with --nodes 4", "init --force")),
        (("logs",), ("no logs yet",)),
        (("asset", "balance", "x", "--rpc", "ftp://nowhere"), ("expected http://host:port",)),
        (("asset", "add", "x", "5", "--rpc", "http://127.0.0.1:9"), ("cannot reach",)),
        (("asset", "add", "x", "5", "--node", "1", "--key", "/nonexistent.key"),
         ("cannot reach node1",)),
    ],
)  # fmt: skip
def test_common_mistakes_are_one_line(
    tmp_path: Path, stopped_chain: Path, argv: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    res = run_cli(*argv, "--dir", str(stopped_chain), cwd=tmp_path)
    assert_one_line_error(res, *fragments)


def test_status_of_a_stopped_chain_says_down(tmp_path: Path, stopped_chain: Path) -> None:
    res = run_cli("status", "--dir", str(stopped_chain), cwd=tmp_path)
    assert res.code == 0, res.err
    assert res.out.count("down") >= 4 and "ledgerlab up" in res.out
    res = run_cli("status", "--json", "--dir", str(stopped_chain), cwd=tmp_path)
    rows = json.loads(res.out)
    assert [r["node"] for r in rows] == ["node0", "node1", "node2", "node3"]
    assert not any(r["answered"] for r in rows)


VERBS = [
    ("init",), ("up",), ("down",), ("status",), ("logs",), ("stop-node",), ("start-node",),
    ("demo",), ("asset", "add"), ("asset", "save"), ("asset", "draw"), ("asset", "transfer"),
    ("asset", "balance"), ("block",), ("tx",), ("receipt",), ("sealers", "list"),
    ("sealers", "add"), ("sealers", "remove"), ("observers", "list"), ("observers", "add"),
    ("observers", "remove"), ("add-node",),
    ("config", "get"), ("config", "set"), ("accounts", "new"), ("accounts", "list"),
]  # fmt: skip


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_help_with_an_example(
    verb: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "ledgerlab " + verb[0] in out


def test_help_of_the_whole_command_runs_as_a_subprocess(tmp_path: Path) -> None:
    res = run_cli("--help", cwd=tmp_path)
    assert res.code == 0 and "demo" in res.out and "asset" in res.out
