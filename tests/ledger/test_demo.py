"""The temporary ``ledgerlab demo`` verb runs end to end and fails cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.cli import main


def test_demo_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path / "ledger")]) == 0
    out = capsys.readouterr().out
    assert "total supply 1,670 = minted 1,750 - drawn 80" in out
    assert "NoPermission" in out and "InsufficientBalance" in out


def test_demo_refuses_a_used_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--dir", str(tmp_path)]) == 0
    assert main(["demo", "--dir", str(tmp_path)]) == 1
    assert "already holds a ledger" in " ".join(capsys.readouterr().err.split())
