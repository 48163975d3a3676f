"""Read a trace file and write the one self-contained HTML page that animates it.

The page is ``page.html`` with ``page.css``, ``page.js`` and the run's data inlined (all
package data of :mod:`scripts.viz`), so it opens from disk with no network and no server.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from scripts.trace import schema
from scripts.trace.schema import TraceError
from scripts.viz.model import build
from scripts.viz.story import captions

MAX_TRACE_BYTES = 512 * 1024 * 1024
"""Traces above 536,870,912 bytes (512 MiB) are refused: the page for one would not open
in a browser."""


def read_trace(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, records) of a version-1 trace, checked by the trace reader
    (scripts/trace/schema.py), in time order."""
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if size > MAX_TRACE_BYTES:
        raise TraceError(
            f"{path} is {size} bytes; the page takes traces up to {MAX_TRACE_BYTES} bytes"
        )
    header, records = schema.read_trace(path)
    if not records:
        raise TraceError(f"{path} holds no trace records after its header")
    records.sort(key=lambda r: r["t"])  # stable: records of one instant keep their order
    return header, records


def _asset(name: str) -> str:
    return resources.files("scripts.viz").joinpath(name).read_text(encoding="utf-8")


def page_data(header: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the page shows: the model's tables plus the captions."""
    data = build(records, header)
    data["captions"] = captions(data, int(header.get("leader_period") or 1))
    return data


def render(data: dict[str, Any]) -> str:
    """The page's HTML for ``data`` (the output of :func:`page_data`)."""
    blob = json.dumps(data, separators=(",", ":"), sort_keys=True)
    # inside <script> only "</" can end the element early; "<\/" means the same in JSON
    blob = blob.replace("</", "<\\/")
    html = _asset("page.html")
    for marker, value in (
        ("/*CSS*/", _asset("page.css")),
        ("/*JS*/", _asset("page.js")),
        ("/*DATA*/", blob),
    ):
        if marker not in html:
            raise RuntimeError(f"page.html lacks the {marker} marker")
        html = html.replace(marker, value, 1)
    return html


def write_page(trace: str | Path, out: str | Path, title: str | None = None) -> int:
    """Write the page for ``trace`` to ``out``; returns its size in bytes."""
    header, records = read_trace(trace)
    header["title"] = title or Path(trace).name
    html = render(page_data(header, records)).encode("utf-8")
    Path(out).write_bytes(html)
    return len(html)
