"""``ledgerlab chaos`` argument mistakes are one line each, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.cli import main

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "1", "--schedule", "x.toml"], "alternatives"),
        (["--byzantine", "3=lying"], "NODE=BEHAVIOUR"),
        (["--byzantine", "7=silent"], "outside 0..3"),
        (["--kinds", "kill,explode"], "unknown explode"),
        (["--dir", "somewhere", "--nodes", "7"], "its own"),
        (["--seeds", "3", "--dir", "somewhere"], "fresh clusters"),
        (["--byzantine", "3=twins", "--transport", "mqtt"], "fresh TCP cluster"),
    ],
)
def test_mistakes_are_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chaos", *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_bad_schedule_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "s.toml"
    bad.write_text('[[perturbation]]\nat = 1\nkind = "explode"\n')
    assert main(["chaos", "--schedule", str(bad), "--work-dir", str(tmp_path / "w")]) != 0
    err = capsys.readouterr().err
    assert "explode" in err and "Traceback" not in err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["chaos", "--help"])
    assert "--seeds 60" in capsys.readouterr().out


def test_disk_faults_need_a_cluster_of_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schedule with a disk fault is refused with --dir (the data folders are yours)."""
    from scripts.chaos.runner import _check_can
    from scripts.chaos.schedule import Perturbation, Schedule
    from scripts.errors import CommandError

    sched = Schedule((Perturbation(5, "disk_full", node=1, duration=5),), 20)
    with pytest.raises(CommandError, match="data folders are yours"):
        _check_can(sched, fresh=False)
