"""``ledgerlab chaos --dir`` twice on one running chain: each run keeps its files in a
folder of its own. (The data copies of ``stale_restart`` once went to ``DIR/snapshots``
under a name the next run with the same schedule reused: that run ended in a
FileExistsError traceback, with no report.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run_cli, stop_chain, up_chain

pytestmark = pytest.mark.timeout(240)

SCHEDULE = """\
duration = 10
[[perturbation]]
at = 7
kind = "stale_restart"
node = 3
age = 4
"""


def test_two_attached_runs_with_a_stale_restart_both_pass(tmp_path: Path) -> None:
    root = tmp_path / "chain"
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(SCHEDULE)
    try:
        up_chain(root, tmp_path)
        for _ in range(2):
            res = run_cli(
                "chaos", "--dir", str(root), "--schedule", str(schedule),
                cwd=tmp_path, timeout=100,
            )  # fmt: skip
            assert res.code == 0 and "Traceback" not in res.err, (res.out[-2000:], res.err)
            assert "chaos run passed" in res.out
            assert "restarted from data" in res.out  # the stale restart really ran
        runs = sorted((root / "chaos").iterdir())
        assert len(runs) == 2
        for run in runs:
            assert (run / "schedule.toml").is_file() and (run / "txs.json").is_file()
            (copy,) = (run / "snapshots").iterdir()  # node3-<seconds into the run>
            assert copy.name.startswith("node3-")
        assert not (root / "snapshots").exists()
    finally:
        stop_chain(root)
