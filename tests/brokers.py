"""A Mosquitto broker of a test's own, on a free loopback port, stoppable and restartable.

Tests that restart the broker (transport level and cluster level) use the
``private_broker`` fixture from tests/conftest.py. Without the ``mosquitto`` binary they
skip with one line -- or fail when ``LEDGERLAB_REQUIRE_BROKER=1`` (CI).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from scripts.launcher.procs import free_port_base


def broker_required() -> bool:
    return os.environ.get("LEDGERLAB_REQUIRE_BROKER", "") not in ("", "0")


class Mosquitto:
    """A Mosquitto of our own on a free loopback port, stopped and restarted by pid."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port_base(1)  # below the ephemeral range: free for restarts
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = tmp / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> None:
        """Start it (again, on the same port) and wait until it accepts connections."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break  # e.g. the port is still in TIME_WAIT use: retry below
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; connected clients see the connection drop."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def require_mosquitto() -> None:
    """Skip (fail in CI) when the ``mosquitto`` binary is not installed."""
    if shutil.which("mosquitto") is None:
        if broker_required():
            pytest.fail("mosquitto binary not found; LEDGERLAB_REQUIRE_BROKER=1", pytrace=False)
        pytest.skip("mosquitto binary not found")
