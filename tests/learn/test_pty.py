"""``ledgerlab learn`` driven in a pseudo-terminal: answers typed in, the verdict read back."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
PROMPT = "your answer>"


class Terminal:
    """``python -m scripts ARGS`` on the slave side of a pty, read and typed into."""

    def __init__(self, *args: str, progress: Path) -> None:
        master, slave = pty.openpty()
        env = dict(os.environ, LEDGERLAB_LEARN_PROGRESS=str(progress), COLUMNS="120")
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=REPO,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.seen = ""

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.plain:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} not seen; output so far:\n{self.plain}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready and not self._read():
                raise AssertionError(f"EOF before {text!r}; output:\n{self.plain}")
        return self.plain

    def _read(self) -> bool:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.seen += data.decode("utf-8", "replace")
        return bool(data)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def finish(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready and not self._read():
                break
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code

    @property
    def plain(self) -> str:
        return ANSI.sub("", self.seen).replace("\r", "")


@pytest.mark.timeout(120)
def test_right_answer_typed_in_a_terminal(tmp_path: Path) -> None:
    term = Terminal("learn", "3", progress=tmp_path / "p.json")
    term.read_until(PROMPT)
    assert "Which node sent the NewView that started view 1?" in term.plain
    term.type("2")
    code = term.finish()
    out = term.plain
    assert code == 0, out
    assert "RIGHT: 2" in out
    assert "(1 + 1) % 4 = 2" in out  # the explanation is the run's, not a canned line
    assert '"solved": true' in (tmp_path / "p.json").read_text()


@pytest.mark.timeout(120)
def test_wrong_then_unreadable_answers_in_a_terminal(tmp_path: Path) -> None:
    term = Terminal("learn", "1", progress=tmp_path / "p.json")
    term.read_until(PROMPT)
    term.type("lots")  # not a number: asked again, nothing recorded
    term.read_until("try again")
    term.type("7")
    code = term.finish()
    out = term.plain
    assert code == 1, out
    assert "NOT QUITE: you said '7'; this run says 3" in out
    assert "quorum is n - f = 3" in out
    assert '"solved": false' in (tmp_path / "p.json").read_text()
