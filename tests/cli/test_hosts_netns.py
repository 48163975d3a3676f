"""A chain made with ``ledgerlab init --hosts`` on four real (network-namespace) hosts.

Topology, all inside namespaces this test creates (named with its pid) and removes in
teardown, whatever happened; the root namespace gets no link and no address, there is no
default route anywhere, so no packet can leave::

    ll-h0-PID  eth0 10.213.0.1 ─┐
    ll-h1-PID  eth0 10.213.0.2 ─┤  veth legs   ll-br-PID: bridge br0 10.213.0.254
    ll-h2-PID  eth0 10.213.0.3 ─┤  into  ───►  (the operator's seat: the client and
    ll-h3-PID  eth0 10.213.0.4 ─┘              the launcher verbs run here)

Each host namespace runs its package's ``start_all.sh``; transfers go through a node's
JSON-RPC from the bridge namespace (tests/cli/ns_client.py). Then host 3's link goes down:
the other three (a quorum of 3 of 4) must still commit; it comes back and must catch up to
the same head hash. Needs root and ``ip``; skipped otherwise, except in CI
(``LEDGERLAB_REQUIRE_NETNS=1``), where it fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.launcher import procs
from scripts.launcher.layout import Chain, load_chain
from tests.cli.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

PID = os.getpid()
SUBNET = "10.213.0"
HOSTS = 4
USERS_TOTAL = 1_000_000
_OURS = ("LEDGERLAB_DIR", "LEDGERLAB_PYTHON")  # start_all.sh then uses the python of init


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and res.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


@dataclass(frozen=True)
class Net:
    bridge: str
    hosts: tuple[str, ...]
    addresses: tuple[str, ...]

    def link(self, i: int, up: bool) -> None:
        """Host i's only interface up or down: the host is cut off, its nodes keep running."""
        ip("-n", self.hosts[i], "link", "set", "eth0", "up" if up else "down")

    def run(
        self, ns: str, *argv: str, timeout: float = 90.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if k not in _OURS}
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO), full_env.get("PYTHONPATH")) if p
        )
        full_env["COLUMNS"] = "200"
        full_env.update(env or {})
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            cwd=REPO,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _build(created: list[str]) -> Net:
    bridge = f"ll-br-{PID}"
    ip("netns", "add", bridge)
    created.append(bridge)
    ip("-n", bridge, "link", "add", "br0", "type", "bridge")
    ip("-n", bridge, "addr", "add", f"{SUBNET}.254/24", "dev", "br0")
    ip("-n", bridge, "link", "set", "br0", "up")
    hosts, addresses = [], []
    for i in range(HOSTS):
        ns, address = f"ll-h{i}-{PID}", f"{SUBNET}.{i + 1}"
        ip("netns", "add", ns)
        created.append(ns)
        # Both ends are made inside namespaces: nothing ever appears in the root one.
        ip("-n", bridge, "link", "add", f"vb{i}", "type", "veth", "peer", "name", "eth0",
           "netns", ns)  # fmt: skip
        ip("-n", bridge, "link", "set", f"vb{i}", "master", "br0", "up")
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        hosts.append(ns)
        addresses.append(address)
    return Net(bridge, tuple(hosts), tuple(addresses))


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        why = "needs root and iproute2's `ip` for network namespaces"
        if os.environ.get("LEDGERLAB_REQUIRE_NETNS") == "1":
            pytest.fail(f"{why}; LEDGERLAB_REQUIRE_NETNS=1 forbids skipping", pytrace=False)
        pytest.skip(why)
    created: list[str] = []
    try:
        yield _build(created)
    finally:
        for ns in reversed(created):
            ip("netns", "del", ns, check=False)


