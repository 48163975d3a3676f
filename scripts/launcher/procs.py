"""Node processes: start one in the background, find it again by pid file, stop it by pid.

Each node runs as ``python -m node --config <home>/config.toml`` in its own session
(``start_new_session``), so closing the terminal that ran ``ledgerlab up`` does not
stop the chain. Its pid goes to ``<home>/node.pid`` and its stdout/stderr to
``<home>/log/stderr.log`` (the node writes its own log to ``log/node.log``).

A pid file is trusted only when that pid is alive *and* its command line names this
node's config file, so a recycled pid is never signalled. Processes are ended by pid,
never by name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import node as node_package
from scripts.errors import CommandError
from scripts.launcher.layout import HOST, Chain, NodeEntry

STOP_TIMEOUT = 10.0


class LaunchError(CommandError):
    """A node that could not be started or stopped, with a hint what to do."""


@dataclass(frozen=True, slots=True)
class PidState:
    """A node's pid file: ``alive`` (ours and running), ``stale`` (dead/not ours), or absent."""

    pid: int | None
    alive: bool
    stale: bool


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def reap(pid: int) -> None:
    """Collect ``pid`` if it is our exited child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def pid_alive(pid: int) -> bool:
    reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def is_our_node(pid: int, node: NodeEntry) -> bool:
    """``pid`` is alive and runs this node's config (when /proc can tell us)."""
    if not pid_alive(pid):
        return False
    cmdline = _proc_cmdline(pid)
    if cmdline is None:  # no /proc (macOS): trust a live pid
        return True
    config = str(node.config_path.resolve())
    return any(arg == config or arg.endswith(str(node.config_path)) for arg in cmdline)


def read_pid(node: NodeEntry) -> PidState:
    try:
        text = node.pid_path.read_text().strip()
    except FileNotFoundError:
        return PidState(None, False, False)
    except OSError:
        return PidState(None, False, True)
    if not text.isdigit():
        return PidState(None, False, True)
    pid = int(text)
    if is_our_node(pid, node):
        return PidState(pid, True, False)
    return PidState(pid, False, True)


def running_nodes(chain: Chain) -> dict[int, int]:
    """``{node index: pid}`` of the chain's nodes that are running."""
    out = {}
    for n in chain.nodes:
        state = read_pid(n)
        if state.alive and state.pid is not None:
            out[n.index] = state.pid
    return out


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _ephemeral_range() -> range:
    """The kernel's range for outgoing connections' local ports (avoid it for listeners)."""
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(lo), int(hi) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port_base(
    count: int, rng: random.Random | None = None, *, avoid: Iterable[int] = ()
) -> int:
    """A base port with ``count`` consecutive free loopback ports, for throwaway chains.

    Picked below the ephemeral range (an outgoing connection may hold any port in it at
    any moment) and away from ledgerlab's default 20200+/30300+ blocks.
    """
    rng = rng or random.Random()
    taken = set(avoid)
    eph = _ephemeral_range()
    reserved = set(range(20200, 20300)) | set(range(30300, 30400))
    top = min(eph.start, 65536) - count
    for _ in range(500):
        base = rng.randrange(10000, max(10001, top))
        ports = range(base, base + count)
        if any(p in taken or p in reserved or p in eph for p in ports):
            continue
        if all(port_free(p) for p in ports):
            return base
    raise LaunchError("could not find free loopback ports")


def address_local(host: str) -> bool:
    """``host`` is an address of this machine (a listener can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                return False
            raise
    return True


def check_ports(node: NodeEntry) -> None:
    """A :class:`LaunchError` naming the first of the node's ports that is taken, or its
    address when that is not this machine's (a chain made with ``init --hosts``)."""
    for what, address, flag in (
        ("P2P", node.p2p, "--p2p-port"),
        ("RPC", node.rpc, "--rpc-port"),
    ):
        host, _, port_s = address.rpartition(":")
        port = int(port_s)
        if not address_local(host):
            raise LaunchError(
                f"{node.name} listens on {host}, which is not an address of this machine",
                hint=f"copy its host package ({node.home.parent}) to {host} and run "
                "`sh start_all.sh` there (docs/multi-host.md)",
            )
        if not port_free(port, host):
            raise LaunchError(
                f"{node.name}: {what} port {port} is already in use by another program",
                hint=f"stop that program, or re-create the chain on other ports: "
                f"ledgerlab init --force {flag} <base>",
            )


