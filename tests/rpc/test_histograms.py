"""Histograms on /metrics: the exposition format, and that a running cluster records the
commit interval, submit-to-commit latency and view-change duration."""

from __future__ import annotations

import math
import re

import pytest

from node.rpc.metrics import Histogram, render
from node.runtime.latency import MAX_PENDING, Latency
from node.runtime.local import MemoryCluster
from node.runtime.service import NodeService
from tests.runtime.cluster import transfer, wait_until

NAMES = (
    "ledgerlab_commit_interval_seconds",
    "ledgerlab_submit_to_commit_seconds",
    "ledgerlab_view_change_seconds",
)
_SERIES = re.compile(r'^(\w+?)(_bucket\{le="([^"]+)"\}|_sum|_count) (\S+)$')


def parse(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """(cumulative buckets as (le, count), sum, count) of family ``name`` in ``text``."""
    buckets: list[tuple[float, float]] = []
    total = count = math.nan
    for line in text.splitlines():
        m = _SERIES.match(line)
        if not m or m.group(1) != name:
            continue
        if m.group(3) is not None:
            buckets.append((float(m.group(3)), float(m.group(4))))
        elif m.group(2) == "_sum":
            total = float(m.group(4))
        else:
            count = float(m.group(4))
    return buckets, total, count


def test_histogram_exposition() -> None:
    h = Histogram("ledgerlab_x_seconds", "a latency", (0.1, 1.0, 5))
    for v in (0.05, 0.1, 0.5, 2.0, 7.0):
        h.observe(v)
    assert render([h.metric()]) == (
        "# HELP ledgerlab_x_seconds a latency\n"
        "# TYPE ledgerlab_x_seconds histogram\n"
        'ledgerlab_x_seconds_bucket{le="0.1"} 2\n'  # le is "<=": 0.1 falls in 0.1
        'ledgerlab_x_seconds_bucket{le="1.0"} 3\n'
        'ledgerlab_x_seconds_bucket{le="5.0"} 4\n'
        'ledgerlab_x_seconds_bucket{le="+Inf"} 5\n'
        "ledgerlab_x_seconds_sum 9.65\n"
        "ledgerlab_x_seconds_count 5\n"
    )


def test_empty_and_labelled_histogram() -> None:
    h = Histogram("h", "x", (1,))
    text = render([h.metric({"node": "n0"})])
    assert 'h_bucket{node="n0",le="1.0"} 0\n' in text
    assert 'h_bucket{node="n0",le="+Inf"} 0\n' in text
    assert 'h_sum{node="n0"} 0.0\n' in text and 'h_count{node="n0"} 0\n' in text


@pytest.mark.parametrize("bounds", [(), (2, 1), (1, 1), (1, math.inf)])
def test_histogram_bounds_are_checked(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Histogram("h", "x", bounds)


def test_latency_hooks_with_a_fake_clock() -> None:
    now = [10.0]
    lat = Latency(clock=lambda: now[0])
    lat.view_active(True)
    lat.submitted([Exception(), b"a", b"b"])  # first accepted only
    now[0] = 10.3
    lat.committed([b"b", b"a"])  # first commit: no interval yet
    now[0] = 11.0
    lat.committed([])
    lat.view_active(False)
    now[0] = 13.5
    lat.view_active(False)  # still changing
    lat.view_active(True)
    assert (lat.submit_to_commit.count, round(lat.submit_to_commit.sum, 6)) == (1, 0.3)
    assert (lat.commit_interval.count, round(lat.commit_interval.sum, 6)) == (1, 0.7)
    assert (lat.view_change.count, lat.view_change.sum) == (1, 2.5)
    for i in range(MAX_PENDING + 10):  # txs that never commit cannot grow the table
        lat.submitted([i.to_bytes(4, "big")])
    assert len(lat._pending) == MAX_PENDING


@pytest.mark.asyncio
async def test_a_running_cluster_records_the_histograms() -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        nodes = cluster.running()
        for k in range(3):
            head = nodes[1].chain.head.number
            nodes[1].submit([transfer(100 * k + i, head=head) for i in range(20)])
            await wait_until(lambda k=k: all(n.chain.head.number > k for n in nodes))
        r = nodes[0].replica
        leader = r.leader_of(r.view, r.height)
        await cluster.stop(leader)
        alive = cluster.running()
        head = alive[0].chain.head.number
        alive[0].submit([transfer(999, head=head)])
        await wait_until(lambda: all(n.chain.head.number > head for n in alive), 30)
        text = render(NodeService(alive[0]).metrics())
        for name in NAMES:
            assert f"# TYPE {name} histogram\n" in text
            assert f"# HELP {name} " in text
        _, _, commits = parse(text, NAMES[0])
        assert commits >= 3
        buckets, total, count = parse(text, NAMES[1])
        assert count >= 1 and total > 0  # txs submitted to this node committed
        assert [c for _, c in buckets] == sorted(c for _, c in buckets)
        assert buckets[-1] == (math.inf, count)
        _, vc_total, vc_count = parse(text, NAMES[2])
        assert vc_count >= 1 and vc_total > 0
