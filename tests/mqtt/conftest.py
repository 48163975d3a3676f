"""Fixtures for the MQTT cluster tests (every test here is marked ``mqtt``)."""

from __future__ import annotations

import faulthandler
from collections.abc import Iterator

import pytest

HANG_DEADLINE = 120.0


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """A test that hangs (e.g. a transport that never closes) dumps every thread's stack
    and ends the run after HANG_DEADLINE s, instead of stalling CI until its job timeout."""
    faulthandler.dump_traceback_later(HANG_DEADLINE, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
