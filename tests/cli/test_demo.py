"""``ledgerlab demo --short``: the README's main job, end to end, in a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.launcher import procs
from scripts.launcher.layout import is_chain, load_chain
from tests.cli.conftest import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow


def test_short_demo_runs_checks_and_stops_everything(tmp_path: Path, chain_root: Path) -> None:
    res = run_cli("demo", "--short", "--dir", str(chain_root), cwd=tmp_path, timeout=150)
    assert res.code == 0, (res.out[-3000:], res.err[-3000:])
    assert "Traceback" not in res.err
    out = res.out
    for fragment in (
        "4 node processes up and connected",
        "created 20 users",
        "stopped node3",
        "restarted node3",
        "caught up in",
        "all 4 nodes hold block",
        "0 failed",
        "✓ 20,000,000 = 20 users x 1,000,000 on every node",
        "tx/s",
        "p50",
    ):
        assert fragment in out, fragment
    assert is_chain(chain_root)
    chain = load_chain(chain_root)
    assert procs.running_nodes(chain) == {}
    assert not any(n.pid_path.exists() for n in chain.nodes)


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    assert_one_line_error(run_cli("demo", "--dir", "busy", cwd=tmp_path), "not empty")
