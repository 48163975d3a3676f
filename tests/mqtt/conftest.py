"""Fixtures for the MQTT cluster tests (every test here is marked ``mqtt``)."""

from __future__ import annotations

from pathlib import Path

import pytest

HANG_DEADLINE = 120.0
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test here that hangs (e.g. a transport that never closes) fails after
    HANG_DEADLINE s with every thread's stack, through pytest-timeout (configured in
    pyproject.toml), and the run goes on; a test's own ``timeout`` mark still wins."""
    for item in items:
        if item.get_closest_marker("timeout") is not None:
            continue
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.timeout(HANG_DEADLINE))
