"""Byzantine test modes of a real node (node/runtime/byzantine.py) in memory clusters: one
Byzantine sealer of four, each behaviour of the simulator's; the honest three keep
committing client transfers, agree on every block, and see what the Byzantine one did."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from consensus.byzantine import BEHAVIOURS
from consensus.messages import Proposal
from node.ledger.chain import ProposalBody
from node.rpc.metrics import render
from node.rpc.render import consensus_status
from node.runtime import Node
from node.runtime.byzantine import alternative_proposal
from node.runtime.config import ConfigError, NodeConfig
from node.runtime.local import MemoryCluster
from node.runtime.service import NodeService
from tests.runtime.cluster import transfer, wait_until

REPO = Path(__file__).resolve().parents[2]
BYZANTINE = 3  # node3 of four


def same_chain(nodes: list[Node]) -> bool:
    """Every node has the same head, and the same block at every height below it."""
    top = min(n.chain.head.number for n in nodes)
    return len({n.chain.head for n in nodes}) == 1 and all(
        len({n.chain.block(h).hash for n in nodes}) == 1 for h in range(1, top + 1)
    )


async def commit_waves(honest: list[Node], waves: int, per_wave: int = 15) -> int:
    """Client transfers in ``waves`` rounds, each through another honest node; every wave
    commits on every honest node before the next. Returns how many were sent."""
    sent = 0
    for wave in range(waves):
        entry = honest[wave % len(honest)]
        head = entry.chain.head.number
        raws = [transfer(1000 * wave + i, head=head) for i in range(per_wave)]
        assert all(isinstance(r, bytes) for r in entry.submit(raws))
        sent += per_wave
        await wait_until(
            lambda s=sent: all(n.chain.store.total_tx_count() >= s for n in honest), 45
        )
    return sent


# -- a Byzantine sealer among three honest ones (memory transport) ---------------------


@pytest.mark.asyncio
@pytest.mark.timeout(120)
@pytest.mark.parametrize("behaviour", BEHAVIOURS)
async def test_honest_nodes_keep_committing_and_agree(behaviour: str) -> None:
    async with MemoryCluster(4, byzantine={BYZANTINE: behaviour}) as cluster:
        nodes = cluster.running()
        bad = nodes[BYZANTINE]
        honest = [n for i, n in enumerate(nodes) if i != BYZANTINE]
        # 8 waves: the Byzantine sealer leads some of the heights (leader rotation)
        sent = await commit_waves(honest, 8)
        await wait_until(lambda: same_chain(honest), 20)
        assert all(n.chain.store.total_tx_count() == sent for n in honest)
        assert all(n.chain.head.number >= 8 for n in honest)
        assert all(n.failure is None and not n.supervisor.errors for n in honest)

        # it says what it is: getConsensusStatus, /metrics, and its own counters
        assert bad.byzantine is not None and bad.byzantine.behaviour == behaviour
        assert consensus_status(NodeService(bad).consensus_status())["byzantine"] == behaviour
        assert consensus_status(NodeService(honest[0]).consensus_status())["byzantine"] is None
        text = render(NodeService(bad).metrics())
        assert f'ledgerlab_byzantine{{behaviour="{behaviour}"}} 1' in text
        assert "ledgerlab_byzantine" not in render(NodeService(honest[0]).metrics())
        stats = bad.byzantine.stats

        def drops(reason: str) -> int:
            return sum(n.replica.counters.drops[reason] for n in honest)

        evidence = [e for n in honest for e in n.replica.evidence]
        bad_key = cluster.keys[BYZANTINE].public_key
        # evidence only ever blames the Byzantine sealer
        assert all(e.sender_key == bad_key for e in evidence)
        if behaviour == "equivocate":
            assert stats["tampered"] > 0
            assert any(e.kind == "PrePrepare" for e in evidence), evidence
        elif behaviour == "double-vote":
            assert stats["tampered"] > 0
            assert {e.kind for e in evidence} & {"Prepare", "Commit"}, evidence
        elif behaviour == "bad-signature":
            assert stats["tampered"] == stats["frames"] > 0
            assert drops("bad_signature") + drops("own_index") > 0
        elif behaviour in ("silent", "withhold"):
            assert stats["suppressed"] > 0
            if behaviour == "silent":
                assert stats["frames"] == 0
                assert all(n.replica.counters.messages_in.get("Commit", 0) > 0 for n in honest)
        elif behaviour == "spam":
            await wait_until(lambda: stats["spam"] >= 20, 20)
            await wait_until(lambda: all(n.dropped["malformed"] > 0 for n in honest), 10)
            assert drops("far_future") + drops("stale") > 0
            # and still nothing stops: one more wave commits
            await commit_waves(honest, 1)
            await wait_until(lambda: same_chain(honest), 20)


# -- the other proposal of an equivocating leader --------------------------------------


def test_alternative_proposal_is_another_valid_proposal() -> None:
    hashes = tuple(bytes([i]) * 32 for i in range(1, 4))
    body = ProposalBody(1_700_000_000_000, 3, hashes)
    original = Proposal(5, b"\x01" * 32, body.encode())
    alt = alternative_proposal(original)
    assert (alt.height, alt.parent_hash) == (original.height, original.parent_hash)
    assert alt.digest != original.digest
    other = ProposalBody.decode(alt.payload)  # canonical, no tx twice
    assert other.tx_hashes == tuple(reversed(hashes)) and other.proposer == 3
    assert other.timestamp == body.timestamp + 1
    single = Proposal(5, b"\x01" * 32, ProposalBody(7, 0, hashes[:1]).encode())
    assert alternative_proposal(single).digest != single.digest


# -- configuration: [testing] byzantine, python -m node --byzantine ------------------------


def test_config_table_round_trip_and_errors(tmp_path: Path) -> None:
    doc = {"testing": {"byzantine": "double-vote", "seed": 7}}
    cfg = NodeConfig.from_dict(doc, home=tmp_path)
    assert (cfg.byzantine, cfg.byzantine_seed) == ("double-vote", 7)
    (tmp_path / "config.toml").write_text(cfg.to_toml())
    assert "[testing]" in cfg.to_toml()
    again = NodeConfig.load(tmp_path / "config.toml")
    assert (again.byzantine, again.byzantine_seed) == ("double-vote", 7)
    assert NodeConfig.from_dict({}, home=tmp_path).byzantine is None
    assert "[testing]" not in NodeConfig(home=tmp_path).to_toml()
    with pytest.raises(ConfigError, match=r"testing\.byzantine must be one of"):
        NodeConfig.from_dict({"testing": {"byzantine": "evil"}}, home=tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key in \[testing\]: byzantin"):
        NodeConfig.from_dict({"testing": {"byzantin": "spam"}}, home=tmp_path)
    with pytest.raises(ConfigError, match=r"testing\.seed"):
        NodeConfig.from_dict({"testing": {"byzantine": "spam", "seed": "x"}}, home=tmp_path)


def test_cli_flag_overrides_the_config(tmp_path: Path) -> None:
    from tests.runtime.cluster import tcp_chain

    _, configs = tcp_chain(tmp_path, 1, 40000)
    path = configs[0].home / "config.toml"
    assert Node.from_config(path).byzantine is None
    node = Node.from_config(path, byzantine="withhold")
    assert node.byzantine is not None and node.byzantine.behaviour == "withhold"
    path.write_text(configs[0].to_toml() + '\n[testing]\nbyzantine = "spam"\n')
    assert Node.from_config(path).byzantine.behaviour == "spam"  # type: ignore[union-attr]
    assert Node.from_config(path, byzantine="none").byzantine is None
    bad = subprocess.run(
        [sys.executable, "-m", "node", "--config", str(path), "--byzantine", "evil"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_byzantine_node_says_so_in_its_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="ledgerlab.node")
    async with MemoryCluster(4, byzantine={1: "silent"}):
        await asyncio.sleep(0)
    assert "this node is Byzantine: silent" in caplog.text
