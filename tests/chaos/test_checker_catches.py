"""The checker must be able to fail: problems planted in a real run's data are caught.

One short live run (a kill and a restart) leaves its node stores and transaction records;
each case copies them, plants one problem (a missing acknowledged transaction, a seal
without its quorum, a forked block, a balance changed behind the chain's back, a stall
beyond its bound) and checks that exactly the right check fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ledger.block import Block, BlockSeal
from node.ledger.precompiles.dag_transfer import user_key
from scripts.chaos.checker import Evidence, Verdict, run_checks
from scripts.chaos.hostile import HostileEvidence
from scripts.chaos.runner import Outcome, load_records
from scripts.chaos.stalls import Stall
from scripts.chaos.store import open_ledger
from scripts.chaos.workload import TxRecord
from scripts.launcher.layout import load_chain
from storage.ledger import P_BLOCK, P_HASH_BY_NUMBER, P_STATE
from storage.rocksdb_kv import RocksKV
from tests.chaos.conftest import chaos, explain

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    out = chaos(
        tmp_path_factory.mktemp("chaos"),
        """
        duration = 10
        [[perturbation]]
        at = 2
        kind = "kill"
        node = 3
        duration = 3
        """,
    )
    assert out.verdict.ok, explain(out)
    return out


@pytest.fixture
def copy(finished: Outcome, tmp_path: Path) -> Path:
    """A private copy of the finished run's folder (chain directory and records)."""
    target = tmp_path / "run"
    shutil.copytree(finished.run_dir, target, ignore=shutil.ignore_patterns("snapshots"))
    return target


@contextlib.contextmanager
def evidence(run: Path, records: list[TxRecord] | None = None) -> Iterator[Evidence]:
    chain = load_chain(run / "chain")
    with contextlib.ExitStack() as stack:
        ledgers = {n.name: stack.enter_context(open_ledger(n.name, n.home)) for n in chain.nodes}
        yield Evidence(
            genesis=chain.genesis(),
            ledgers=ledgers,
            records=load_records(run / "txs.json") if records is None else records,
            members=list(ledgers),
        )


def failed(verdict: Verdict) -> list[str]:
    return [c.name for c in verdict.checks if not c.ok]


@contextlib.contextmanager
def writable(run: Path, node: str) -> Iterator[RocksKV]:
    kv = RocksKV(str(run / "chain" / node / "data"))
    try:
        yield kv
    finally:
        kv.close()


def test_the_untouched_run_passes(copy: Path) -> None:
    with evidence(copy) as ev:
        assert failed(run_checks(ev)) == []


def test_an_acknowledged_transaction_missing_from_the_chain_is_lost(copy: Path) -> None:
    records = load_records(copy / "txs.json")
    real = next(r for r in records if r.status == 0)
    ghost = dataclasses.replace(real, hash="0x" + "ab" * 32)  # acked, "committed", not there
    with evidence(copy, [*records, ghost]) as ev:
        verdict = run_checks(ev)
    assert failed(verdict) == ["acknowledged and successful", "acknowledged committed"]
    assert verdict.figures["lost"] == 1


def test_a_receipt_naming_another_block_is_caught(copy: Path) -> None:
    records = load_records(copy / "txs.json")
    moved = next(r for r in records if r.status == 0)
    moved.block_hash = "0x" + "cd" * 32
    with evidence(copy, records) as ev:
        assert failed(run_checks(ev)) == ["acknowledged and successful"]


def _block(kv: RocksKV, number: int) -> Block:
    raw = kv.get(P_BLOCK + number.to_bytes(8, "big"))
    assert raw is not None
    return Block.decode(raw)


def test_a_seal_short_of_its_quorum_is_caught(copy: Path) -> None:
    with writable(copy, "node1") as kv:
        block = _block(kv, 3)
        weak = BlockSeal(block.seal.view, block.seal.signatures[:1])
        kv.put(P_BLOCK + (3).to_bytes(8, "big"), block.with_seal(weak).encode())
    with evidence(copy) as ev:
        verdict = run_checks(ev)
    assert failed(verdict) == ["seals"]
    assert "node1 block 3" in next(c.detail for c in verdict.checks if c.name == "seals")


