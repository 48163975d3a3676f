"""Trace sinks: every message and state transition as JSON lines.

The records are those of docs/trace-format.md (built in consensus/tracefmt.py and
consensus/sim/engine.py): a header first, then flat JSON objects with ``t`` (virtual
microseconds), ``node`` (endpoint id) and ``ev`` (what happened), written with sorted
keys and no spaces so that two runs of the same seed produce byte-identical files.

``ledgerlab explain`` and ``sim --explain`` read them (scripts/trace/).
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
    """A trace sink feeding every record to several sinks."""

    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    def __call__(self, record: dict[str, Any]) -> None:
        for sink in self.sinks:
            sink(record)
