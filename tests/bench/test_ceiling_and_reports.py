"""The benchmark's pieces that need no nodes: the ceiling's minimal work, the saturation
rule, the timeline and CDF, the sweep's medians and its table, plot and HTML page."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import coincurve
import msgpack
import pytest

from consensus.crypto import address_of
from node.ledger.tx import SignedTransaction
from scripts import bench_ceiling
from scripts.bench_figures import cdf_ms, quarters, timeline
from scripts.bench_report import save_figure, sweep_figure, sweep_html
from scripts.bench_saturation import past_saturation
from scripts.bench_sweep import SweepPlan, parse_list, summarise
from scripts.benchmark import BenchPlan
from scripts.errors import CommandError


def test_the_minimal_work_hashes_what_was_signed_and_recovers_the_signer() -> None:
    raws = bench_ceiling.sample_transfers(20)
    for raw in raws:
        stx = SignedTransaction.decode(raw)  # the node's own decoder accepts them
        body = b"\x98" + raw[1 : -bench_ceiling._SIGNATURE_TAIL]
        assert hashlib.sha3_256(body).digest() == stx.tx.signing_hash
        key = coincurve.PublicKey.from_signature_and_message(
            msgpack.unpackb(raw)[8], stx.tx.signing_hash, hasher=None
        )
        assert address_of(key.format(compressed=False)[1:]) == stx.recover_sender()


def test_the_minimal_work_applies_every_transfer() -> None:
    raws = bench_ceiling.sample_transfers(200)
    state: dict[str, int] = {}
    bench_ceiling.minimal_work(raws, state)
    assert sum(state.values()) == len(state) * (1 << 60)  # transfers move, never mint
    moved = sum(abs(v - (1 << 60)) for v in state.values())
    assert moved > 0


def test_ceiling_formula_and_cores() -> None:
    c = bench_ceiling.measure(nodes=4, cores=2, txs=100, rounds=3)
    assert c.cost_us == min(c.rounds_us) > 0 and len(c.rounds_us) == 3
    assert c.tps == pytest.approx(2 / (4 * c.cost_us * 1e-6))
    wide = bench_ceiling.Ceiling(30.0, (30.0,), 204, cores=8, nodes=4)
    assert wide.busy_cores == 4  # a node runs its Python work on one core
    assert wide.tps == pytest.approx(4 / (4 * 30e-6))
    mine = len(os.sched_getaffinity(0))
    assert bench_ceiling.cores_of([os.getpid()]) == mine
    assert bench_ceiling.cores_of([]) == mine  # nobody to ask: this process's mask
    assert bench_ceiling.cores_of([2**22 + 12345]) == mine  # no such process


def test_the_minimal_work_timed_in_several_processes_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert bench_ceiling.main(["--concurrent", "2", "--txs", "40", "--rounds", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["worker 0", "worker 1"]
    for line in lines:
        best = float(line.split("best ")[1].split(" µs")[0])
        median = float(line.split("median ")[1].split(" µs")[0])
        assert 0 < best <= median and line.endswith("(2 at once)")


def step(rate: float, **kw: object) -> dict:
    figures = {
        "rejected": {},
        "offered_tps": rate,
        "p50_first_quarter_ms": 100.0,
        "p50_last_quarter_ms": 120.0,
        "latency_ms": {"p99": 300.0},
    }
    figures.update(kw)
    return figures


def test_saturation_rule() -> None:
    assert past_saturation(step(1000), 1000, 1000) == ""
    assert "refused" in past_saturation(step(1000, rejected={"TxPoolIsFull": 3}), 1000, 1000)
    assert "offered only" in past_saturation(step(900), 1000, 1000)
    assert "growing queue" in past_saturation(step(1000, p50_last_quarter_ms=500.0), 1000, 1e4)
    assert "p99" in past_saturation(step(1000, latency_ms={"p99": 2000.0}), 1000, 1000)


def test_timeline_and_cdf() -> None:
    commits = [10.0 + i * 0.01 for i in range(3000)]  # 100 tx/s for 30 s
    width, points = timeline(commits, 10.0)
    assert width == 1.0 and len(points) == 30
    assert all(p[1] == pytest.approx(100, abs=1) for p in points)
    width, points = timeline(commits[:200], 10.0)  # a 2 s run: 0.1 s buckets
    assert width == 0.1 and sum(p[1] * width for p in points) == pytest.approx(200)
    assert timeline([], 0.0) == (1.0, [])
    cdf = cdf_ms([0.001 * i for i in range(1, 1001)])
    assert len(cdf) == 101 and cdf == sorted(cdf) and cdf[0] == 1.0 and cdf[-1] == 1000.0
    growing = [(i * 0.01, i * 0.01 + 0.1 + i * 0.001) for i in range(400)]  # queue grows
    q = quarters(list(reversed(growing)))  # ordered by submit time, whatever the input order
    assert q["p50_first_quarter_ms"] == pytest.approx(150, abs=2)
    assert q["p50_last_quarter_ms"] == pytest.approx(450, abs=2)


def run(tps: float, ratio: float, p99: float, ok: bool = True) -> dict:
    return {
        "committed_tps": tps,
        "ceiling_tps": tps / ratio,
        "ratio": ratio,
        "cores_used": 1.5,
        "cpu_ratio": ratio * 1.2,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "view_changes": 0,
        "per_node": {"node0": {"rss_mb": 80.0}, "node1": {"rss_mb": None}},
        "cores": 2,
        "ok": ok,
        "machine": {"loadavg_before": [1.0, 1.0, 1.0]},
    }


def test_sweep_medians_table_plot_and_page(tmp_path: Path) -> None:
    row = summarise(
        ("tcp", 1000, 4), [run(7000, 0.5, 300), run(5000, 0.4, 900), run(6000, 0.45, 400)]
    )
    assert (row["committed_tps"], row["ratio"], row["p99_ms"]) == (6000, 0.45, 400)
    assert row["max_rss_mb"] == 80.0 and row["runs"] == 3 and row["ok"] is True
    failed = summarise(("tcp", 1000, 7), [run(4000, 0.5, 300)], ["no commit"])
    assert failed["ok"] is False and failed["failures"] == ["no commit"]
    rows = [row, {**failed, "nodes": 7}]
    png = tmp_path / "sweep.png"
    save_figure(sweep_figure(rows), png)
    assert png.read_bytes()[:4] == b"\x89PNG"
    page = sweep_html(rows, {"cpus": 2, "cpu_model": "x", "python": "3.11"})
    assert page.count("<svg") == 1 and "6,000" in page and "<script" not in page


def test_sweep_options_are_checked() -> None:
    assert parse_list("4, 7,10", "--sweep-nodes") == (4, 7, 10)
    with pytest.raises(CommandError, match="--sweep-nodes"):
        parse_list("4,x", "--sweep-nodes")
    with pytest.raises(CommandError, match="--repeat"):
        SweepPlan(BenchPlan(), repeat=0).check()
    with pytest.raises(CommandError, match="--nodes"):
        SweepPlan(BenchPlan(), nodes=(4, 99)).check()
    with pytest.raises(CommandError, match="--dir"):
        SweepPlan(BenchPlan(attach=Path("x"))).check()


def test_a_permissioned_chain_needs_an_admin_key(tmp_path: Path) -> None:
    from scripts.benchmark import BenchFailed, signing_key
    from scripts.launcher import accounts
    from scripts.launcher.layout import init_chain

    chain = init_chain(tmp_path / "open", nodes=1)
    admin = chain.accounts_dir / "admin.key"
    assert signing_key(chain).address == accounts.load_key(admin).address
    admin.unlink()
    assert signing_key(chain).address != signing_key(chain).address  # open mode: any fresh key
    closed = init_chain(tmp_path / "closed", nodes=1, permissioned=True)
    key = signing_key(closed)
    assert key.address in closed.genesis().asset_admins
    for f in closed.accounts_dir.iterdir():
        f.unlink()
    with pytest.raises(BenchFailed, match="may create DagTransfer users"):
        signing_key(closed)


def test_the_ceiling_after_the_load_is_reported_and_a_drift_called_out() -> None:
    from scripts.commands.bench import _ceiling_after_text

    def report(before: float, after: float) -> dict[str, object]:
        return {
            "ceiling": {"cost_us": before},
            "ceiling_after": {"cost_us": after},
            "ceiling_drift": round(after / before, 3),
            "ratio_after": 0.5,
        }

    steady = _ceiling_after_text(report(60.0, 63.0))
    assert "63.0 µs right after it (ratio 0.50 against that)" in steady
    assert "speed moved" not in steady
    slower = _ceiling_after_text(report(60.0, 90.0))
    assert "speed moved during the run (minimal work x1.50)" in slower
    faster = _ceiling_after_text(report(90.0, 60.0))
    assert "x0.67" in faster
    assert _ceiling_after_text({"ceiling_after": None, "ceiling_drift": None}) == ""
