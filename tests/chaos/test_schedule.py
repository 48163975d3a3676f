"""Schedules: a seed always gives the same one, TOML round-trips, bad files say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.chaos import schedule as sch
from scripts.chaos.schedule import Perturbation, ScheduleError, Shape

pytestmark = pytest.mark.timeout(30)


def test_a_seed_gives_the_same_schedule() -> None:
    shape = Shape(nodes=4)
    assert sch.generate(7, 120, shape) == sch.generate(7, 120, shape)
    assert sch.generate(7, 120, shape) != sch.generate(8, 120, shape)


def test_generated_schedules_stay_inside_the_run_and_respect_the_shape() -> None:
    for seed in range(40):
        s = sch.generate(seed, 90, Shape(nodes=4, transport="tcp"))
        assert all(p.at >= sch.WARMUP - 1e-9 for p in s.perturbations)
        assert all(p.at + p.span <= 90 - sch.COOLDOWN + 20 for p in s.perturbations)
        assert "broker_restart" not in s.counts()
        for p in s.perturbations:
            sch.check(p, 4)
    attached = sch.generate(3, 200, Shape(nodes=4, network=False))
    assert not set(attached.counts()) & sch.NETWORK_KINDS
    mqtt = [sch.generate(s, 200, Shape(nodes=4, transport="mqtt")).counts() for s in range(10)]
    assert any("broker_restart" in c for c in mqtt)


def test_partitions_isolate_f_or_leave_no_side_a_quorum() -> None:
    from consensus.quorum import quorum

    seen = set()
    for seed in range(60):
        for p in sch.generate(
            seed, 200, Shape(nodes=4, kinds=frozenset({"partition"}))
        ).perturbations:
            small = min(len(g) for g in p.groups)
            assert all(len(g) < quorum(4) for g in p.groups) or small == 1
            seen.add(max(len(g) for g in p.groups) >= quorum(4))
    assert seen == {True, False}  # both shapes occur


def test_byzantine_nodes_are_not_chosen_as_crash_victims() -> None:
    s = sch.generate(5, 300, Shape(nodes=4, byzantine=frozenset({3}), kinds=frozenset({"kill"})))
    assert s.perturbations and all(p.node != 3 for p in s.perturbations)


def test_toml_round_trip(tmp_path: Path) -> None:
    s = sch.generate(11, 150, Shape(nodes=4))
    path = tmp_path / "s.toml"
    path.write_text(sch.to_toml(s))
    back = sch.load(path, 4)
    assert back.perturbations == s.perturbations
    assert back.duration == 150 and back.seed == 11


def test_a_hand_written_schedule(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        """
        duration = 30
        [[perturbation]]
        at = 10
        kind = "partition"
        groups = [[0, 1], [2, 3]]
        duration = 4
        [[perturbation]]
        at = 2
        kind = "kill"
        node = "leader"
        duration = 3
        [[perturbation]]
        at = 5
        kind = "slow"
        links = "all"
        delay_ms = 50
        duration = 4
        """
    )
    s = sch.load(path, 4)
    assert [p.kind for p in s.perturbations] == ["kill", "slow", "partition"]
    assert s.perturbations[0].node == "leader"
    assert s.perturbations[1].links is None
    assert s.perturbations[2].groups == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[perturbation]]\nat = 1\nkind = "explode"', "unknown"),
        ('[[perturbation]]\nkind = "kill"\nnode = 1', "needs `at`"),
        ('[[perturbation]]\nat = 1\nkind = "kill"\nnode = 40', "node must be"),
        ('[[perturbation]]\nat = 1\nkind = "kill"\nnode = 1\ngroups = [[1]]', "unknown fields"),
        ('[[perturbation]]\nat = 1\nkind = "partition"\ngroups = [[0, 1]]', "two or more"),
        ('[[perturbation]]\nat = 3\nkind = "stale_restart"\nnode = 1\nage = 5', "before the start"),
        ('[[perturbation]]\nat = 1\nkind = "lossy"\nloss = 1.5', "probabilities"),
        ("durationx = 3", "unknown top-level"),
        ("[[perturbation", "s.toml"),
    ],
)
def test_bad_schedules_say_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(body)
    with pytest.raises(ScheduleError, match=message):
        sch.load(path, 4)


def test_spans() -> None:
    assert Perturbation(0, "leader_kill", count=3, duration=2, interval=4).span == 14
    assert Perturbation(0, "kill", node=1, duration=5).span == 5


def test_disk_and_clock_faults_come_only_where_they_can_run() -> None:
    plain = [sch.generate(s, 300, Shape(nodes=4)).counts() for s in range(20)]
    assert not any(set(c) & (sch.DISK_KINDS | sch.CLOCK_KINDS) for c in plain)
    able = Shape(nodes=4, disk=True, clock=True, byzantine=frozenset({2}))
    seen: set[str] = set()
    for seed in range(30):
        for p in sch.generate(seed, 300, able).perturbations:
            if p.kind in sch.DISK_KINDS | sch.CLOCK_KINDS:
                seen.add(p.kind)
                assert p.node != 2 and isinstance(p.node, int)
                assert p.kind != "clock_skew" or 0 < abs(p.offset) <= sch.MAX_SKEW
    assert seen == {"disk_full", "read_only", "clock_skew"}
    mqtt = Shape(nodes=4, transport="mqtt", clock=True, kinds=frozenset({"clock_skew"}))
    offsets = [p.offset for s in range(20) for p in sch.generate(s, 200, mqtt).perturbations]
    assert offsets and max(abs(o) for o in offsets) < 300  # MQTT's max_age


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('kind = "clock_skew"\nnode = 1\nduration = 5', "offset must be non-zero"),
        ('kind = "clock_skew"\nnode = 1\noffset = 7200\nduration = 5', "within"),
        ('kind = "disk_full"\nnode = "leader"\nduration = 5', "node must be"),
        ('kind = "read_only"\nnode = -1\nduration = 5', "node must be"),
    ],
)
def test_bad_disk_and_clock_entries_say_why(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f"[[perturbation]]\nat = 5\n{entry}\n")
    with pytest.raises(ScheduleError, match=message):
        sch.load(path, 4)


def test_disk_and_clock_entries_round_trip(tmp_path: Path) -> None:
    s = sch.Schedule(
        (
            Perturbation(5, "disk_full", node=1, duration=6),
            Perturbation(15, "read_only", node=2, duration=4),
            Perturbation(25, "clock_skew", node=3, offset=-300, duration=8),
        ),
        40,
    )
    path = tmp_path / "s.toml"
    path.write_text(sch.to_toml(s))
    assert sch.load(path, 4).perturbations == s.perturbations
