"""End to end against real node processes: up, console verbs, stop/start, down, failures."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.launcher import procs
from scripts.launcher.layout import Chain, load_chain
from tests.cli.conftest import Result, assert_one_line_error, run_cli, stop_chain, up_chain

pytestmark = pytest.mark.slow


class Cluster:
    def __init__(self, root: Path, cwd: Path) -> None:
        self.root = root
        self.cwd = cwd

    @property
    def chain(self) -> Chain:
        return load_chain(self.root)

    def run(self, *args: str, timeout: float = 60.0) -> Result:
        return run_cli(*args, "--dir", str(self.root), cwd=self.cwd, timeout=timeout)

    def ok(self, *args: str) -> Result:
        res = self.run(*args)
        assert res.code == 0, (args, res.out, res.err)
        assert "Traceback" not in res.err
        return res

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").out)

    def status(self) -> dict[str, dict[str, Any]]:
        return {row["node"]: row for row in self.json("status")}

    def balance(self, user: str, *extra: str) -> int:
        return int(self.json("asset", "balance", user, *extra)["balance"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cwd = tmp_path_factory.mktemp("cluster")
    root = cwd / "chain"
    try:
        up_chain(root, cwd)
        yield Cluster(root, cwd)
    finally:
        stop_chain(root)


def test_up_prints_every_node_with_its_rpc_url(cluster: Cluster) -> None:
    chain = cluster.chain
    assert set(procs.running_nodes(chain)) == {0, 1, 2, 3}
    res = cluster.ok("up")  # idempotent: already running
    assert "already running" in res.out
    for n in chain.nodes:
        assert n.rpc_url in res.out
    rows = cluster.status()
    assert all(r["answered"] and r["peers"] == 3 and r["role"] == "sealer" for r in rows.values())


def test_assets_transfer_and_balance(cluster: Cluster) -> None:
    res = cluster.ok("asset", "add", "alice", "1000")
    assert res.out.startswith("ok userAdd alice 1000: block ")
    cluster.ok("asset", "add", "bob", "10", "--node", "1")
    receipt = cluster.json("asset", "transfer", "alice", "bob", "300", "--node", "2")
    assert int(receipt["status"], 16) == 0
    assert cluster.balance("alice") == 700
    assert cluster.balance("bob", "--node", "3") == 310

    cluster.ok("asset", "save", "bob", "5")
    cluster.ok("asset", "draw", "alice", "100")
    assert (cluster.balance("alice"), cluster.balance("bob")) == (600, 315)

    # Expected failures: one line, exit 1, balances unchanged.
    assert_one_line_error(cluster.run("asset", "balance", "carol"), "unknown user 'carol'")
    assert_one_line_error(
        cluster.run("asset", "transfer", "bob", "alice", "10000"),
        "insufficient balance",
        "-51404",
    )
    assert_one_line_error(cluster.run("asset", "add", "alice", "1"), "user already exists")
    assert (cluster.balance("alice"), cluster.balance("bob")) == (600, 315)

    # The chain reads agree with what was sent.
    tx_hash = receipt["transactionHash"]
    tx = cluster.json("tx", tx_hash)
    assert tx["method"] == "userTransfer" and tx["args"] == ["alice", "bob", 300]
    assert cluster.json("receipt", tx_hash)["blockNumber"] == receipt["blockNumber"]
    block = cluster.json("block", str(int(receipt["blockNumber"], 16)))
    assert tx_hash in block["transactions"]
    assert "DagTransfer.userTransfer('alice', 'bob', 300)" in cluster.ok("tx", tx_hash).out
    assert "insufficient" not in cluster.ok("receipt", tx_hash).out
    sealers = cluster.json("sealers")
    assert [r["nodeId"] for r in sealers] == [n.node_id for n in cluster.chain.nodes]
    assert {r["connection"] for r in sealers} == {"self", "connected"}
    assert all(r["height"] >= 1 for r in sealers)
    assert cluster.json("observers") == []
    assert cluster.json("config", "get", "tx_count_limit") == {"tx_count_limit": "1000"}
    sent = cluster.json("asset", "add", "dora", "1", "--no-wait")
    assert set(sent) == {"transactionHash"}


def test_config_set_needs_a_governor(cluster: Cluster) -> None:
    cluster.ok("config", "set", "tx_count_limit", "800")
    assert cluster.json("config", "get", "tx_count_limit", "--node", "2")["tx_count_limit"] == "800"
    cluster.ok("accounts", "new", "mallory")
    res = cluster.run("config", "set", "tx_count_limit", "5", "--account", "mallory")
    assert_one_line_error(res, "no permission")
    assert cluster.json("config", "get", "tx_count_limit")["tx_count_limit"] == "800"


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def test_stop_node_keeps_the_chain_going_and_start_node_catches_up(cluster: Cluster) -> None:
    res = cluster.ok("stop-node", "3")
    assert "node3: stopped" in res.out and "within f=1" in res.out
    assert 3 not in procs.running_nodes(cluster.chain)
    rows = cluster.status()
    assert not rows["node3"]["answered"]
    before = rows["node0"]["height"]

    cluster.ok("asset", "add", "erin", "50")
    for _ in range(3):
        cluster.ok("asset", "transfer", "erin", "frank", "5", "--node", "1")
    assert cluster.balance("frank") == 15
    assert cluster.status()["node0"]["height"] >= before + 4  # 3 of 4 sealers commit

    assert_one_line_error(cluster.run("stop-node", "3"), "node3 is not running")
    res = cluster.ok("start-node", "3")
    assert "node3 started" in res.out
    _wait(
        lambda: (s := cluster.status())["node3"]["height"] == s["node0"]["height"],
        30,
        "node3 to catch up",
    )
    assert cluster.balance("frank", "--node", "3") == 15
    assert cluster.balance("erin", "--node", "3") == 35
    heights = {r["height"] for r in cluster.status().values()}
    assert len(heights) == 1


def test_logs_show_node_output(cluster: Cluster) -> None:
    res = cluster.ok("logs", "0", "-n", "5")
    lines = [line for line in res.out.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 10
    res = cluster.ok("logs", "-n", "2")
    assert all(f"node{i}" in res.out for i in range(4))


def test_down_stops_every_node(cluster: Cluster) -> None:
    pids = procs.running_nodes(cluster.chain)
    assert len(pids) == 4
    res = cluster.ok("down")
    assert "stopped 4 node(s)" in res.out
    assert not any(procs.pid_alive(p) for p in pids.values())
    assert not any(n.pid_path.exists() for n in cluster.chain.nodes)
    assert_one_line_error(cluster.run("asset", "balance", "alice"), "no node of the chain")
    assert "nothing was running" in cluster.ok("down").out


# ----------------------------------------------------------------------------- `up` failures


@pytest.fixture
def fresh(tmp_path: Path, ports: tuple[int, int], chain_root: Path) -> Cluster:
    p2p, rpc = ports
    res = run_cli(
        "init", "--nodes", "4", "--dir", str(chain_root), "--p2p-port", str(p2p),
        "--rpc-port", str(rpc), cwd=tmp_path,
    )  # fmt: skip
    assert res.code == 0, res.err
    return Cluster(chain_root, tmp_path)


def test_up_with_a_port_in_use_starts_nothing(fresh: Cluster) -> None:
    busy = fresh.chain.node(2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", busy.rpc_port))
        s.listen()
        res = fresh.run("up")
    assert_one_line_error(res, f"node2: RPC port {busy.rpc_port} is already in use", "--rpc-port")
    assert procs.running_nodes(fresh.chain) == {}


def test_up_when_a_node_exits_at_start_leaves_nothing_running(fresh: Cluster) -> None:
    config = fresh.chain.node(1).config_path
    config.write_text(config.read_text().replace("tick_ms = 100", "tick_ms = 0"))
    res = fresh.run("up")
    assert_one_line_error(res, "node1 exited at start", "tick_ms")
    chain = fresh.chain
    assert procs.running_nodes(chain) == {}
    assert not any(n.pid_path.exists() for n in chain.nodes)


def test_up_removes_a_stale_pid_file_and_says_so(fresh: Cluster) -> None:
    node = fresh.chain.node(1)
    node.pid_path.write_text("999999\n")
    res = fresh.run("up")
    assert res.code == 0, res.err
    assert "node1: removed a stale pid file" in res.out
    assert set(procs.running_nodes(fresh.chain)) == {0, 1, 2, 3}
    assert fresh.ok("down").out.count("stopped (pid") == 4
