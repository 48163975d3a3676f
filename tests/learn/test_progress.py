"""The progress file: a file that is not a progress record is never overwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.cli import main
from scripts.learn.progress import Progress

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    "content",
    [b"{bad", b"[1, 2]", b'{"name": "my notes"}', b"\xff\xfe\x00binary", b"# README\n"],
)
def test_a_foreign_file_is_left_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "notes.json"
    path.write_bytes(content)
    assert main(["learn", "8", "--answer", "1", "--no-diagram", "--progress", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "progress not saved" in out and "not a learn progress file" in out
    assert path.read_bytes() == content
    assert main(["learn", "--reset", "--progress", str(path)]) == 0
    assert path.read_bytes() == content


def test_missing_empty_and_real_progress_files_are_written(tmp_path: Path) -> None:
    for name, content in (("missing.json", None), ("empty.json", b""), ("blank.json", b"\n")):
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        p = Progress(path)
        p.record(1, right=True, seed=1)
        p.save()
        assert json.loads(path.read_text())["exercises"]["1"]["solved"] is True
        again = Progress(path)
        again.record(2, right=False, seed=3)
        again.save()
        assert set(json.loads(path.read_text())["exercises"]) == {"1", "2"}
