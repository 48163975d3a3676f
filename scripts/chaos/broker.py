"""A private Mosquitto for an MQTT chaos run, on a free loopback port, restartable by pid.

The run restarts its own broker, never the shared one on 1883 that other tests and
users rely on.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from scripts.errors import CommandError
from scripts.launcher.procs import free_port_base, signal_pid

HOST = "127.0.0.1"


class PrivateBroker:
    def __init__(self, folder: Path) -> None:
        if shutil.which("mosquitto") is None:
            raise CommandError(
                "--transport mqtt needs the mosquitto binary (the run starts a broker of its own)",
                hint="apt-get install mosquitto, or use --transport tcp",
            )
        self.port = free_port_base(1)  # below the ephemeral range: the port stays free
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} {HOST}\nallow_anonymous true\nset_tcp_nodelay true\n"
            "max_queued_messages 100000\n"
        )
        self.log = folder / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start (again, on the same port) and wait until it accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "ab") as out:
                self.proc = subprocess.Popen(
                    ["mosquitto", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
                )
            if self._wait_accepting(min(3.0, deadline - time.monotonic())):
                return
            self.stop()  # e.g. the port was briefly unavailable: try again
            time.sleep(0.2)
        raise CommandError(f"mosquitto did not start on {HOST}:{self.port} (see {self.log})")

    def _wait_accepting(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(self.address, timeout=0.2).close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        signal_pid(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            signal_pid(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
