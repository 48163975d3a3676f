"""The figures of one benchmark round, from submit and commit times (seconds, monotonic):
latency percentiles and CDF, committed tx/s over time, and how latency moved during it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from scripts.launcher.load import percentile


def ms_percentiles(values: Sequence[float]) -> dict[str, Any]:
    """Sample count, p50/p90/p99 and max of ``values`` (seconds) in milliseconds."""
    out: dict[str, Any] = {"samples": len(values)}
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        out[name] = round(percentile(values, q) * 1000, 2)
    out["max"] = round(max(values, default=0.0) * 1000, 2)
    return out


def cdf_ms(values: Sequence[float]) -> list[float]:
    """The 0th, 1st, ..., 100th percentile of ``values`` in ms (a CDF for the plots)."""
    if not values:
        return []
    ordered = sorted(values)
    n = len(ordered)
    return [round(ordered[round(q / 100 * (n - 1))] * 1000, 2) for q in range(101)]


def timeline(commits: Sequence[float], start: float) -> tuple[float, list[list[float]]]:
    """(bucket seconds, ``[[bucket start s, committed tx/s in it]]``) since ``start``.

    Buckets are 1 s for runs of 20 s or more, else a twentieth of the run (>= 0.1 s), so
    that a short run still shows a curve.
    """
    times = [t - start for t in commits if t >= start]
    if not times:
        return 1.0, []
    span = max(times)
    width = 1.0 if span >= 20 else max(0.1, round(span / 20, 1))
    counts: Counter[int] = Counter(int(t / width) for t in times)
    return width, [
        [round(i * width, 2), round(counts.get(i, 0) / width, 1)] for i in range(max(counts) + 1)
    ]


def quarters(pairs: Sequence[tuple[float, float]]) -> dict[str, float]:
    """Median submit -> commit (ms) of the first and the last quarter of ``(submitted,
    committed)`` pairs, by submit time: a queue that grows shows as a later, higher one."""
    ordered = sorted(pairs)
    q = max(1, len(ordered) // 4)

    def p50(part: Sequence[tuple[float, float]]) -> float:
        return round(percentile([c - s for s, c in part], 0.5) * 1000, 2)

    return {"p50_first_quarter_ms": p50(ordered[:q]), "p50_last_quarter_ms": p50(ordered[-q:])}