@dataclass
class HostChain:
    net: Net
    root: Path
    pids: list[int]

    @property
    def chain(self) -> Chain:
        return load_chain(self.root)

    def cli(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        """A launcher verb, run from the bridge namespace (it reaches every host)."""
        argv = (sys.executable, "-m", "scripts", *args, "--dir", str(self.root))
        return self.net.run(self.net.bridge, *argv, timeout=timeout)

    def status(self) -> dict[str, dict[str, Any]]:
        res = self.cli("status", "--json")
        assert res.returncode == 0, res.stderr
        return {row["node"]: row for row in json.loads(res.stdout)}

    def transfers(self, node: int, count: int) -> dict[str, Any]:
        argv = (sys.executable, "-m", "tests.cli.ns_client", str(self.root), str(node))
        res = self.net.run(self.net.bridge, *argv, str(count), "--timeout", "60")
        assert res.returncode == 0, (res.stdout, res.stderr[-2000:], self.logs())
        out: dict[str, Any] = json.loads(res.stdout)
        return out

    def logs(self) -> str:
        """The WARNING/ERROR lines of every node's log, for a failure message."""
        lines = []
        for n in self.chain.nodes:
            for path in (n.log_path, n.stderr_path):
                if path.exists():
                    text = path.read_text(errors="replace").splitlines()
                    bad = [x for x in text if " WARNING " in x or " ERROR " in x or "Error" in x]
                    lines += [f"{n.name}: {x}" for x in bad[-15:]]
        return "\n".join(lines)


@pytest.fixture
def host_chain(net: Net, tmp_path: Path) -> Iterator[HostChain]:
    root = tmp_path / "chain"
    spec = ",".join(f"{a}:1" for a in net.addresses)
    res = run_cli("init", "--hosts", spec, "--transport", "tcp", "--dir", str(root), cwd=tmp_path)
    assert res.code == 0, res.err
    hc = HostChain(net, root, [])
    try:
        yield hc
    finally:
        chain = load_chain(root)
        procs.stop_nodes(chain.nodes, timeout=10.0)
        procs.stop_pids([p for p in hc.pids if procs.pid_alive(p)], timeout=5.0)


def wait_for(what: str, check: Callable[[], bool], timeout: float, hc: HostChain) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:.0f} s\n{hc.logs()}")
        time.sleep(0.5)


def _start_packages(hc: HostChain) -> None:
    for i, ns in enumerate(hc.net.hosts):
        script = hc.root / "hosts" / hc.net.addresses[i] / "start_all.sh"
        res = hc.net.run(ns, "sh", str(script), timeout=60)
        for n in hc.chain.nodes:  # whatever happened, remember what to stop
            state = procs.read_pid(n)
            if state.pid is not None and state.pid not in hc.pids:
                hc.pids.append(state.pid)
        assert res.returncode == 0, (res.stdout, res.stderr)
        assert "node" in res.stdout and "started (pid" in res.stdout, res.stdout


def _heads(st: dict[str, dict[str, Any]]) -> set[tuple[int, str]]:
    return {(row["height"], row["head_hash"]) for row in st.values()}


@pytest.mark.timeout(240)
def test_four_hosts_commit_tolerate_a_host_down_and_catch_up(host_chain: HostChain) -> None:
    hc = host_chain
    chain = hc.chain
    assert [n.p2p.rpartition(":")[0] for n in chain.nodes] == list(hc.net.addresses)
    assert {n.p2p_port for n in chain.nodes} == {30300} and {n.rpc_port for n in chain.nodes} == {
        20200
    }
    _start_packages(hc)
    assert set(procs.running_nodes(chain)) == {0, 1, 2, 3}

    def connected() -> bool:
        st = hc.status()
        return all(r["answered"] and r["peers"] == HOSTS - 1 for r in st.values())

    wait_for("every node sees its 3 peers", connected, 60, hc)
    res = hc.cli("asset", "add", "alice", str(USERS_TOTAL), "--node", "0", "--timeout", "60")
    assert res.returncode == 0 and "ok userAdd alice" in res.stdout, (res.stdout, res.stderr)
    sent = 0
    for node in (1, 3):
        out = hc.transfers(node, 20)
        assert out["committed"] == 20 and not out["failed"], out
        sent += 20

    hc.net.link(3, up=False)  # host 3 cut off; node3 keeps running, alone
    for _round in range(3):
        out = hc.transfers(_round % 3, 15)
        assert out["committed"] == 15 and not out["failed"], (out, hc.logs())
        sent += 15
    st = hc.status()
    assert not st["node3"]["answered"], st["node3"]
    assert len(_heads({k: v for k, v in st.items() if k != "node3"})) == 1, st
    best = max(r["height"] for r in st.values() if r["answered"])

    hc.net.link(3, up=True)

    def caught_up() -> bool:
        st = hc.status()
        return all(r["answered"] for r in st.values()) and len(_heads(st)) == 1

    wait_for("node3 catching up to the same head", caught_up, 90, hc)
    assert hc.status()["node3"]["height"] >= best
    out = hc.transfers(3, 10)  # and it takes part again
    assert out["committed"] == 10 and not out["failed"], out
    sent += 10
    wait_for("every node on the same head", lambda: len(_heads(hc.status())) == 1, 30, hc)
    for node, user, balance in ((3, "bob", sent), (2, "alice", USERS_TOTAL - sent)):
        res = hc.cli("asset", "balance", user, "--node", str(node), "--json")
        assert res.returncode == 0, res.stderr
        assert int(json.loads(res.stdout)["balance"]) == balance, res.stdout