def check_broker(chain: Chain) -> None:
    """For MQTT chains: fail early, in one line, when the broker does not answer."""
    if chain.transport != "mqtt":
        return
    from urllib.parse import urlsplit

    parts = urlsplit(chain.broker)
    host = parts.hostname or HOST
    port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    try:
        with socket.create_connection((host, port), timeout=2.0):
            pass
    except OSError as exc:
        raise LaunchError(
            f"MQTT broker {host}:{port} is not reachable ({exc.strerror or exc})",
            hint="start one (e.g. `mosquitto -d`) or re-create the chain with --transport tcp",
        ) from None


def _child_env() -> dict[str, str]:
    """The node must import the same ``node`` package as we do, whatever its cwd."""
    env = dict(os.environ)
    root = str(Path(node_package.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(node: NodeEntry, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``node`` in the background and write its pid file; does not wait for it.

    ``env``: variables to add to the child's environment (e.g. LEDGERLAB_TRACE)."""
    node.stderr_path.parent.mkdir(parents=True, exist_ok=True)
    with open(node.stderr_path, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "node", "--config", str(node.config_path.resolve())],
            cwd=node.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**_child_env(), **(env or {})},
            start_new_session=True,
        )
    node.pid_path.write_text(f"{proc.pid}\n")
    return proc


def last_error_line(node: NodeEntry, since: int = 0) -> str | None:
    """The last non-empty line the process printed after byte offset ``since``."""
    try:
        with open(node.stderr_path, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else None


def how_it_ended(node: NodeEntry) -> str:
    """Why a node whose pid file outlived its process is down: the last line it printed
    since it started (a fatal stop prints ``error: nodeN stopped: <why>``, a crash its
    traceback), or, when it printed nothing since, that it was killed: SIGKILL and the
    kernel's OOM killer leave no line. ``stderr.log`` gathers every run, so only a line
    written after the pid file counts."""
    try:
        started = node.pid_path.stat().st_mtime
        printed = node.stderr_path.stat().st_mtime
    except OSError:
        started = printed = 0.0
    line = last_error_line(node) if printed > started else None
    if line:
        return line.removeprefix("error: ")
    return "killed, without a word (SIGKILL or out of memory)"


def stderr_size(node: NodeEntry) -> int:
    try:
        return node.stderr_path.stat().st_size
    except OSError:
        return 0


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_exit(pids: Iterable[int], timeout: float) -> set[int]:
    """Wait until every pid has exited; the ones still alive after ``timeout``."""
    left = set(pids)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        left = {p for p in left if pid_alive(p)}
        if left:
            time.sleep(0.05)
    return {p for p in left if pid_alive(p)}


def stop_pids(pids: Mapping[str, int] | Iterable[int], timeout: float = STOP_TIMEOUT) -> set[int]:
    """SIGTERM, wait, SIGKILL what is left. Returns the pids that had to be killed."""
    pid_list = list(pids.values()) if isinstance(pids, Mapping) else list(pids)
    for pid in pid_list:
        signal_pid(pid, signal.SIGTERM)
    stubborn = wait_exit(pid_list, timeout)
    for pid in stubborn:
        signal_pid(pid, signal.SIGKILL)
    wait_exit(stubborn, 5.0)
    return stubborn


def stop_nodes(nodes: Iterable[NodeEntry], timeout: float = STOP_TIMEOUT) -> dict[str, str]:
    """Stop the given nodes by their pid files; ``{name: what happened}``."""
    report: dict[str, str] = {}
    targets: dict[str, int] = {}
    entries = list(nodes)
    for n in entries:
        state = read_pid(n)
        if state.alive and state.pid is not None:
            targets[n.name] = state.pid
        elif state.stale:
            report[n.name] = "not running (stale pid file removed)"
            n.pid_path.unlink(missing_ok=True)
        else:
            report[n.name] = "not running"
    killed = stop_pids(targets, timeout)
    for n in entries:
        if n.name in targets:
            pid = targets[n.name]
            report[n.name] = (
                f"killed (pid {pid} ignored SIGTERM)" if pid in killed else f"stopped (pid {pid})"
            )
            n.pid_path.unlink(missing_ok=True)
    return report
