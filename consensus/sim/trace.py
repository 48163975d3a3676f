"""Trace sinks: every message and state transition as JSON lines, and a flat account.

The records are those of docs/trace-format.md (built in consensus/tracefmt.py and
consensus/sim/engine.py): a header first, then flat JSON objects with ``t`` (virtual
microseconds), ``node`` (endpoint id) and ``ev`` (what happened), written with sorted
keys and no spaces so that two runs of the same seed produce byte-identical files.

:func:`explain` is the older flat, line-per-step account of one height (``ledgerlab
learn`` quotes lines of it); ``ledgerlab explain`` and ``sim --explain`` draw the
sequence diagram of scripts/trace/ instead.
"""

from __future__ import annotations

import json
from typing import IO, Any


def encode_record(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


class JsonlTrace:
    """A trace sink writing one JSON object per line to ``stream``."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.records = 0

    def __call__(self, record: dict[str, Any]) -> None:
        self.stream.write(encode_record(record))
        self.stream.write("\n")
        self.records += 1


class Recorder:
    """A trace sink that keeps records in memory (for --explain and tests)."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        self.records.append(record)


class Tee:
    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def __call__(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(record)


_WHAT = {
    "bcast": "broadcasts",
    "send": "sends",
    "recv": "receives",
}


def explain(records: list[dict[str, Any]], height: int) -> list[str]:
    """A readable, step-by-step account of how ``height`` was decided.

    Uses the trace records: proposals, votes sent and received, executions, persisted
    certificates (= prepared), commits, view changes and syncs that concern the height.
    """
    lines: list[str] = []
    at_height: dict[int, int] = {}
    for rec in records:
        node = int(rec.get("node", -1))
        t = rec["t"] / 1000
        ev = rec["ev"]
        h = rec.get("height")
        if ev == "state":
            was = at_height.get(node)
            at_height[node] = rec["height"]
            if height in (was, h):
                active = "" if rec["active"] else " (waiting for NewView)"
                lines.append(
                    f"{t:10.3f} ms  node {node}: now at height {h}, view {rec['view']}{active}"
                )
            continue
        if not (h == height or (h is None and at_height.get(node, 1) == height)):
            continue
        if ev in _WHAT:
            who = f"from {rec['from']}" if ev == "recv" else ""
            extra = ""
            if rec.get("type") in ("Prepare", "Commit"):
                extra = f" for block {rec.get('block')}"
            elif rec.get("type") == "PrePrepare":
                extra = f" proposal {rec.get('proposal')}"
            elif rec.get("type") == "ViewChange":
                extra = f" prepared in view {rec.get('prepared')}"
            elif rec.get("type") == "NewView":
                extra = f" with {rec.get('proofs')} proofs, proposal {rec.get('proposal')}"
            lines.append(
                f"{t:10.3f} ms  node {node} {_WHAT[ev]} {rec['type']} view "
                f"{rec['view']}{extra} {who}".rstrip()
            )
        elif ev == "execute":
            lines.append(f"{t:10.3f} ms  node {node} executes proposal {rec['proposal']}")
        elif ev == "executed":
            ok = "valid" if rec["ok"] else "INVALID (no vote)"
            lines.append(f"{t:10.3f} ms  node {node} executed {rec['proposal']}: {ok}")
        elif ev == "persist_state":
            prep = rec.get("prepared")
            if prep is not None and prep[1] == height:
                lines.append(
                    f"{t:10.3f} ms  node {node} is PREPARED in view {prep[0]} "
                    "(certificate persisted before its Commit)"
                )
            else:
                lines.append(f"{t:10.3f} ms  node {node} persists view {rec['view']}")
        elif ev == "commit":
            lines.append(
                f"{t:10.3f} ms  node {node} COMMITS height {h} in view "
                f"{rec['view']}: block {rec['block']}"
            )
        elif ev == "synced":
            lines.append(
                f"{t:10.3f} ms  node {node} gets height {h} by block sync "
                f"(seal verified): block {rec['block']}"
            )
        elif ev in ("crash", "restart"):
            lines.append(f"{t:10.3f} ms  node {node} {ev}es")
        elif ev == "proposal_ready":
            lines.append(f"{t:10.3f} ms  node {node} (leader) gets a payload to propose")
    return lines
