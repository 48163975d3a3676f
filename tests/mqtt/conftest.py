"""Fixtures for the MQTT cluster tests (every test here is marked ``mqtt``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.support import Mosquitto, require_mosquitto


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A running Mosquitto on a free loopback port that the test may stop and restart."""
    require_mosquitto()
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
