"""The CI chaos suite: real node processes, real faults, the runner's checks must pass.

Each case is one short run (about 40 s on two cores): a fresh 4-sealer TCP chain behind
the fault proxies, a DagTransfer workload, a schedule, then every check of
scripts/chaos/checker.py (same blocks and valid seals on every node, every acknowledged
transaction committed exactly once, supply, catch-up, the stall bound, no crash).

The second half (membership, an observer, disk and clock faults, hostile clients) is in
test_live_members_disks_hostile.py: two modules, so a parallel run (`pytest -n`) can run
the halves side by side.
"""

from __future__ import annotations

from pathlib import Path

import pytest

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
