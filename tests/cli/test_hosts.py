"""``ledgerlab init --hosts``: the per-host packages, their scripts, and the one-line errors.

The run test puts two "hosts" on loopback (127.0.0.1 and 127.0.0.2, both local on Linux)
and starts each package with its own ``start_all.sh``; the network-namespace test
(test_hosts_netns.py) does the same across four isolated hosts.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ledger.genesis import GenesisConfig
from node.runtime.config import NodeConfig
from node.transport.pki import load_node
from scripts.errors import CommandError
from scripts.launcher import hosts, procs
from scripts.launcher.layout import load_chain, remove_chain
from tests.cli.conftest import assert_one_line_error, run_cli

TEST_NET = "192.0.2"  # RFC 5737: never assigned, so never an address of this machine


def test_parse_hosts_keeps_order_and_canonical_addresses() -> None:
    parsed = hosts.parse_hosts(" 10.0.0.2:1, 10.0.0.1:3 ,")
    assert parsed == (hosts.HostSpec("10.0.0.2", 1), hosts.HostSpec("10.0.0.1", 3))
    assert hosts.spec_of(parsed) == "10.0.0.2:1,10.0.0.1:3"


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "at least one IP:COUNT"),
        ("10.0.0.1", "expected IP:COUNT"),
        ("10.0.0.1:x", "expected IP:COUNT"),
        ("10.0.0.1:-1", "expected IP:COUNT"),
        ("10.0.0.1:0", "at least 1 node"),
        ("10.0.0.256:1", "not an IPv4 address"),
        ("10.0.1:1", "not an IPv4 address"),
        ("010.0.0.1:1", "not an IPv4 address"),
        ("[::1]:1", "not an IPv4 address"),
        ("host.example:1", "not an IPv4 address"),
        ("0.0.0.0:1", "not a host address"),
        ("224.0.0.1:1", "not a host address"),
        ("255.255.255.255:1", "not a host address"),
        ("10.0.0.1:1,10.0.0.1:2", "listed twice"),
        ("10.0.0.1:40,10.0.0.2:25", "65 nodes in all, at most 64"),
    ],
)
def test_parse_hosts_rejects(spec: str, fragment: str) -> None:
    with pytest.raises(CommandError, match=fragment):
        hosts.parse_hosts(spec)


def test_packages_hold_their_nodes_and_no_private_ca_material(tmp_path: Path) -> None:
    root = tmp_path / "chain"
    chain = hosts.init_hosts(root, "10.0.0.1:2,10.0.0.2:1,10.0.0.3:1", observers=1)
    assert [(n.name, n.role, n.p2p, n.rpc) for n in chain.nodes] == [
        ("node0", "sealer", "10.0.0.1:30300", "10.0.0.1:20200"),
        ("node1", "sealer", "10.0.0.1:30301", "10.0.0.1:20201"),
        ("node2", "sealer", "10.0.0.2:30300", "10.0.0.2:20200"),
        ("node3", "observer", "10.0.0.3:30300", "10.0.0.3:20200"),
    ]
    assert load_chain(root) == chain  # chain.toml keeps each node's home
    assert hosts.spec(chain) == "10.0.0.1:2,10.0.0.2:1,10.0.0.3:1"
    genesis = GenesisConfig.load(root / "genesis.toml")
    for address, nodes in hosts.packages(chain).items():
        pkg = root / "hosts" / address
        files = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
        assert {"start_all.sh", "stop_all.sh", "genesis.toml", "ca/ca.crt"} <= files
        assert "agency/agency.crt" in files
        assert not any(f.endswith(("ca.key", "agency.key", "admin.key")) for f in files)
        assert {f.split("/")[0] for f in files if f.startswith("node")} == {n.name for n in nodes}
        assert (pkg / "ca" / "ca.crt").read_bytes() == (root / "ca" / "ca.crt").read_bytes()
        assert GenesisConfig.load(pkg / "genesis.toml") == genesis
        assert os.access(pkg / "start_all.sh", os.X_OK)
        for n in nodes:
            config = NodeConfig.load(n.config_path)
            assert (config.p2p_listen, config.rpc_listen) == (n.p2p, n.rpc)
            assert sorted(config.peers) == sorted(m.p2p for m in chain.nodes if m is not n)
            assert load_node(config.path(config.conf_dir)).node_id == n.node_id
            assert stat.S_IMODE((n.home / "conf" / "node.key").stat().st_mode) == 0o600
    remove_chain(root)
    assert not root.exists() or not any(root.iterdir())


def test_scripts_are_valid_sh_and_name_the_launchers_python(tmp_path: Path) -> None:
    chain = hosts.init_hosts(tmp_path / "c", "10.0.0.1:2")
    pkg = tmp_path / "c" / "hosts" / "10.0.0.1"
    for script in ("start_all.sh", "stop_all.sh"):
        subprocess.run(["sh", "-n", str(pkg / script)], check=True)
    start = (pkg / "start_all.sh").read_text()
    assert sys.executable in start and "-m node --config" in start
    assert "set -- node0 node1" in start
    assert [n.name for n in chain.nodes] == ["node0", "node1"]


def test_mqtt_across_hosts_needs_a_shared_broker(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="loopback"):
        hosts.init_hosts(tmp_path / "c", "10.0.0.1:1,10.0.0.2:1", transport="mqtt")
    chain = hosts.init_hosts(
        tmp_path / "d", "10.0.0.1:1,10.0.0.2:1", transport="mqtt", broker="mqtt://10.0.0.9:1883"
    )
    assert chain.broker == "mqtt://10.0.0.9:1883"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--hosts", "10.0.0.1:2", "--nodes", "2"), "mutually exclusive"),
        (("--hosts", "10.0.0.1"), "expected IP:COUNT"),
        (("--hosts", "10.0.0.1:2,10.0.0.1:1"), "listed twice"),
        (("--hosts", "10.0.0.1:2", "--observers", "2"), "at least one sealer"),
        (("--hosts", "10.0.0.1:2", "--p2p-port", "65535"), "must fit 1024..65535"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    res = run_cli("init", "--dir", "c", *args, cwd=tmp_path)
    assert_one_line_error(res, fragment)
    assert not (tmp_path / "c" / "chain.toml").exists()


def test_up_refuses_a_node_on_another_host(tmp_path: Path) -> None:
    res = run_cli("init", "--dir", "c", "--hosts", f"{TEST_NET}.1:1,{TEST_NET}.2:1", cwd=tmp_path)
    assert res.code == 0, res.err
    assert "hosts/192.0.2.1" in res.out and "start_all.sh" in res.out
    res = run_cli("up", "--dir", "c", cwd=tmp_path)
    assert_one_line_error(res, "not an address of this machine", "start_all.sh")
    assert not procs.running_nodes(load_chain(tmp_path / "c"))


# ------------------------------------------------------------- two hosts on loopback


def _sh(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LEDGERLAB_PYTHON"}
    return subprocess.run(
        ["sh", str(script), *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def loopback_chain(tmp_path: Path) -> Iterator[Path]:
    if not sys.platform.startswith("linux"):
        pytest.skip("127.0.0.2 is a local address on Linux only")
    p2p = procs.free_port_base(2)
    rpc = procs.free_port_base(2, avoid=range(p2p, p2p + 2))
    if not all(procs.port_free(p, "127.0.0.2") for p in (p2p, p2p + 1, rpc, rpc + 1)):
        pytest.skip("ports taken on 127.0.0.2")
    root = tmp_path / "chain"
    res = run_cli(
        "init", "--hosts", "127.0.0.1:2,127.0.0.2:2", "--dir", str(root),
        "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=tmp_path,
    )  # fmt: skip
    assert res.code == 0, res.err
    try:
        yield root
    finally:
        procs.stop_nodes(load_chain(root).nodes, timeout=10.0)


def _status(root: Path) -> list[dict[str, object]]:
    res = run_cli("status", "--json", "--dir", str(root), cwd=root.parent)
    assert res.code == 0, res.err
    rows: list[dict[str, object]] = json.loads(res.out)
    return rows


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_start_all_and_stop_all_on_two_loopback_hosts(loopback_chain: Path) -> None:
    root = loopback_chain
    one, two = root / "hosts" / "127.0.0.1", root / "hosts" / "127.0.0.2"
    for pkg in (one, two):
        res = _sh(pkg / "start_all.sh")
        assert res.returncode == 0, (res.stdout, res.stderr)
        assert res.stdout.count(" started (pid ") == 2, res.stdout
    again = _sh(two / "start_all.sh")
    assert again.returncode == 0 and again.stdout.count("already running") == 2, again.stdout
    chain = load_chain(root)
    assert set(procs.running_nodes(chain)) == {0, 1, 2, 3}
    deadline = time.monotonic() + 30
    while any(r["peers"] != 3 for r in _status(root)):
        assert time.monotonic() < deadline, _status(root)
        time.sleep(0.5)
    cli = run_cli("asset", "add", "alice", "100", "--dir", str(root), "--node", "2", cwd=root)
    assert cli.code == 0, cli.err
    cli = run_cli("asset", "balance", "alice", "--dir", str(root), "--node", "1", cwd=root)
    assert cli.code == 0 and "alice: 100" in cli.out, (cli.out, cli.err)

    stop = _sh(two / "stop_all.sh", "node3")
    assert stop.returncode == 0 and "node3: stopping" in stop.stdout, stop.stdout
    assert set(procs.running_nodes(chain)) == {0, 1, 2}
    assert not (chain.node(3).pid_path).exists()
    for pkg in (one, two):
        assert _sh(pkg / "stop_all.sh").returncode == 0
    assert procs.running_nodes(chain) == {}
