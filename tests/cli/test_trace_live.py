"""A live 4-node chain writes the documented trace format (`up --trace`, `ledgerlab trace`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.trace.schema import read_trace
from tests.cli.conftest import REPO, run_cli
from tests.conftest import interruptible
from tests.trace.test_schema import documented_kinds


def start_traced_chain(
    tmp_path: Path, ports: tuple[int, int], root: Path, byzantine: dict[int, str] | None = None
) -> tuple[str, str]:
    """A fresh 4-node chain at ``root`` started with `up --trace`; its ``--dir`` flag."""
    p2p, rpc = ports
    d = ("--dir", str(root))
    init = ("init", "--nodes", "4", "--p2p-port", str(p2p), "--rpc-port", str(rpc), *d)
    assert run_cli(*init, cwd=tmp_path).code == 0
    for index, behaviour in (byzantine or {}).items():
        config = root / f"node{index}" / "config.toml"
        config.write_text(config.read_text() + f'\n[testing]\nbyzantine = "{behaviour}"\n')
    up = run_cli("up", "--trace", *d, cwd=tmp_path, timeout=120)
    assert up.code == 0, up.err
    return d


def wait_for_header(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until ``trace --follow`` has written its first line (the merged header)."""
    deadline = time.monotonic() + timeout
    while not path.read_bytes().endswith(b"\n"):
        assert proc.poll() is None, f"trace --follow exited with {proc.returncode}"
        assert time.monotonic() < deadline, f"trace --follow wrote nothing in {timeout} s"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_live_trace_parses_with_the_documented_schema(
    tmp_path: Path, ports: tuple[int, int], chain_root: Path
) -> None:
    d = start_traced_chain(tmp_path, ports, chain_root)
    followed = tmp_path / "followed.jsonl"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    follow = subprocess.Popen(
        [sys.executable, "-m", "scripts", "trace", "--follow", "--lag", "0.2", *d],
        cwd=tmp_path,
        env=env,
        stdout=open(followed, "w"),  # noqa: SIM115 - closed with the process
        stderr=subprocess.PIPE,
        preexec_fn=interruptible,
    )
    try:
        # Ctrl-C ends a follow that has started: before, it lands in the verb's start-up
        # (importing every verb: 8-10 s at load 9 on 2 cores), not in the follow loop
        wait_for_header(followed, follow, timeout=120)
        add = run_cli("asset", "add", "alice", "10", *d, cwd=tmp_path, timeout=120)
        assert add.code == 0, add.err
        time.sleep(1.0)  # past the node's 0.2 s flush and the --lag
    finally:
        follow.send_signal(signal.SIGINT)
        try:
            _, err = follow.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            follow.kill()
            _, err = follow.communicate()
            pytest.fail(f"trace --follow still running 30 s after SIGINT: {err!r}")
    assert follow.returncode == 0, err
    assert run_cli("down", *d, cwd=tmp_path, timeout=60).code == 0
    fh, frecs = read_trace(followed)  # attached to the running nodes: the same format
    assert fh["source"] == "live"
    assert any(r["ev"] == "phase" and r["phase"] == "committed" for r in frecs)
    out = tmp_path / "live.jsonl"
    merged = run_cli("trace", *d, "-o", str(out), cwd=tmp_path)
    assert merged.code == 0, merged.err

    header, records = read_trace(out)  # every record checked against the schema
    assert header["source"] == "live" and header["clock"] == "wall"
    assert [n["name"] for n in header["nodes"]] == ["node0", "node1", "node2", "node3"]
    assert header["f"] == 1
    assert {r["ev"] for r in records} <= documented_kinds()
    times = [r["t"] for r in records]
    assert times == sorted(times) and times[0] >= header["t"]
    for node in range(4):
        mine = [r for r in records if r.get("node") == node]
        phases = [(r["phase"], r["height"]) for r in mine if r["ev"] == "phase"]
        assert ("prepared", 1) in phases and ("committed", 1) in phases, (node, phases)
        assert phases.index(("prepared", 1)) < phases.index(("committed", 1))
        senders = {r["from"] for r in mine if r["ev"] == "recv"}
        assert senders and senders <= {0, 1, 2, 3} - {node}
    committed = [r for r in records if r["ev"] == "phase" and r["phase"] == "committed"]
    assert all(r["votes"] >= r["quorum"] == 3 and len(r["voters"]) == r["votes"] for r in committed)

    shown = run_cli("explain", str(out), "--height", "1", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert "height 1 was decided in view 0" in shown.out and "COMMITTED" in shown.out


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_live_equivocation_is_marked_and_explained(
    tmp_path: Path, ports: tuple[int, int], chain_root: Path
) -> None:
    """node3 runs `[testing] byzantine = "equivocate"`; it leads height 3 in view 0."""
    d = start_traced_chain(tmp_path, ports, chain_root, {3: "equivocate"})
    for user in ("a", "b", "c", "d"):
        add = run_cli("asset", "add", user, "10", *d, cwd=tmp_path, timeout=120)
        assert add.code == 0, add.err
    assert run_cli("down", *d, cwd=tmp_path, timeout=60).code == 0
    out = tmp_path / "live.jsonl"
    assert run_cli("trace", *d, "-o", str(out), cwd=tmp_path).code == 0

    header, records = read_trace(out)
    assert [n["behaviour"] for n in header["nodes"]] == [None, None, None, "equivocate"]
    marks = [r for r in records if r["ev"] == "byzantine" and r["type"] == "PrePrepare"]
    assert marks and all(r["node"] == 3 for r in marks)
    versions = marks[0]["versions"]
    assert len({v["proposal"] for v in versions}) == 2
    assert any(v["honest"] for v in versions) and not all(v["honest"] for v in versions)
    evidence = [r for r in records if r["ev"] == "evidence"]
    assert evidence and all(r["against"] == 3 and r["node"] != 3 for r in evidence)
    height = marks[0]["height"]
    shown = run_cli("explain", str(out), "--height", str(height), cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert "EQUIVOCATES" in shown.out and "proof of equivocation" in " ".join(shown.out.split())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_traced_node_keeps_tracing_across_stop_and_start(
    tmp_path: Path, ports: tuple[int, int], chain_root: Path
) -> None:
    """`up --trace`, then `stop-node 3` and a plain `start-node 3`: node3 traces again,
    its clean stop is a `stop` record, and the viewer draws its lane down in between."""
    from scripts.viz import page_data

    d = start_traced_chain(tmp_path, ports, chain_root)
    assert (chain_root / "node3" / "data" / "trace.on").is_file()
    assert run_cli("stop-node", "3", *d, cwd=tmp_path, timeout=60).code == 0
    add = run_cli("asset", "add", "alice", "10", *d, cwd=tmp_path, timeout=120)
    assert add.code == 0, add.err  # 3 of 4 sealers commit
    start = run_cli("start-node", "3", *d, cwd=tmp_path, timeout=120)  # no --trace
    assert start.code == 0, start.err
    add = run_cli("asset", "add", "bob", "10", *d, cwd=tmp_path, timeout=120)
    assert add.code == 0, add.err
    time.sleep(1.0)  # past the nodes' 0.2 s flush
    assert run_cli("down", *d, cwd=tmp_path, timeout=60).code == 0
    out = tmp_path / "live.jsonl"
    assert run_cli("trace", *d, "-o", str(out), cwd=tmp_path).code == 0

    header, records = read_trace(out)
    stops = [(r["node"], r["how"]) for r in records if r["ev"] == "stop"]
    assert stops[0] == (3, "stop-node") and sorted(stops[1:]) == [(n, "down") for n in range(4)]
    mine = [r for r in records if r.get("node") == 3]
    at_stop = next(i for i, r in enumerate(mine) if r["ev"] == "stop")
    after = mine[at_stop + 1 :]
    assert after[0]["ev"] == "restart", after[:2]  # traced again without --trace
    assert any(r["ev"] in ("recv", "synced", "phase") for r in after)
    data = page_data(header, records)
    kinds, (_, nodes, marks, _) = data["markKinds"], data["marks"]
    lane3 = [kinds[k] for n, k in zip(nodes, marks, strict=True) if n == 3]
    assert "stop" in lane3 and lane3.index("stop") < len(lane3) - 1 - lane3[::-1].index("restart")
    assert any(c["title"] == "node3 is stopped" for c in data["captions"])

    # --no-trace turns it off for later starts
    assert run_cli("start-node", "3", "--no-trace", *d, cwd=tmp_path, timeout=120).code == 0
    assert not (chain_root / "node3" / "data" / "trace.on").exists()
    assert run_cli("down", *d, cwd=tmp_path, timeout=60).code == 0
