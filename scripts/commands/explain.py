"""``ledgerlab explain TRACE``: one height or one view change as a sequence diagram.

Reads a trace (docs/trace-format.md) from ``ledgerlab sim --trace`` or ``ledgerlab
trace`` and draws, with a lane per node, every message of the height (or view change)
as an arrow, the moment each node becomes pre-prepared, prepared and committed, and a
plain-language note of why: quorum counts, the saved certificate, a re-proposed block,
an equivocation, a block fetched by sync.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from scripts.errors import CommandError
from scripts.launcher.options import Verb, add_verbs, arg
from scripts.trace.diagram import render
from scripts.trace.schema import TraceError, read_trace
from scripts.trace.story import Record, height_story, view_change_story, view_changes

console = Console()


def overview(header: Record, records: list[Record]) -> Table:
    """What the trace holds, to choose a height or a view change."""
    heights = sorted({r["height"] for r in records if r["ev"] in ("commit", "synced")})
    table = Table(title="trace", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("source", f"{header['source']} ({header['clock']} clock, µs)")
    nodes = ", ".join(
        n["name"] + (f" ({n['behaviour']})" if n.get("behaviour") else "") for n in header["nodes"]
    )
    table.add_row("nodes", f"{nodes}; f = {header['f']}")
    table.add_row("records", str(len(records)))
    span = f"{heights[0]}..{heights[-1]}" if heights else "none"
    table.add_row("heights committed", span)
    vcs = view_changes(records)
    table.add_row("view changes to views", ", ".join(map(str, vcs)) or "none")
    byz = sorted({(r["height"], r["behaviour"]) for r in records if r["ev"] == "byzantine"})
    if byz:
        table.add_row("Byzantine acts at heights", ", ".join(f"{h} ({b})" for h, b in byz[:12]))
    synced = sorted({r["height"] for r in records if r["ev"] == "synced"})
    if synced:
        table.add_row("heights fetched by sync", ", ".join(map(str, synced[:20])))
    return table


def explain_file(
    path: str, *, height: int | None, view_change: int | None, out: Console = console
) -> None:
    try:
        header, records = read_trace(path)
    except TraceError as exc:
        raise CommandError(
            str(exc), hint="a trace from `ledgerlab sim --trace` or `ledgerlab trace`"
        ) from None
    if height is None and view_change is None:
        out.print(overview(header, records))
        out.print("explain one: --height H or --view-change V (the change to view V)")
        return
    if view_change is not None:
        story = view_change_story(header, records, view_change)
        asked = f"--view-change {view_change}"
    else:
        assert height is not None
        story = height_story(header, records, height)
        asked = f"--height {height}"
    if not story.steps:
        raise CommandError(f"{asked}: not in this trace; it has {holds(records)}")
    render(story, out)


def holds(records: list[Record]) -> str:
    """The heights and view changes a trace has, for an error naming one it lacks."""
    heights = sorted({int(r["height"]) for r in records if int(r.get("height", 0)) >= 1})
    done = sorted({int(r["height"]) for r in records if r["ev"] in ("commit", "synced")})
    span = f"heights {heights[0]}..{heights[-1]}" if heights else "no heights"
    if done:
        span += f" (committed {done[0]}..{done[-1]})"
    vcs = view_changes(records)
    return span + (
        f" and view changes to views {', '.join(map(str, vcs))}" if vcs else " and no view change"
    )


def cmd_explain(args: argparse.Namespace) -> int:
    if args.height is not None and args.view_change is not None:
        raise CommandError("give --height or --view-change, not both")
    for flag, value in (("--height", args.height), ("--view-change", args.view_change)):
        if value is not None and value < 1:
            raise CommandError(f"{flag} must be at least 1 (got {value})")
    explain_file(args.trace, height=args.height, view_change=args.view_change)
    return 0


VERBS = (
    Verb(
        "explain",
        "draw one height or view change of a trace as a sequence diagram, with why",
        """
        ledgerlab sim --trace run.jsonl --no-live && ledgerlab explain run.jsonl --height 3
        ledgerlab sim --blocks 2 --drop-commits-to 1,2,3 --trace vc.jsonl --no-live
        ledgerlab explain vc.jsonl --view-change 1     # the change to view 1
        ledgerlab explain live.jsonl                   # what the trace holds
        """,
        cmd_explain,
        (
            arg("trace", metavar="TRACE", help="a trace file (docs/trace-format.md)"),
            arg("--height", type=int, metavar="H", help="explain how height H was decided"),
            arg(
                "--view-change",
                type=int,
                metavar="V",
                help="explain the view change to view V",
            ),
        ),
    ),
)


def register(sub: Any) -> None:
    add_verbs(sub, VERBS)
