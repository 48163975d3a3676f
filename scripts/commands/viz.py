"""``ledgerlab viz``: write one self-contained HTML page that animates a trace.

The page (inline script, style and data; no network) shows a lane per node, every
message flying between them, each node's votes filling up towards the quorum, faulty
nodes, the committed chain, and says in words what a view change or an equivocation is
when one happens. See docs/viz.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from scripts.errors import CommandError
from scripts.viz import TraceError, write_page

console = Console()

EXAMPLES = """\
examples:
  ledgerlab sim --nodes 4 --faulty 1 --fault equivocate --blocks 5 --seed 3 --trace run.jsonl
  ledgerlab viz run.jsonl -o run.html        then open run.html in a browser (works offline)
  ledgerlab sim --nodes 4 --crash "1@50-3000" --blocks 6 --trace vc.jsonl && ledgerlab viz vc.jsonl

In the page: space plays or pauses, the arrow keys step from event to event, the
scrubber and the buttons jump to a height or to the next view change, and hovering a
message shows its fields.
"""


def run(args: argparse.Namespace) -> int:
    out = Path(args.output) if args.output else Path(args.trace).with_suffix(".html")
    if out.resolve() == Path(args.trace).resolve():
        raise CommandError("the page would overwrite its own trace", hint="give -o PAGE.html")
    try:
        size = write_page(args.trace, out, title=args.title)
    except TraceError as exc:
        raise CommandError(
            str(exc),
            hint="a trace comes from `ledgerlab sim --trace FILE`; see docs/trace-format.md",
        ) from None
    except OSError as exc:
        raise CommandError(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"wrote {out} ({size} bytes); open it in a browser", highlight=False)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "viz",
        help="write an animated HTML page of a trace (messages, votes, view changes)",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "trace",
        metavar="TRACE",
        help="a JSONL trace (ledgerlab sim --trace, or ledgerlab trace -o)",
    )
    p.add_argument("-o", "--output", metavar="PAGE", help="the page to write (TRACE.html)")
    p.add_argument("--title", help="title shown on the page (default: the trace's name)")
    p.set_defaults(func=run)
