"""The node processes of a chaos run: start, SIGKILL, SIGSTOP/SIGCONT, restart, stop.

Every process is handled by its pid (never by name) and keeps the launcher's pid file
(``<home>/node.pid``), so ``ledgerlab status`` and ``ledgerlab down --dir`` see the
chaos cluster as any other. A Byzantine node is started with
``python -m node --byzantine BEHAVIOUR`` every time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import node as node_package
from scripts.chaos import clock
from scripts.launcher import procs
from scripts.launcher.layout import Chain, NodeEntry

BYZANTINE_FLAG = "--byzantine"
TWINS = "twins"
"""Not a node flag: the node runs twice with one key (scripts/chaos/twins.py)."""


@dataclass(slots=True)
class NodeProc:
    """One node as the runner knows it."""

    entry: NodeEntry
    byzantine: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    state: str = "stopped"  # running | paused | killed | stopped
    restarts: int = 0
    kills: int = 0
    pauses: int = 0
    exits: list[str] = field(default_factory=list)  # unexpected exits, with the last line
    clock_offset: float = 0.0  # seconds its wall clock is off at its next start (clock.py)

    @property
    def index(self) -> int:
        return self.entry.index

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def up(self) -> bool:
        return self.state == "running"


def child_env(clock_offset: float = 0.0) -> dict[str, str]:
    env = dict(os.environ)
    if clock_offset:
        env.update(clock.skew_env(clock_offset))
    root = str(Path(node_package.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Fleet:
    """The processes of ``chain``'s nodes (the ones it started or adopted)."""

    def __init__(self, chain: Chain, byzantine: dict[int, str] | None = None) -> None:
        self.byzantine = dict(byzantine or {})
        self.nodes: dict[int, NodeProc] = {}
        for entry in chain.nodes:
            self.add(entry)

    def add(self, entry: NodeEntry) -> NodeProc:
        proc = NodeProc(entry, self.byzantine.get(entry.index))
        self.nodes[entry.index] = proc
        return proc

    def __getitem__(self, index: int) -> NodeProc:
        return self.nodes[index]

    def running(self) -> list[NodeProc]:
        return [n for n in self.nodes.values() if n.up]

    def honest(self) -> list[NodeProc]:
        return [n for n in self.nodes.values() if n.byzantine is None]

    # -- processes ----------------------------------------------------------------------

    def adopt(self) -> None:
        """Take over nodes already running (``--dir``) by their pid files."""
        for n in self.nodes.values():
            state = procs.read_pid(n.entry)
            if state.alive and state.pid is not None:
                n.pid, n.state = state.pid, "running"

    def start(self, index: int, *, restart: bool = False) -> NodeProc:
        """Spawn the node (``restart``: counted as a restart of this node)."""
        n = self.nodes[index]
        entry = n.entry
        entry.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "node", "--config", str(entry.config_path.resolve())]
        if n.byzantine and n.byzantine != TWINS:  # a twin's first process runs honest code
            cmd += [BYZANTINE_FLAG, n.byzantine]
        with open(entry.stderr_path, "ab") as out:
            n.proc = subprocess.Popen(
                cmd,
                cwd=entry.home,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(n.clock_offset),
                start_new_session=True,
            )
        n.pid = n.proc.pid
        entry.pid_path.write_text(f"{n.pid}\n")
        n.restarts += restart
        n.state = "running"
        return n

    def kill(self, index: int) -> None:
        """SIGKILL and wait until it is gone."""
        n = self.nodes[index]
        if n.pid is None or n.state not in ("running", "paused"):
            return
        procs.signal_pid(n.pid, signal.SIGKILL)
        self._wait_gone(n)
        n.state, n.kills = "killed", n.kills + 1

    def pause(self, index: int) -> None:
        n = self.nodes[index]
        if n.pid is not None and n.state == "running":
            procs.signal_pid(n.pid, signal.SIGSTOP)
            n.state, n.pauses = "paused", n.pauses + 1

    def resume(self, index: int) -> None:
        n = self.nodes[index]
        if n.pid is not None and n.state == "paused":
            procs.signal_pid(n.pid, signal.SIGCONT)
            n.state = "running"

    def _wait_gone(self, n: NodeProc, timeout: float = 10.0) -> None:
        if n.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.proc.wait(timeout)
        elif n.pid is not None:
            procs.wait_exit([n.pid], timeout)

    def check_exits(self) -> list[NodeProc]:
        """Nodes that exited on their own since the last look (a crash is a finding)."""
        gone = []
        for n in self.nodes.values():
            if n.state != "running" or n.pid is None:
                continue
            code = n.proc.poll() if n.proc is not None else (None if procs.pid_alive(n.pid) else -1)
            if code is not None:
                line = procs.last_error_line(n.entry) or "no output"
                n.exits.append(f"exited with status {code}: {line}")
                n.state = "stopped"
                gone.append(n)
        return gone

    def stop_all(self, indices: Iterable[int] | None = None) -> None:
        """SIGCONT what is paused, then SIGTERM (SIGKILL after 10 s) every running node."""
        chosen = [self.nodes[i] for i in indices] if indices is not None else self.nodes.values()
        live = [n for n in chosen if n.pid is not None and n.state in ("running", "paused")]
        for n in live:
            if n.state == "paused":
                procs.signal_pid(n.pid, signal.SIGCONT)  # type: ignore[arg-type]
        procs.stop_pids([n.pid for n in live if n.pid is not None])
        for n in live:
            self._wait_gone(n, 1.0)
            n.state = "stopped"
            n.entry.pid_path.unlink(missing_ok=True)
