"""``ledgerlab trace``: merge a live chain's per-node traces into one trace file.

Nodes started with ``ledgerlab up --trace`` (or ``start-node I --trace``) append their
records to ``NODE/data/trace.jsonl``. This verb reads every node's file and writes one
trace in the format of docs/trace-format.md (one header, records by wall time), which
``ledgerlab explain``, ``viz`` and ``learn`` read like a simulator trace. ``--follow``
keeps attaching to the running nodes' files and appends what they write.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

from scripts.errors import CommandError
from scripts.launcher.options import Verb, add_dir, add_verbs, arg, console, open_chain
from scripts.trace.live import NodeFile, encode, merge, merged_header, order, trace_path
from scripts.trace.schema import TraceError


def _open_out(path: str | None) -> IO[str]:
    if path is None or path == "-":
        return sys.stdout
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from None


def cmd_trace(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    missing = [n.name for n in chain.nodes if not trace_path(n).exists()]
    if len(missing) == len(chain.nodes) and not args.follow:
        raise CommandError(
            f"no node of {chain.root} has a trace ({trace_path(chain.nodes[0])} is missing)",
            hint="start the nodes with tracing: ledgerlab down && ledgerlab up --trace",
        )
    out = _open_out(args.output)
    try:
        if args.follow:
            return _follow(chain, out, args.lag)
        try:
            records = merge(chain)
        except TraceError as exc:
            raise CommandError(str(exc)) from None
        for record in records:
            out.write(encode(record) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    if out is not sys.stdout:
        console.print(
            f"{len(records) - 1} records of {len(chain.nodes) - len(missing)} nodes "
            f"-> {args.output}" + (f" (no trace: {', '.join(missing)})" if missing else "")
        )
    return 0


def _follow(chain: Any, out: IO[str], lag: float) -> int:
    """Append records as the nodes write them, each once ``lag`` seconds old (so that
    records of other nodes with earlier stamps, still in their buffers, sort before)."""
    files = [NodeFile(trace_path(n)) for n in chain.nodes]
    pending: list[tuple[int, dict[str, Any]]] = []
    wrote_header = False
    try:
        while True:
            for i, f in enumerate(files):
                try:
                    pending += [(i, r) for r in f.read_new()]
                except TraceError as exc:
                    raise CommandError(str(exc)) from None
            if not wrote_header and any(f.headers for f in files):
                out.write(encode(merged_header(files, str(chain.root))) + "\n")
                wrote_header = True
            if wrote_header:
                cutoff = time.time_ns() // 1000 - int(lag * 1e6)
                ready = [p for p in pending if p[1]["t"] <= cutoff]
                pending = [p for p in pending if p[1]["t"] > cutoff]
                for record in order(ready):
                    out.write(encode(record) + "\n")
                out.flush()
            time.sleep(0.25)
    except KeyboardInterrupt:
        for record in order(pending):
            out.write(encode(record) + "\n")
        out.flush()
    return 0


VERBS = (
    Verb(
        "trace",
        "merge the nodes' traces (started with up --trace) into one trace file",
        """
        ledgerlab up --trace && ledgerlab asset add alice 10
        ledgerlab trace -o live.jsonl          # every node's records, by wall time
        ledgerlab explain live.jsonl --height 2
        ledgerlab trace --follow -o live.jsonl # keep appending until Ctrl-C
        """,
        cmd_trace,
        (
            add_dir,
            arg("-o", "--output", metavar="FILE", help="write here (default: stdout)"),
            arg("--follow", "-f", action="store_true", help="keep appending until Ctrl-C"),
            arg(
                "--lag",
                type=float,
                default=1.0,
                metavar="S",
                help="--follow: write a record once it is S seconds old (default 1)",
            ),
        ),
    ),
)


def register(sub: Any) -> None:
    add_verbs(sub, VERBS)
