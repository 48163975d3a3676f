"""The 10-node, 50-height page, built once for the size and the frame-time tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.viz import write_page
from tests.viz import traces


@pytest.fixture(scope="session")
def large_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """(page, its size in bytes) of ``traces.large``."""
    folder = tmp_path_factory.mktemp("viz-large")
    page = folder / "large.html"
    return page, write_page(traces.large(folder / "large.jsonl"), page)
