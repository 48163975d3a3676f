"""``python -m node --config NODE_DIR/config.toml``: run one node until SIGTERM or SIGINT.

Logs go to the config's log file (and stderr with ``--console``). A configuration or
start-up problem prints one line and exits with status 2; a node the supervision policy
stopped (a loop that kept failing, a decided block it could not store: node/runtime/supervisor.py)
prints the reason and exits with status 70; a clean shutdown exits 0. A node whose
storage failed and came back (node/runtime/storage_fault.py) is closed and opened again
from disk in this same process, as many times as that happens.

``--byzantine BEHAVIOUR`` (FOR TESTING ONLY) makes the node Byzantine, overriding the
config's ``[testing] byzantine`` (docs/node.md, Byzantine test modes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from pathlib import Path

from consensus.byzantine import BEHAVIOURS
from node.ledger.genesis import GenesisError
from node.runtime import Node, NodeError
from node.runtime.config import ConfigError
from node.runtime.supervisor import EXIT_INTERNAL_ERROR
from node.transport.pki import CertificateError


def _setup_logging(node: Node, console: bool) -> None:
    cfg = node.config
    handlers: list[logging.Handler] = []
    if cfg.log_file is not None:
        path = cfg.path(cfg.log_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path))
    if console or not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=cfg.log_level.upper(),
        format=f"%(asctime)s %(levelname)s {cfg.name} %(name)s: %(message)s",
        handlers=handlers,
    )


def _tune_gc() -> None:
    """Once started: move what exists (modules, config, genesis) out of the collector's
    sight and collect young objects less often. Under load a node makes a few hundred
    thousand short-lived containers per second; at the default threshold (700) the cyclic
    collector took ~3-5 % of a node's CPU in ``ledgerlab bench`` (measured; see
    docs/performance.md, "Cluster throughput")."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


EXIT_RESTART = 75
"""A node built in code asked to be started again from disk (EX_TEMPFAIL)."""
REOPEN_ATTEMPTS = 30
"""Tries (one a second) to open a node again after its storage came back."""
MAX_STORAGE_RESTARTS = (5, 600.0)
"""More restarts from disk than this within that many seconds: the store fails although
the disk takes writes (a corrupt file?); the node stops (70) rather than loop."""


async def _run(node: Node, config: Path | None = None, byzantine: str | None = None) -> int:
    """Run ``node`` until a signal (0) or until the supervisor stops it (70); a restart
    request (storage back after a fault) opens it again from ``config`` (without one,
    as for a node built in code, it ends with status 75, EX_TEMPFAIL)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reopening = 0  # failed tries to open the node again since its last restart request
    restarts: list[float] = []
    while True:
        try:
            code = await _run_once(node, stop)
        except NodeError as exc:
            if config is None or not reopening or reopening > REOPEN_ATTEMPTS or stop.is_set():
                raise
            logging.getLogger("ledgerlab.node").warning(
                "cannot open the node again yet (try %d of %d): %s",
                reopening,
                REOPEN_ATTEMPTS,
                exc,
            )
            reopening += 1
            await asyncio.sleep(1.0)
            node = Node.from_config(config, byzantine=byzantine)
            continue
        if code is not None or node.supervisor.restart_reason is None or stop.is_set():
            return code or 0
        if config is None:
            return EXIT_RESTART
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < MAX_STORAGE_RESTARTS[1]] + [now]
        if len(restarts) > MAX_STORAGE_RESTARTS[0]:
            why = (
                f"{len(restarts)} restarts from disk within {MAX_STORAGE_RESTARTS[1]:.0f} s: "
                "the store keeps failing although its folder takes writes"
            )
            logging.getLogger("ledgerlab.node").error("%s stopped: %s", node.config.name, why)
            print(f"error: {node.config.name} stopped: {why}", file=sys.stderr)
            return EXIT_INTERNAL_ERROR
        logging.getLogger("ledgerlab.node").warning(
            "%s: opening again from disk (%s)", node.config.name, node.supervisor.restart_reason
        )
        reopening = 1
        node = Node.from_config(config, byzantine=byzantine)


async def _run_once(node: Node, stop: asyncio.Event) -> int | None:
    """One life of ``node``: None when it asked to be started again from disk."""
    async with node:
        _tune_gc()
        logging.getLogger("ledgerlab.node").info(
            "%s ready: rpc %s, p2p %s (%s)",
            node.config.name,
            node.config.rpc_listen,
            node.config.p2p_listen,
            node.config.transport,
        )
        waiters = [
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(node.supervisor.stopped.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
    if node.failure is not None:
        logging.getLogger("ledgerlab.node").error("%s stopped: %s", node.config.name, node.failure)
        print(f"error: {node.config.name} stopped: {node.failure}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    if node.supervisor.restart_reason is not None and not stop.is_set():
        return None
    logging.getLogger("ledgerlab.node").info("%s stopped cleanly", node.config.name)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node", description="Run one ledgerlab node.")
    parser.add_argument("--config", required=True, type=Path, help="the node's config.toml")
    parser.add_argument("--console", action="store_true", help="also log to stderr")
    parser.add_argument(
        "--byzantine",
        choices=(*BEHAVIOURS, "none"),
        metavar="BEHAVIOUR",
        help="FOR TESTING ONLY: make this node Byzantine (overrides [testing] byzantine): "
        f"{', '.join(BEHAVIOURS)}, or none for an honest node (docs/node.md)",
    )
    args = parser.parse_args(argv)
    try:
        node = Node.from_config(args.config, byzantine=args.byzantine)
    except (ConfigError, GenesisError, CertificateError, NodeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(node, args.console)
    try:
        with contextlib.suppress(ImportError):
            import uvloop

            uvloop.install()
        return asyncio.run(_run(node, args.config, args.byzantine))
    except NodeError as exc:
        logging.getLogger("ledgerlab.node").error("%s", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
