"""Shared pytest wiring.

Tests marked ``@pytest.mark.mqtt`` need a real MQTT broker: 127.0.0.1:1883, or
``LEDGERLAB_MQTT_BROKER`` (``host:port`` or ``mqtt://host:port``). Without one they skip
with a one-line reason -- unless ``LEDGERLAB_REQUIRE_BROKER=1`` (CI), where they fail, so
a missing broker can never turn the MQTT suite green by skipping it.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.brokers import Mosquitto, broker_required, require_mosquitto

_broker_state: dict[str, str | None] = {}


def mqtt_broker_url() -> str:
    """The broker the MQTT tests use, as ``mqtt://host:port``."""
    raw = os.environ.get("LEDGERLAB_MQTT_BROKER", "127.0.0.1:1883")
    return raw if "://" in raw else f"mqtt://{raw}"


def _broker_problem() -> str | None:
    """None when the broker accepts TCP connections, else a one-line reason (cached)."""
    if "problem" not in _broker_state:
        url = mqtt_broker_url()
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 1883
        try:
            with socket.create_connection((host, port), timeout=1.0):
                _broker_state["problem"] = None
        except OSError as exc:
            _broker_state["problem"] = f"no MQTT broker at {host}:{port} ({exc.strerror or exc})"
    return _broker_state["problem"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with the most ``slow`` (multi-process) tests first.

    CI runs the suite in parallel by module (``pytest -n 2 --dist loadscope
    --no-loadscope-reorder``, the README's test command): started first, the long
    live-cluster modules run beside the many short ones instead of ending the run alone.
    The sort is stable, so a module's tests stay together and in their written order
    (module fixtures, ordered steps).
    """
    slow: dict[Path, int] = {}
    for item in items:
        slow[item.path] = slow.get(item.path, 0) + (item.get_closest_marker("slow") is not None)
    items.sort(key=lambda item: -slow[item.path])


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("mqtt") is None:
        return
    problem = _broker_problem()
    if problem is None:
        return
    if broker_required():
        pytest.fail(f"{problem}; LEDGERLAB_REQUIRE_BROKER=1 forbids skipping", pytrace=False)
    pytest.skip(problem)


@pytest.fixture
def mqtt_broker() -> str:
    """URL of the reachable test broker (tests using it must also be marked ``mqtt``)."""
    problem = _broker_problem()
    if problem is not None:
        if broker_required():
            pytest.fail(f"{problem}; LEDGERLAB_REQUIRE_BROKER=1 forbids skipping", pytrace=False)
        pytest.skip(problem)
    return mqtt_broker_url()


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


def interruptible() -> None:
    """``preexec_fn`` for a child a test will Ctrl-C: SIGINT unblocked and at its default,
    whatever the test process inherited or set (an ignored or blocked SIGINT passes to
    children through exec, and Python then installs no KeyboardInterrupt handler). The
    SIGINT tests of bench and trace --follow hung in full parallel runs only."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)
