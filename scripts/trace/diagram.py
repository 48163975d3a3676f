"""Draw a :class:`~scripts.trace.story.Story` as a terminal sequence diagram (rich).

A lane per node, top to bottom in time: an arrow per message from the sender's lane to
the receiver's (``●──►``; ``✗`` where it was lost), a ``◆`` where a node reached a phase
or did something of note, the label to the right and the commentary (why) under it.
"""

from __future__ import annotations

import io
import textwrap

from rich.console import Console
from rich.text import Text

from scripts.trace.teller import Step, Story

TIME_WIDTH = 11
MIN_LABEL = 26


def _lane_width(console_width: int, lanes: int) -> int:
    room = console_width - TIME_WIDTH - MIN_LABEL
    return max(5, min(14, room // max(1, lanes)))


def _row(step: Step | None, index: dict[int, int], lanes: int, width: int) -> Text:
    cells = [" "] * (lanes * width)
    styles: list[str] = ["dim"] * len(cells)
    centre = [i * width + width // 2 for i in range(lanes)]
    for c in centre:
        cells[c] = "│"
    if step is None:
        return _text(cells, styles)
    src = index.get(step.src)
    style = step.style or "white"
    if step.kind in ("arrow", "lost") and step.dst is not None and step.dst in index:
        dst = index[step.dst]
        start = centre[src] if src is not None else 0
        end = centre[dst]
        lo, hi = sorted((start, end))
        for x in range(lo, hi + 1):
            cells[x] = "─"
            styles[x] = style
        if src is not None:
            cells[start] = "●"
        if step.kind == "lost":
            cells[end] = "✗"
            styles[end] = "bold red"
        else:
            cells[end] = "►" if end >= start else "◄"
    elif src is not None:
        cells[centre[src]] = "◆"
        styles[centre[src]] = style
    return _text(cells, styles)


def _text(cells: list[str], styles: list[str]) -> Text:
    text = Text()
    for ch, st in zip(cells, styles, strict=True):
        text.append(ch, style=st)
    return text


def _ms(t: int) -> str:
    return f"{t / 1000:9.3f}ms"


def render(story: Story, console: Console) -> None:
    """Print ``story`` on ``console``, fitted to its width."""
    lanes = len(story.lanes)
    index = {node: i for i, (node, _) in enumerate(story.lanes)}
    width = _lane_width(console.width, lanes)
    label_room = max(MIN_LABEL, console.width - TIME_WIDTH - lanes * width - 1)
    console.rule(story.title)
    head = Text(" " * TIME_WIDTH)
    for _, name in story.lanes:
        head.append(name[: width - 1].center(width), style="bold")
    console.print(head, no_wrap=True, crop=True)
    note_width = max(30, console.width - TIME_WIDTH - 2)
    for step in story.steps:
        line = Text(_ms(step.t).rjust(TIME_WIDTH - 1) + " ", style="dim")
        line.append_text(_row(step, index, lanes, width))
        line.append(" " + step.label[: label_room - 1], style=step.style)
        console.print(line, no_wrap=True, crop=True)
        if step.note:
            for k, part in enumerate(textwrap.wrap(step.note, note_width - 2)):
                mark = "↳ " if k == 0 else "  "
                console.print(Text(" " * TIME_WIDTH + mark + part, style="italic"), no_wrap=True)
    if not story.steps:
        console.print("nothing in this trace concerns it")
    for summary in story.summary:
        console.print(Text(summary, style="bold"))


def plain(story: Story, width: int = 110) -> str:
    """``story`` as plain text (no colour) of ``width`` columns: what the golden tests pin."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False)
    render(story, console)
    return buf.getvalue()
