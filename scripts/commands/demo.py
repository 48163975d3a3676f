"""``ledgerlab demo``: start a real 4-node chain, push transfers through it, stop and
restart a node, and check the result (see :mod:`scripts.launcher.demo`)."""

from __future__ import annotations

import argparse

from scripts.launcher import demo
from scripts.launcher.options import add_parser, console, fresh_dir


def cmd_demo(args: argparse.Namespace) -> int:
    directory = fresh_dir(args.dir, "the demo")
    return demo.run(
        short=args.short, keep=args.keep, seed=args.seed, directory=directory, console=console
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_parser(
        sub,
        "demo",
        "start a 4-node chain, send transfers, stop and restart a node, check the books",
        """
        ledgerlab demo            # about a minute; stops everything at the end
        ledgerlab demo --short    # a quick version (used by the tests)
        ledgerlab demo --keep     # leave the chain running to explore it afterwards
        """,
        description="Start a 4-node PBFT chain (TCP on loopback) in a fresh folder, create "
        "users, send a few thousand DagTransfer transfers with a live status table, stop one "
        "node to show that f = 1 keeps the chain going, restart it and watch it catch up, "
        "then print throughput, latency and a total-supply check.",
    )
    p.add_argument("--short", "--quick", action="store_true", help="fewer users and transfers")
    p.add_argument("--keep", action="store_true", help="leave the chain running afterwards")
    p.add_argument("--dir", default=None, help="use this (new, empty) folder for the chain")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated transfers")
    p.set_defaults(func=cmd_demo)