def test_a_forked_block_is_caught(copy: Path) -> None:
    with writable(copy, "node2") as kv:
        other = _block(kv, 5)
        kv.put(P_BLOCK + (4).to_bytes(8, "big"), other.encode())
        kv.put(P_HASH_BY_NUMBER + (4).to_bytes(8, "big"), other.hash)
    with evidence(copy) as ev:
        verdict = run_checks(ev)
    assert "same blocks" in failed(verdict)
    assert "height 4 differs" in verdict.checks[0].detail


def test_a_balance_changed_behind_the_chains_back_is_caught(copy: Path) -> None:
    with writable(copy, "node0") as kv:
        key = P_STATE + user_key("c000")
        value = kv.get(key)
        assert value is not None
        balance = int.from_bytes(value[:32], "big")
        kv.put(key, (balance + 5).to_bytes(32, "big") + value[32:])
    with evidence(copy) as ev:
        verdict = run_checks(ev)
    assert failed(verdict) == ["supply"]
    assert "node0" in next(c.detail for c in verdict.checks if c.name == "supply")


def test_a_stall_beyond_its_bound_is_caught(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.stalls = [Stall(10.0, 70.0, 14.0, False, 12)]
        verdict = run_checks(ev)
    assert failed(verdict) == ["stalls"]


def test_a_crash_is_caught(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.crashes = {"node2": ["exited with status 70: error: node2 stopped: boom"]}
        assert failed(run_checks(ev)) == ["no crashes"]


def test_a_bug_the_supervisor_caught_is_caught(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.internal_errors = {"node1": 2, "node2": 0}
        assert failed(run_checks(ev)) == ["no internal errors"]


def _committed(records: list[TxRecord], k: int) -> list[str]:
    return [r.hash for r in records if r.status == 0][:k]


def _clean_hostile() -> HostileEvidence:
    """Hostile evidence that passes: nothing of it in the chain, every flood limited."""
    return HostileEvidence(
        pairs=[("0x" + "01" * 32, "0x" + "02" * 32)],
        pills={"0x" + "03" * 32: "long_name"},
        pill_answers={"0x" + "03" * 32: "Malformed"},
        replays=[],
        bursts=[{"node": "node1", "admitted": 10, "pool_full": 5, "admitted_hashes": []}],
    )


def test_clean_hostile_evidence_passes(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.hostile = _clean_hostile()
        assert failed(run_checks(ev)) == []


def test_both_txs_of_a_same_nonce_pair_committed_is_caught(copy: Path) -> None:
    records = load_records(copy / "txs.json")
    x, y = _committed(records, 2)
    with evidence(copy) as ev:
        ev.hostile = _clean_hostile()
        ev.hostile.pairs.append((x, y))
        assert failed(run_checks(ev)) == ["hostile: nonce pairs"]


def test_a_poison_pill_acknowledged_or_committed_is_caught(copy: Path) -> None:
    records = load_records(copy / "txs.json")
    [landed] = _committed(records, 1)
    with evidence(copy) as ev:
        ev.hostile = _clean_hostile()
        ev.hostile.pills[landed] = "long_name"
        ev.hostile.pill_answers[landed] = "Malformed"
        assert failed(run_checks(ev)) == ["hostile: poison pills"]
        ev.hostile = _clean_hostile()
        ev.hostile.pill_answers["0x" + "03" * 32] = "ack"
        assert failed(run_checks(ev)) == ["hostile: poison pills"]


def test_a_flood_that_met_no_pool_limit_is_caught(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.hostile = _clean_hostile()
        ev.hostile.bursts[0]["pool_full"] = 0
        assert failed(run_checks(ev)) == ["hostile: pool limit"]


def test_a_disk_fault_that_never_ended_is_caught(copy: Path) -> None:
    with evidence(copy) as ev:
        ev.disk_victims = ["node1", "node2"]
        ev.storage_faults = {"node1": ["cannot store decided block 9: No space left"]}
        verdict = run_checks(ev)
        assert failed(verdict) == []  # node2 had nothing to write meanwhile: said, not failed
        detail = next(c.detail for c in verdict.checks if c.name == "storage faults")
        assert "node1: the fault was reported" in detail and "node2: wrote nothing" in detail
        ev.storage_fault_at_end = ["node1"]
        assert failed(run_checks(ev)) == ["storage faults"]
