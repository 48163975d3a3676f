"""``ledgerlab bench --max``: the search for the saturation rate, open-loop step by step.

A closed-loop probe gives a first rate P (P, not the same-run ceiling: on a busy machine
the chain may reach a tenth of it). Open-loop steps then offer rising multiples of P until
one is past saturation (:func:`past_saturation`); if already the first one is, the rate
is halved until a step keeps up. A few steps bisect the gap between the last rate that
kept up and the first that did not; that rate is ``saturation_tps``, and one more step
at 90 % of it gives the latency there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

FACTORS = (0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5, 1.7)
"""The steps' rates as multiples of the probe's, in turn, until one is past saturation."""
DESCENT_STEPS = 3
"""When even the first step is past saturation, up to this many steps halve its rate."""
BISECT_STEPS = 2
"""After the first step past saturation, this many steps halve the gap to the last good one."""
SUSTAINED = 0.95
"""A step keeps up when the load generator really offered >= 95 % of its rate, and ..."""
BACKLOG_GROWTH = 2.0
BACKLOG_SLACK_MS = 250.0
"""... the median latency of its last quarter (by submit time) is at most 2 x that of its
first quarter + 250 ms: a queue that grows while the step lasts means past saturation."""

Round = Callable[[float], Awaitable[dict[str, Any]]]
"""Runs one step at a rate (0: the closed-loop probe) and returns its figures."""


def past_saturation(figures: dict[str, Any], rate: float, max_p99_ms: float) -> str:
    """Why a step is past the saturation point ("" when it kept up)."""
    refused = sum(figures["rejected"].values())
    if refused:
        return f"{refused:,} transactions refused ({', '.join(figures['rejected'])})"
    offered = figures["offered_tps"] or 0.0
    if offered < SUSTAINED * rate:
        return f"the load generator offered only {offered:,.0f} of {rate:,.0f} tx/s"
    early, late = figures["p50_first_quarter_ms"], figures["p50_last_quarter_ms"]
    if late > BACKLOG_GROWTH * early + BACKLOG_SLACK_MS:
        return f"a growing queue: median latency {early:,.0f} ms early, {late:,.0f} ms late"
    if figures["latency_ms"]["p99"] > max_p99_ms:
        return f"p99 {figures['latency_ms']['p99']:,.0f} ms > {max_p99_ms:,.0f} ms"
    return ""


def headline_step(saturation: dict[str, Any]) -> dict[str, Any]:
    """The step whose figures stand for the search: the one at the saturation rate."""
    steps: list[dict[str, Any]] = saturation["steps"]
    kept = [s for s in steps if s["rate"] == saturation["saturation_tps"]]
    return kept[0] if kept else steps[-1]


async def search(
    run_round: Round, *, max_p99_ms: float, say: Callable[[str], None]
) -> dict[str, Any]:
    """The whole search; every step's figures carry their verdict (``past_saturation``)."""
    probe = await run_round(0.0)
    probe_tps = max(probe["committed_tps"], 1.0)
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stop = ""

    async def step(rate: int, why: str) -> str:
        say(f"step at {rate:,} tx/s ({why})")
        figures = await run_round(rate)
        steps.append(figures)
        verdict = figures["past_saturation"] = past_saturation(figures, rate, max_p99_ms)
        if verdict:
            say(f"  past saturation: {verdict}")
        return verdict

    for factor in FACTORS:
        stop = await step(max(1, round(probe_tps * factor)), f"{factor:.0%} of the probe")
        if stop:
            break
        best = steps[-1]
    if best is None:  # even the first step was too much: halve it until one keeps up
        for _ in range(DESCENT_STEPS):
            if not await step(max(1, round(steps[-1]["rate"] / 2)), "half the last"):
                best = steps[-1]
                break
    if best is None:
        return {"saturation_tps": None, "probe_tps": probe_tps, "steps": steps, "stop": stop}
    if stop:  # narrow the gap between the last rate that kept up and the first that did not
        low = best["rate"]
        high = min(s["rate"] for s in steps if s["past_saturation"] and s["rate"] > low)
        for _ in range(BISECT_STEPS):
            rate = round((low + high) / 2)
            if rate in (low, high):
                break
            why = await step(rate, f"between {low:,} and {high:,}")
            if why:
                high, stop = rate, why
            else:
                low, best = rate, steps[-1]
    saturation = best["rate"]
    at90 = round(0.9 * saturation)
    say(f"saturation {saturation:,} tx/s; a step at 90 % ({at90:,} tx/s)")
    ninety = await run_round(at90)
    return {
        "saturation_tps": saturation,
        "probe_tps": probe_tps,
        "stop": stop or "the last step kept up (the search ran out of steps)",
        "steps": steps,
        "at_90_percent": {
            "rate": at90,
            "committed_tps": ninety["committed_tps"],
            "latency_ms": ninety["latency_ms"],
            "rejected": ninety["rejected"],
        },
    }
