"""Twins in a chaos run (``--byzantine N=twins``): node N's key in two processes.

The node's own process (in the fleet, honest code, counted as Byzantine) keeps its
folder, its ports and its proxied links, and refuses the second half of the honest
nodes (added to its blacklist). The twin (``node/runtime/byzantine.py`` ``twin_config``:
the same key and certificate, a folder of its own under ``twins/``, its own ports) dials
that second half directly and refuses the first. So every honest node talks to exactly
one of the two, steadily, and when N leads each half gets a proposal signed by the same
key (Jepsen's duplicate validators; FISCO has no defence but PBFT itself). The checker
must still find one chain on every honest node.

The twin's links do not go through the proxies: network faults cut the honest nodes and
the first twin, never the second. TCP only (over MQTT both twins would read one inbox).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from node.runtime.byzantine import twin_config
from node.runtime.config import NodeConfig
from scripts.errors import CommandError
from scripts.launcher import procs
from scripts.launcher.layout import Chain


@dataclass(slots=True)
class Twin:
    """The second process of node ``index``."""

    index: int
    home: Path
    proc: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            procs.stop_pids([self.proc.pid])
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def halves(chain: Chain, index: int) -> tuple[list[int], list[int]]:
    """The honest nodes the first twin keeps, and the ones the second twin gets."""
    others = [n.index for n in chain.nodes if n.index != index]
    cut = (len(others) + 1) // 2
    return others[:cut], others[cut:]


def prepare(chain: Chain, index: int, run_dir: Path) -> Twin:
    """Rewrite node ``index``'s blacklist and write the twin's folder (not started)."""
    if chain.transport != "tcp":
        raise CommandError("--byzantine N=twins runs over tcp only (see scripts/chaos/twins.py)")
    first, second = halves(chain, index)
    if not second:
        raise CommandError("twins need at least three nodes")
    entry = chain.node(index)
    original = NodeConfig.load(entry.config_path)
    ids = {n.index: n.node_id for n in chain.nodes}
    mine = dataclasses.replace(
        original,
        blacklist=tuple(dict.fromkeys((*original.blacklist, *(ids[i] for i in second)))),
    )
    entry.config_path.write_text(mine.to_toml(), "utf-8")
    ports = procs.free_port_base(2)
    home = run_dir / "twins" / f"{entry.name}b"
    twin = twin_config(
        original,
        home,
        name=f"{entry.name}b",
        p2p_listen=f"127.0.0.1:{ports}",
        rpc_listen=f"127.0.0.1:{ports + 1}",
        peers=tuple(chain.node(i).p2p for i in second),
        refuse=tuple(ids[i] for i in first),
    )
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(twin.to_toml(), "utf-8")
    return Twin(index, home)


def start(twin: Twin, env: dict[str, str]) -> None:
    log = twin.home / "stderr.log"
    with open(log, "ab") as out:
        twin.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "--config", str(twin.home / "config.toml")],
            cwd=twin.home,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
