"""``ledgerlab viz``: one self-contained HTML page that animates a PBFT trace.

:func:`write_page` reads a trace (docs/trace-format.md) and writes the page; the page's
data is built by :mod:`scripts.viz.model`, its captions by :mod:`scripts.viz.story`, and
its markup, style and script are package data (``page.html``, ``page.css``, ``page.js``).
See docs/viz.md.
"""

from scripts.trace.schema import TraceError
from scripts.viz.model import build
from scripts.viz.page import page_data, read_trace, render, write_page

__all__ = ["TraceError", "build", "page_data", "read_trace", "render", "write_page"]
