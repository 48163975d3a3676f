"""``ledgerlab bench`` end to end: the real command in a subprocess, real node processes.

The benchmark picks its own random free port blocks and stops every process it started,
so these tests neither collide with a user's chain nor leave anything running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mqtt_broker_url

REPO = Path(__file__).resolve().parents[2]


def run_bench(*args: str, cwd: Path, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LEDGERLAB_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "scripts", "bench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def node_pids_of(root: Path) -> list[int]:
    """Pids of node processes whose command line names a config under ``root``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(root).encode() in part for part in cmdline) and b"node" in cmdline:
            pids.append(int(entry.name))
    return pids


def check_result(result: dict, txs: int) -> None:
    assert result["submitted"] == txs
    assert result["committed"] == txs == result["accepted"], result["rejected"]
    assert result["heads_identical"], (result["heights"], result["head_hash"])
    assert len(set(result["heights"])) == 1
    assert result["supply_ok"] and result["supply"] == [result["expected_supply"]] * 4
    assert result["tps"] > 0 and result["blocks"] >= 1
    assert result["latency_ms"]["samples"] > 0
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert result["ok"] is True


@pytest.mark.slow
def test_tiny_tcp_benchmark_commits_everything(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    chain = tmp_path / "chain"
    proc = run_bench(
        "--nodes", "4", "--txs", "200", "--users", "20", "--block-txs", "100",
        "--batch", "50", "--json", str(out), "--dir", str(chain),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    result = json.loads(out.read_text())
    check_result(result, 200)
    assert result["plan"]["transport"] == "tcp"
    for text in ("throughput", "latency", "heads", "total supply", "200 of 200"):
        assert text in proc.stdout, text
    assert node_pids_of(chain) == []  # every node process it started is gone


@pytest.mark.slow
@pytest.mark.mqtt
def test_tiny_mqtt_benchmark_commits_everything(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = run_bench(
        "--nodes", "4", "--txs", "200", "--users", "20", "--block-txs", "100",
        "--batch", "50", "--transport", "mqtt", "--broker", mqtt_broker_url(),
        "--json", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    check_result(result, 200)
    assert result["plan"]["transport"] == "mqtt"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--block-txs", "0"], "--block-txs"),
        (["--txs", "0"], "--txs"),
        (["--users", "1"], "--users"),
        (["--txs", "100000", "--block-txs", "10"], "stay valid"),
        (["--rate", "-5"], "--rate"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    proc = run_bench(*args, cwd=tmp_path, timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: ") and fragment in proc.stderr


def test_a_non_empty_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    proc = run_bench("--dir", str(tmp_path / "busy"), cwd=tmp_path, timeout=30)
    assert proc.returncode == 1 and "not empty" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_every_node_it_started(tmp_path: Path, sig: signal.Signals) -> None:
    chain = tmp_path / "chain"
    env = {k: v for k, v in os.environ.items() if k != "LEDGERLAB_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts", "bench", "--txs", "100000", "--block-txs", "2000",
         "--dir", str(chain)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "node processes up" in line:
                break
        assert len(node_pids_of(chain)) == 4
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130, proc.stderr.read() if proc.stderr else ""
    assert node_pids_of(chain) == []
