"""Consortium operations on real node processes, under load.

Four sealers commit transfers while ``add-node`` creates node4, which syncs as an
observer and is promoted; commits go on with the new quorum (node4's signatures appear
in seals); then the original sealer 0 is removed and commits go on again. Every member
ends with the same head and state root, and every transaction a node acknowledged is
committed exactly once (the balances add up to the acknowledged count).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.rpc.client import RpcClient, RpcError, RpcTransportError
from scripts.launcher import accounts
from scripts.launcher.layout import Chain, NodeEntry, load_chain
from tests.cli.conftest import run_cli, stop_chain, up_chain

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
USERS = [f"m{i}" for i in range(16)]


def client(node: NodeEntry, chain: Chain) -> RpcClient:
    return RpcClient(node.rpc.rpartition(":")[0], node.rpc_port, group=chain.group_id, timeout=10)


class Load:
    """Submits userSave(user, 1) to the given nodes in a loop; records acknowledged hashes."""

    def __init__(self, chain: Chain, nodes: list[NodeEntry]) -> None:
        self.chain = chain
        self.nodes = nodes
        self.key = accounts.load_key(accounts.key_path(chain.accounts_dir, accounts.ADMIN))
        self.acked: list[str] = []
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        clients = [client(n, self.chain) for n in self.nodes]
        i = 0
        try:
            while not self.stop.is_set():
                c = clients[i % len(clients)]
                try:
                    sent = c.user_save(self.key, USERS[i % len(USERS)], 1, wait=False)
                    self.acked.append(sent["transactionHash"])
                except (RpcError, RpcTransportError):
                    self.refused += 1
                i += 1
                time.sleep(0.01)
        finally:
            for c in clients:
                c.close()


def balance(c: RpcClient, user: str) -> int:
    out = c.user_balance(user)
    return int(out["values"][0]) if out["status"] == 0 else 0


def signers_of(block: dict[str, Any]) -> set[str]:
    sealers = block["sealerList"]
    return {sealers[int(s["index"], 16)] for s in block["signatureList"]}


def wait_blocks(c: RpcClient, more: int, timeout: float = 60.0) -> int:
    start = c.block_number()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (h := c.block_number()) >= start + more:
            return h
        time.sleep(0.2)
    raise AssertionError(f"no {more} new blocks within {timeout} s (still at {start})")


@pytest.fixture
def chain_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "chain"
    try:
        up_chain(root, tmp_path, span=8)
        yield root
    finally:
        stop_chain(root)


def test_grow_and_shrink_the_sealers_under_load(chain_dir: Path, tmp_path: Path) -> None:
    chain = load_chain(chain_dir)
    load = Load(chain, list(chain.nodes[1:4]))
    load.thread.start()
    try:
        c1 = client(chain.nodes[1], chain)
        wait_blocks(c1, 3)
        res = run_cli("add-node", "--dir", str(chain_dir), cwd=tmp_path, timeout=240)
        assert res.code == 0, (res.out, res.err)
        chain = load_chain(chain_dir)
        node4 = chain.nodes[4]
        assert c1.sealers() == [n.node_id for n in chain.nodes]
        assert node4.role == "sealer"
        head = wait_blocks(c1, 4)
        seals = [signers_of(c1.get_block(h)) for h in range(head - 3, head + 1)]
        assert any(node4.node_id in s for s in seals), "node4 never signed a seal"

        res = run_cli("sealers", "remove", "node0", "--dir", str(chain_dir), "--node", "1",
                      cwd=tmp_path, timeout=120)  # fmt: skip
        assert res.code == 0, (res.out, res.err)
        assert chain.nodes[0].node_id not in c1.sealers()
        head = wait_blocks(c1, 4)
        for h in range(head - 3, head + 1):
            block = c1.get_block(h)
            assert chain.nodes[0].node_id not in block["sealerList"]
            assert len(block["signatureList"]) >= 3  # quorum of the 4 sealers left
    finally:
        load.stop.set()
        load.thread.join(timeout=30)

    # every acknowledged transaction committed once, on every remaining member
    members = chain.nodes[1:]
    deadline = time.monotonic() + 60
    for tx in load.acked:
        receipt = c1.wait_for_receipt(tx, max(1.0, deadline - time.monotonic()))
        assert int(str(receipt["status"]), 0) == 0
    final = c1.block_number()
    for node in members:
        c = client(node, chain)
        try:
            while c.block_number() < final:
                time.sleep(0.2)
            ref, mine = c1.get_block(final), c.get_block(final)
            assert (mine["hash"], mine["stateRoot"]) == (ref["hash"], ref["stateRoot"])
            total = sum(balance(c, u) for u in USERS)
            assert total == len(load.acked), (node.name, total, len(load.acked))
        finally:
            c.close()
    assert len(load.acked) > 100
    c1.close()

    # a change made outside the CLI leaves chain.toml stale: the CLI asks a member anyway
    toml = chain_dir / "chain.toml"
    toml.write_text(toml.read_text().replace('role = "free"', 'role = "sealer"'))
    res = run_cli("sealers", "--json", "--dir", str(chain_dir), cwd=tmp_path)
    rows = json.loads(res.out)
    assert [r["node"] for r in rows] == ["node1", "node2", "node3", "node4"]
    assert load_chain(chain_dir).nodes[0].role == "free"


def test_add_node_for_another_host_writes_the_folder_and_adds_an_observer(
    chain_dir: Path, tmp_path: Path
) -> None:
    """192.0.2.0/24 is TEST-NET-1: only a bind is tried, no traffic is sent there."""
    res = run_cli(
        "add-node", "--observer", "--host", "192.0.2.7", "--dir", str(chain_dir),
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert res.code == 0, (res.out, res.err)
    assert "not an address of this machine" in res.out
    chain = load_chain(chain_dir)
    node4 = chain.nodes[4]
    assert node4.p2p.startswith("192.0.2.7:") and (node4.home / "config.toml").is_file()
    assert node4.role == "observer"  # chain.toml records what the chain now says
    assert (node4.home / "conf" / "genesis.toml").is_file()
    c = client(chain.nodes[0], chain)
    try:
        assert c.observers() == [node4.node_id]
        assert node4.node_id not in c.sealers()
    finally:
        c.close()
    listed = run_cli("observers", "--json", "--dir", str(chain_dir), cwd=tmp_path)
    rows = json.loads(listed.out)
    assert [(r["node"], r["connection"], r["height"]) for r in rows] == [
        ("node4", "not connected", None)
    ]
