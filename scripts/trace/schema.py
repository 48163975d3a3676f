"""Read a trace file and check it against the documented schema (docs/trace-format.md).

``read_trace(path)`` returns the header and the records; a file that is not a version-1
trace raises :class:`TraceError` with the line at fault, and nothing is half-read.
``validate(record)`` lists what is wrong with one record (an empty list: nothing).
Unknown kinds and extra fields are allowed (the format only grows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from consensus.tracefmt import FORMAT, RECORD_KINDS, VERSION

MAX_LINE_BYTES = 1 << 20
"""A record longer than 1 MiB is not one this format produces (a NewView of 100 proofs
is a few KiB): the line is refused rather than parsed."""

_INT = (int,)
_OPT_INT = (int, type(None))
_STR = (str,)
_OPT_STR = (str, type(None))
_LIST = (list,)

_MESSAGE = {"type": _STR, "view": _INT, "height": _INT}

REQUIRED: dict[str, dict[str, tuple[type, ...]]] = {
    "header": {
        "format": _STR,
        "version": _INT,
        "source": _STR,
        "time_unit": _STR,
        "clock": _STR,
        "nodes": _LIST,
        "sealers": _LIST,
        "f": _INT,
    },
    "send": {**_MESSAGE, "to": _INT},
    "bcast": {**_MESSAGE, "to": _LIST},
    "recv": {**_MESSAGE, "from": _OPT_INT},
    "lost": {**_MESSAGE, "to": _INT, "why": _STR},
    "proposal_ready": {"size": _INT},
    "execute": {"height": _INT, "view": _INT, "proposal": _STR},
    "executed": {"height": _INT, "proposal": _STR, "ok": (bool,)},
    "phase": {"phase": _STR, "height": _INT, "view": _INT, "proposal": _STR},
    "persist_state": {"view": _INT, "prepared": (list, type(None))},
    "commit": {"height": _INT, "view": _INT, "block": _STR},
    "persisted": {"height": _INT, "block": _STR},
    "state": {"height": _INT, "view": _INT, "active": (bool,)},
    "timer": {"fired": _STR, "height": _INT, "view": _INT},
    "evidence": {"against": _INT, "type": _STR, "view": _INT, "height": _INT},
    "byzantine": {
        "behaviour": _STR,
        "type": _STR,
        "view": _INT,
        "height": _INT,
        "versions": _LIST,
        "withheld": _LIST,
    },
    "request_sync": {"target": _INT, "peers": _LIST},
    "synced": {"height": _INT, "block": _STR},
    "membership": {"height": _INT, "sealers": _LIST},
    "crash": {},
    "restart": {},
    "stop": {"how": _STR},
    "txs_arrive": {"available": _INT},
}
"""Per kind, the fields every record of it has, with their JSON types."""

PHASES = ("pre-prepared", "prepared", "committed")
_VOTED = {"block": _STR, "votes": _INT, "voters": _LIST, "quorum": _INT, "n": _INT}

assert set(REQUIRED) == set(RECORD_KINDS), "schema and writer disagree on record kinds"


class TraceError(ValueError):
    """The file is not a readable version-1 trace."""


def validate(record: Any) -> list[str]:
    """What is wrong with ``record`` (empty: it follows the schema)."""
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems: list[str] = []
    ev = record.get("ev")
    if not isinstance(ev, str):
        return ["no 'ev' string"]
    t = record.get("t")
    if not isinstance(t, int) or isinstance(t, bool) or t < 0:
        problems.append("'t' must be a non-negative int")
    fields = REQUIRED.get(ev)
    if fields is None:
        return problems  # a kind from a later writer: allowed
    if ev not in ("header", "txs_arrive"):
        node = record.get("node")
        if not isinstance(node, int) or isinstance(node, bool):
            problems.append(f"{ev}: 'node' must be an int")
    if ev == "phase":
        if record.get("phase") not in PHASES:
            problems.append(f"phase: unknown phase {record.get('phase')!r}")
        elif record["phase"] != "pre-prepared":
            fields = {**fields, **_VOTED}
    for name, types in fields.items():
        if name not in record:
            problems.append(f"{ev}: missing {name!r}")
        elif not isinstance(record[name], types) or (
            isinstance(record[name], bool) and bool not in types
        ):
            problems.append(f"{ev}: {name!r} has the wrong type")
    return problems


def parse_record(line: str | bytes, where: str) -> dict[str, Any]:
    """One line as a record that follows the schema; TraceError naming ``where`` else."""
    size = len(line) if isinstance(line, bytes) else len(line.encode())
    if size > MAX_LINE_BYTES:
        raise TraceError(f"{where}: line longer than {MAX_LINE_BYTES} bytes")
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise TraceError(f"{where}: not JSON ({exc})") from None
    except RecursionError:
        raise TraceError(f"{where}: JSON nested too deep") from None
    problems = validate(record)
    if problems:
        raise TraceError(f"{where}: {'; '.join(problems)}")
    return dict(record)


def parse_lines(lines: Iterable[str], where: str = "trace") -> list[dict[str, Any]]:
    """Records of a trace's lines, header first; raises TraceError at the first fault."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = parse_record(line, f"{where}:{number}")
        if not records:
            check_header(record, f"{where}:{number}")
        records.append(record)
    if not records:
        raise TraceError(f"{where}: empty (no header)")
    return records


def check_header(record: dict[str, Any], where: str) -> None:
    """The record must be a header of this format and version."""
    if record.get("ev") != "header" or record.get("format") != FORMAT:
        raise TraceError(f"{where}: the first record must be a {FORMAT} header")
    if record.get("version") != VERSION:
        raise TraceError(
            f"{where}: trace version {record.get('version')}, this reader knows {VERSION}"
        )


def read_trace(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, records after it) of the trace file at ``path``."""
    try:
        with open(path, encoding="utf-8") as fh:
            records = parse_lines(fh, str(path))
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not UTF-8 text") from None
    return records[0], records[1:]
