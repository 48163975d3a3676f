"""The CI chaos suite: real node processes, real faults, the runner's checks must pass.

Each case is one short run (about 40 s on two cores): a fresh 4-sealer TCP chain behind
the fault proxies, a DagTransfer workload, a schedule, then every check of
scripts/chaos/checker.py (same blocks and valid seals on every node, every acknowledged
transaction committed exactly once, supply, catch-up, the stall bound, no crash).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.chaos.runner import load_records
from tests.chaos.conftest import applied, chaos, explain

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_kill_and_restart(tmp_path: Path) -> None:
    out = chaos(
        tmp_path,
        """
        duration = 22
        [[perturbation]]
        at = 2
        kind = "kill"
        node = 1
        duration = 5
        [[perturbation]]
        at = 11
        kind = "pause"
        node = 2
        duration = 4
        [[perturbation]]
        at = 17
        kind = "kill"
        node = 3
        duration = 2
        """,
    )
    assert out.verdict.ok, explain(out)
    assert applied(out, "kill") == 2 and applied(out, "pause") == 1
    assert out.report["restarts"]["node1"] == 1 and out.report["restarts"]["node3"] == 1
    assert out.report["txs"]["lost"] == 0 and out.report["txs"]["acknowledged"] > 300


def test_leader_kill(tmp_path: Path) -> None:
    """Each kill lasts longer than consensus_timeout (3 s), so the height the dead leader
    leads needs a view change (a leader back within the timeout just proposes)."""
    out = chaos(
        tmp_path,
        """
        duration = 26
        [[perturbation]]
        at = 2
        kind = "leader_kill"
        count = 3
        duration = 5
        interval = 6
        """,
    )
    assert out.verdict.ok, explain(out)
    assert applied(out, "leader_kill") == 3
    kills = [e for e in out.report["events"] if e["action"] == "kill"]
    assert len(kills) == 3
    assert out.report["view_changes"]["views_advanced"] >= 1


def test_partitions_isolate_one_then_leave_no_quorum(tmp_path: Path) -> None:
    out = chaos(
        tmp_path,
        """
        duration = 24
        [[perturbation]]
        at = 2
        kind = "partition"
        groups = [[0], [1, 2, 3]]
        mode = "blackhole"
        duration = 6
        [[perturbation]]
        at = 11
        kind = "partition"
        groups = [[0, 1], [2, 3]]
        mode = "reset"
        duration = 5
        """,
    )
    assert out.verdict.ok, explain(out)
    assert applied(out, "partition") == 2


def test_restart_from_a_stale_copy_of_the_data(tmp_path: Path) -> None:
    out = chaos(
        tmp_path,
        """
        duration = 30
        [[perturbation]]
        at = 26
        kind = "stale_restart"
        node = 2
        age = 24
        """,
    )
    assert out.verdict.ok, explain(out)
    [restore] = [e for e in out.report["events"] if e["action"] == "restore"]
    behind = int(restore["detail"].split("(")[1].split()[0])
    assert behind >= 30, restore  # the copy is dozens of blocks old


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


@pytest.mark.mqtt
def test_mqtt_broker_restart(tmp_path: Path) -> None:
    from tests.brokers import require_mosquitto

    require_mosquitto()
    out = chaos(
        tmp_path,
        """
        duration = 24
        [[perturbation]]
        at = 3
        kind = "broker_restart"
        duration = 3
        [[perturbation]]
        at = 12
        kind = "kill"
        node = 2
        duration = 4
        """,
        transport="mqtt",
    )
    assert out.verdict.ok, explain(out)
    assert out.report["broker_restarts"] == 1


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
