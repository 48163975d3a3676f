"""The CI chaos suite, second half: membership changes, an observer, disk and clock
faults, hostile clients beside Twins (the first half is test_live.py; two modules, so a
parallel run -- `pytest -n` -- can run the halves side by side).

Each case is one short run, as in test_live.py: a fresh chain behind the fault proxies,
a DagTransfer workload, a schedule, then every check of scripts/chaos/checker.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.chaos.runner import load_records
from tests.chaos.conftest import applied, chaos, explain

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_membership_changes_during_a_fault(tmp_path: Path) -> None:
    out = chaos(
        tmp_path,
        """
        duration = 34
        [[perturbation]]
        at = 2
        kind = "kill"
        node = 1
        duration = 16
        [[perturbation]]
        at = 3
        kind = "grow"
        [[perturbation]]
        at = 4
        kind = "remove"
        node = 1
        duration = 18
        """,
    )
    assert out.verdict.ok, explain(out)
    actions = [(e["kind"], e["action"], e["detail"].split(":")[0]) for e in out.report["events"]]
    assert ("grow", "addSealer", "addSealer node4 via node0") in actions or any(
        a[:2] == ("grow", "addSealer") for a in actions
    ), actions
    assert any(a[:2] == ("remove", "remove") for a in actions), actions
    assert sum(a[:2] == ("remove", "readd") for a in actions) == 2, actions  # observer, sealer
    assert out.report["cluster"]["nodes"] == 5


def test_an_observer_cut_off_delivers_what_it_accepted(tmp_path: Path) -> None:
    """What an observer accepted while its links were down reaches the sealers after the
    heal, under load and without any client resend (it used to wait until the chain went
    idle: an observer never leads, and regossip ran only after a timeout without commits)."""
    out = chaos(
        tmp_path,
        """
        duration = 36
        [[perturbation]]
        at = 2
        kind = "partition"
        groups = [[4], [0, 1, 2, 3]]
        mode = "reset"
        duration = 8
        """,
        observers=1,
        resend_after=0,
    )
    assert out.verdict.ok, explain(out)
    records = load_records(out.run_dir / "txs.json")
    waits = [r.receipt_at - r.acked_at for r in records if r.acked_by == 4 and r.receipt_at]
    # redial back-off (up to ~8 s after an 8 s cut) + one regossip period (3 s), not the
    # ~34 s until the load stops and the chain goes idle
    assert len(waits) > 50 and max(waits) < 25, (len(waits), max(waits))


def _fault_tools() -> None:
    """Disk and clock faults need root, loop devices, e2fsprogs and libfaketime; CI has
    them (.ci/run installs faketime and sets LEDGERLAB_REQUIRE_FAULT_TOOLS)."""
    from scripts.chaos import clock, disk

    why = disk.available() or (None if clock.library() else "libfaketime is not installed")
    if why is None:
        return
    if os.environ.get("LEDGERLAB_REQUIRE_FAULT_TOOLS"):
        pytest.fail(why)
    pytest.skip(why)


def test_disk_full_read_only_and_clock_skew(tmp_path: Path) -> None:
    """node1's disk fills up and is freed (it refuses txs meanwhile, then restarts
    itself from disk); node2's filesystem turns read-only (it is stopped, fsck'd,
    remounted, restarted); node3 runs 5 minutes behind. Nothing acknowledged is lost and
    every node catches up."""
    _fault_tools()
    out = chaos(
        tmp_path,
        """
        duration = 40
        [[perturbation]]
        at = 3
        kind = "disk_full"
        node = 1
        duration = 7
        [[perturbation]]
        at = 14
        kind = "read_only"
        node = 2
        duration = 5
        [[perturbation]]
        at = 23
        kind = "clock_skew"
        node = 3
        offset = -300
        duration = 10
        """,
    )
    assert out.verdict.ok, explain(out)
    for kind in ("disk_full", "read_only", "clock_skew"):
        assert applied(out, kind) == 1, kind
    checks = {c["name"]: c for c in out.report["checks"]}
    assert checks["storage faults"]["ok"], checks["storage faults"]
    assert set(out.report["storage_faults"]) == {"node1", "node2"}
    assert "No space left" in out.report["storage_faults"]["node1"][0]["reason"]
    assert "Read-only" in out.report["storage_faults"]["node2"][0]["reason"]
    records = load_records(out.run_dir / "txs.json")
    assert sum(r.refusals["StorageUnavailable"] for r in records) > 0
    assert out.report["txs"]["lost"] == 0


def test_hostile_clients_beside_twins(tmp_path: Path) -> None:
    """node0's key runs in two processes, each talking to half the honest nodes; hostile
    clients race one nonce across nodes, send poison pills, replay committed txs and
    flood a pool, while every link is slowed for a while."""
    out = chaos(
        tmp_path,
        """
        duration = 32
        [[perturbation]]
        at = 20
        kind = "slow"
        links = "all"
        delay_ms = 50
        duration = 5
        """,
        byzantine={0: "twins"},
        hostile=True,
    )
    assert out.verdict.ok, explain(out)
    hostile = out.report["hostile"]
    assert hostile["nonce_race"]["sent"] > 0 and hostile["poison"]["sent"] > 0
    assert hostile["replay"]["sent"] > 0 and hostile["flood"]["answers"].get("TxPoolIsFull")
    names = {c["name"] for c in out.report["checks"]}
    assert {"hostile: nonce pairs", "hostile: poison pills"} <= names
    assert any(e["kind"] == "twins" for e in out.report["events"])
