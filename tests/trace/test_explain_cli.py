"""`ledgerlab explain`: what it prints for a trace, and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.sim import run_scenario
from consensus.sim.trace import JsonlTrace
from scripts.cli import main
from tests.trace import scenarios


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "eq.jsonl"
    with open(path, "w") as fh:
        run_scenario(scenarios.equivocation(), trace=JsonlTrace(fh))
    return path


def test_overview_lists_heights_view_changes_and_faults(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "node3 (equivocate)" in out and "1..4" in out and "3 (equivocate)" in out


def test_height_and_view_change(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", str(trace), "--height", "3"]) == 0
    assert "EQUIVOCATES" in capsys.readouterr().out
    assert main(["explain", str(trace), "--view-change", "1"]) == 0
    assert "view change to view 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--height", "0"], "--height must be at least 1"),
        (["--height", "2", "--view-change", "1"], "not both"),
        (["--height", "99"], "--height 99: not in this trace; it has heights 1..5"),
        (["--view-change", "9"], "--view-change 9: not in this trace"),
        (["--view-change", "9"], "view changes to views 1"),
    ],
)
def test_bad_options(
    trace: Path, args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(trace), *args]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert fragment in err and "Traceback" not in err and not captured.out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read"),
        (b"", "empty"),
        (b'{"ev":"commit","t":0,"node":0,"height":1,"view":0,"block":"x"}\n', "header"),
        (b"\xff\xfe\x00garbage\n", "not UTF-8"),
    ],
)
def test_bad_files(
    tmp_path: Path, content: bytes | None, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "t.jsonl"
    if content is not None:
        path.write_bytes(content)
    assert main(["explain", str(path), "--height", "1"]) == 1
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") <= 2, err
