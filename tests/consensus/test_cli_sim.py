"""``ledgerlab sim`` end to end through the CLI dispatcher (in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["sim", "--no-live", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_run_passes_and_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--blocks", "5")
    assert code == 0
    for text in ("blocks committed", "5 of 5", "agreement", "commit latency", "no empty"):
        assert text in out


def test_json_summary_has_the_documented_fields(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "out.json"
    code, _, _ = run(
        capsys,
        "--nodes",
        "7",
        "--faulty",
        "2",
        "--fault",
        "double-vote",
        "--blocks",
        "6",
        "--seed",
        "3",
        "--fake-signatures",
        "--json",
        str(target),
    )
    assert code == 0
    s = json.loads(target.read_text())
    assert s["nodes"] == 7 and s["f"] == 2 and s["seed"] == 3
    assert s["blocks_committed"] == 6
    assert set(s["invariants"]) == {"agreement", "validity", "integrity", "liveness"}
    assert {"p50", "p99"} <= set(s["commit_latency_ms"])
    assert {"Prepare", "Commit", "PrePrepare"} <= set(s["messages"])
    honest = [n for n in s["per_node"] if n["honest"]]
    assert len(honest) == 5 and all(n["committed_height"] == 6 for n in honest)
    assert all(len(n["head_hash"]) == 64 for n in s["per_node"])
    assert isinstance(s["view_changes"], int)


def test_trace_and_explain(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    code, out, _ = run(
        capsys, "--blocks", "3", "--fake-signatures", "--trace", str(trace), "--explain", "2"
    )
    assert code == 0
    lines = trace.read_text().splitlines()
    assert lines and all(json.loads(x)["t"] >= 0 for x in lines)
    assert "height 2, step by step" in out and "height 2 was decided in view 0" in out
    assert "PREPARED" in out and "COMMITTED" in out


def test_explain_beyond_the_run_names_the_heights_it_has(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--blocks", "3", "--fake-signatures", "--explain", "99")
    assert code == 0  # the run itself is fine
    flat = " ".join(out.split())
    assert "--explain 99: not in this run; it has heights 1..4 (committed 1..3)" in flat
    assert "nothing in this trace concerns it" not in out


def test_toml_scenario_with_partition(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'nodes = 4\nblocks = 12\nseed = 2\nsignatures = "fake"\ntx_interval_ms = 100.0\n'
        "[network]\nlatency_ms = 10\n"
        "[[partition]]\ngroups = [[0, 1]]\nstart_ms = 300\nheal_ms = 2500\n"
        '[[byzantine]]\nnode = 3\nbehaviour = "spam"\n'
    )
    code, out, _ = run(capsys, "--scenario", str(f), "--json", "-")
    assert code == 0
    s = json.loads(out)
    assert s["byzantine"] == {"3": "spam"} and s["ok"]


def test_broken_safety_rule_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--blocks",
        "2",
        "--seed",
        "5",
        "--fake-signatures",
        "--break",
        "skip-reproposal",
        "--drop-commits-to",
        "1,2,3",
    )
    assert code == 1
    assert "FAILED" in out and "fork at height 1" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["--partition", "x@1"],
        ["--crash", "a@b"],
        ["--nodes", "4", "--faulty", "9"],
        ["--drop", "1.5"],
        ["--scenario", "/nonexistent.toml"],
        ["--nodes", "0"],
    ],
)
def test_bad_input_is_one_clear_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert "error:" in err and "Traceback" not in err


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sim", "--help"])
    assert exc.value.code == 0
    assert "ledgerlab sim --nodes 7 --faulty 2" in capsys.readouterr().out
