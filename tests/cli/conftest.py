"""Helpers for the end-to-end CLI tests: run the real ``ledgerlab`` in a subprocess.

Every chain uses random free port blocks (never the defaults), so these tests do not
collide with a user's chain or with each other; every fixture that starts nodes stops
them by pid in a ``finally``, whatever the test did.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.launcher import procs
from scripts.launcher.layout import is_chain, load_chain

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run_cli(
    *args: str, cwd: Path, timeout: float = 60.0, env: dict[str, str] | None = None
) -> Result:
    """``ledgerlab ARGS`` as a user would run it (``python -m scripts``)."""
    full_env = {k: v for k, v in os.environ.items() if k != "LEDGERLAB_DIR"}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), full_env.get("PYTHONPATH")) if p
    )
    full_env["COLUMNS"] = "200"
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "scripts", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(res: Result, *fragments: str) -> None:
    """A user error: non-zero exit, ``error: ...`` plus at most a hint line, no traceback."""
    assert res.code != 0, res.out
    assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
    lines = res.error_lines
    assert 1 <= len(lines) <= 2, lines
    assert lines[0].startswith("error: "), lines
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), lines
    for fragment in fragments:
        assert fragment in res.err, (fragment, res.err)


def up_chain(root: Path, cwd: Path, *extra: str, span: int = 4, timeout: float = 90) -> None:
    """``ledgerlab up --nodes 4`` of a new chain in ``root`` on free loopback ports
    (blocks of ``span``); it must succeed. Pair it with :func:`stop_chain`."""
    p2p = procs.free_port_base(span)
    rpc = procs.free_port_base(span, avoid=range(p2p, p2p + span))
    res = run_cli(
        "up", "--nodes", "4", "--dir", str(root), *extra,
        "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=cwd, timeout=timeout,
    )  # fmt: skip
    assert res.code == 0, (res.out, res.err)


def stop_chain(root: Path) -> None:
    """Stop whatever runs from ``root`` (by the pid files), however the test ended."""
    if is_chain(root):
        procs.stop_nodes(load_chain(root).nodes, timeout=10.0)


@pytest.fixture
def ports() -> tuple[int, int]:
    """Free (p2p_base, rpc_base) blocks of 8 ports each."""
    p2p = procs.free_port_base(8)
    rpc = procs.free_port_base(8, avoid=range(p2p, p2p + 8))
    return p2p, rpc


@pytest.fixture
def chain_root(tmp_path: Path) -> Iterator[Path]:
    """Where a test's chain lives; its nodes are stopped afterwards in any case."""
    root = tmp_path / "chain"
    try:
        yield root
    finally:
        stop_chain(root)
