"""Live traces: where each node writes its trace, and merging the nodes' files into one.

`ledgerlab up --trace` starts every node with ``LEDGERLAB_TRACE`` pointing at
``NODE/data/trace.jsonl`` (node/runtime/tracing.py); each node appends its records there,
a new header each time it starts. :func:`merge` reads all of a chain's files and gives one
trace in the documented format: one header, then every record by wall time (ties: node
id, then file order), each node's own order kept (docs/trace-format.md, "Live traces:
clocks and order").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.tracefmt import header
from node.runtime.tracing import TRACE_ENV, node_number
from scripts.launcher.layout import Chain, NodeEntry
from scripts.trace.schema import TraceError, check_header, parse_record

TRACE_NAME = "trace.jsonl"
TRACING_FLAG = "trace.on"
"""``NODE/data/trace.on``: this node traces whenever the launcher starts it (written by
``up --trace`` / ``start-node --trace``, removed by ``--no-trace``)."""


def trace_path(node: NodeEntry) -> Path:
    return node.home / "data" / TRACE_NAME


def trace_env(node: NodeEntry) -> dict[str, str]:
    """The environment that makes ``node`` write its trace (for ``procs.spawn``)."""
    return {TRACE_ENV: str(trace_path(node).resolve())}


def remembers(node: NodeEntry) -> bool:
    """Whether ``node`` is to trace when started (its ``trace.on`` flag)."""
    return (node.home / "data" / TRACING_FLAG).is_file()


def remember(node: NodeEntry, on: bool) -> None:
    """Turn ``node``'s tracing on or off for every later start, until changed again."""
    flag = node.home / "data" / TRACING_FLAG
    if on:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def env_for_started(node: NodeEntry) -> dict[str, str]:
    """``trace_env`` for a node whose flag is on, nothing for the others."""
    return trace_env(node) if remembers(node) else {}


def write_stop(node: NodeEntry, how: str) -> bool:
    """Append a ``stop`` record to a tracing node's file once the launcher has stopped
    its process (no one else writes the file then). False when the node does not trace
    or its number cannot be told from its name."""
    number = node_number(node.name)
    if not remembers(node) or number is None or not trace_path(node).is_file():
        return False
    record = {"ev": "stop", "t": time.time_ns() // 1000, "node": number, "how": how}
    with open(trace_path(node), "a", encoding="utf-8") as fh:
        fh.write(encode(record) + "\n")
    return True


@dataclass
class NodeFile:
    """What was read of one node's trace file so far (``offset``: bytes consumed)."""

    path: Path
    offset: int = 0
    headers: list[dict[str, Any]] = field(default_factory=list)

    def read_new(self) -> list[dict[str, Any]]:
        """Complete records appended since the last call (a half-written last line
        waits for the next call); a malformed line raises TraceError."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TraceError(f"cannot read {self.path}: {exc.strerror}") from None
        end = data.rfind(b"\n") + 1
        records: list[dict[str, Any]] = []
        for number, line in enumerate(data[:end].splitlines(), 1):
            if not line.strip():
                continue
            where = f"{self.path} (+{self.offset} bytes, line {number})"
            record = parse_record(line, where)
            if record["ev"] == "header":
                check_header(record, where)
                self.headers.append(record)
                continue
            records.append(record)
        self.offset += end
        return records


def merged_header(files: Sequence[NodeFile], chain: str) -> dict[str, Any]:
    """One header for the nodes' headers: every node any of them knows, each node's
    behaviour as that node itself reported it, the genesis sealers."""
    heads = [h for f in files for h in f.headers]
    if not heads:
        raise TraceError("no node has written a trace header yet (started without --trace?)")
    nodes: dict[int, dict[str, Any]] = {}
    for h in heads:
        for entry in h["nodes"]:
            nodes.setdefault(entry["id"], dict(entry))
    for h in heads:  # a node's own entry wins: only it knows its behaviour
        for entry in h["nodes"]:
            if entry["id"] == h.get("writer"):
                nodes[entry["id"]] = dict(entry)
    return header(
        source="live",
        clock="wall",
        t=min(h["t"] for h in heads),
        nodes=[nodes[i] for i in sorted(nodes)],
        sealers=min(heads, key=lambda h: h["t"])["sealers"],
        chain=chain,
    )


def order(records: Iterable[tuple[int, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Records of several files (``(file number, record)`` in file order) by wall time;
    ties by node id, then file order. Each node's own order is kept even if its clock
    stepped back: a record never sorts before the one its node wrote just before it."""
    keyed: list[tuple[int, int, int, dict[str, Any]]] = []
    last: dict[int, int] = {}
    for seq, (fileno, record) in enumerate(records):
        t = max(record["t"], last.get(fileno, 0))
        last[fileno] = t
        keyed.append((t, record.get("node", -1), seq, record))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def merge(chain: Chain) -> list[dict[str, Any]]:
    """The chain's merged trace, header first."""
    files = [NodeFile(trace_path(n)) for n in chain.nodes]
    pairs = [(i, r) for i, f in enumerate(files) for r in f.read_new()]
    return [merged_header(files, str(chain.root)), *order(pairs)]


def encode(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))
