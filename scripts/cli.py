"""The ``ledgerlab`` command: parses arguments and hands each verb to its module.

Every module in :mod:`scripts.commands` defines ``register(subparsers)``, which adds its
verbs and sets ``func`` on their parsers; adding a verb touches no other file. A verb's
``func(args) -> int`` returns the exit status. Expected failures raise
:class:`CommandError` and print as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from rich.console import Console
from rich.markup import escape

from scripts import commands
from scripts.errors import CommandError

err_console = Console(stderr=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ledgerlab",
        description="A FISCO BCOS-style consortium ledger: PBFT nodes, DagTransfer assets, "
        "local clusters, benchmarks and a deterministic simulator.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        return exc.status
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    # Run through the package module so verbs raise the same CommandError class we catch.
    from scripts.cli import main as package_main

    sys.exit(package_main())
