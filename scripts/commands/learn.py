"""``ledgerlab learn [N]``: guided PBFT exercises, checked against the run they ask about.

Without N it lists the exercises and your progress. With N it runs exercise N on the
deterministic simulator (the real replica code), shows what to look at, asks a question
and checks your answer against values computed from that run's trace and summary, then
explains the right answer either way. Exit status: 0 right, 1 wrong, 2 bad usage or an
unreadable --answer, 3 no answer (stdin closed).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from scripts.errors import CommandError
from scripts.learn import EXERCISES, Answer, AnswerError, Exercise, Run
from scripts.learn.exercise import parse
from scripts.learn.progress import Progress, default_path
from scripts.trace.diagram import render
from scripts.trace.story import height_story, view_change_story
from scripts.viz import write_page

console = Console(highlight=False)

NO_ANSWER = 3
ASKS = 3
"""Unreadable answers typed before giving up (an unreadable --answer fails at once)."""

EXAMPLES = """\
examples:
  ledgerlab learn                    list the exercises and your progress
  ledgerlab learn 3                  run exercise 3, look, answer the question
  ledgerlab learn 3 --answer 2       the same without a prompt (scripts, CI)
  ledgerlab learn 3 --seed 7         another run: the right answer follows the run
  ledgerlab learn 3 --trace run.jsonl    keep the run's trace: ledgerlab explain run.jsonl
  ledgerlab learn 3 --html run.html      and watch it in a browser (ledgerlab viz)
  ledgerlab learn 9 --live           throughput against n on real processes (bench sweep)
  ledgerlab learn --reset            forget your progress

docs/tutorial.md walks through every exercise.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "learn",
        help="guided PBFT exercises on the simulator, with checked answers",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("number", nargs="?", type=int, metavar="N", help="exercise to run (1-9)")
    p.add_argument("--answer", metavar="X", help="answer without a prompt")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the run (default: 1)")
    p.add_argument("--trace", metavar="FILE", help="write the run's trace (JSONL)")
    p.add_argument(
        "--html",
        metavar="PAGE",
        help="also write the run as an animated page (ledgerlab viz; the trace goes to "
        "--trace, or next to PAGE as .jsonl)",
    )
    p.add_argument(
        "--no-diagram", action="store_true", help="skip the sequence diagram (ledgerlab explain)"
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="exercise 9 on real node processes (a small bench sweep, about a minute)",
    )
    p.add_argument(
        "--progress",
        metavar="FILE",
        help="progress file (default $LEDGERLAB_LEARN_PROGRESS or "
        "~/.local/state/ledgerlab/learn.json)",
    )
    p.add_argument("--reset", action="store_true", help="forget all progress")
    p.set_defaults(func=run)


def exercise(number: int) -> Exercise:
    for ex in EXERCISES:
        if ex.number == number:
            return ex
    raise CommandError(
        f"no exercise {number}; there are {len(EXERCISES)}",
        hint="`ledgerlab learn` lists them",
        status=2,
    )


def list_exercises(progress: Progress) -> None:
    table = Table(title="ledgerlab learn: PBFT, step by step")
    for col in ("#", "exercise", "progress"):
        table.add_column(col)
    for ex in EXERCISES:
        e = progress.entry(ex.number)
        if progress.solved(ex.number):
            state = "[green]solved[/]"
        elif e.get("attempts"):
            state = f"[yellow]tried {e['attempts']}x[/]"
        else:
            state = "-"
        table.add_row(str(ex.number), ex.title, state)
    console.print(table)
    done = sum(progress.solved(ex.number) for ex in EXERCISES)
    console.print(f"{done} of {len(EXERCISES)} solved (progress in {progress.path})")
    console.print("Start with [bold]ledgerlab learn 1[/]; docs/tutorial.md has them all.")


def _lines(lines: list[str] | tuple[str, ...], style: str = "") -> None:
    for line in lines:
        console.print(line, style=style or None, markup=False, soft_wrap=True)


def open_trace(path: str | None, html: str | None = None) -> IO[str] | None:
    """The trace file, opened for writing; ``html`` names the --html page the path was
    derived from (the user typed that one, so the error says both)."""
    if path is None:
        return None
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        what = f"{path} (the trace for --html {html}, kept next to it)" if html else path
        raise CommandError(f"cannot write {what}: {exc.strerror}", status=2) from None


def ask(answer: Answer, given: str | None) -> tuple[str, bool] | None:
    """(the reply, right?) from --answer or the prompt; None when stdin is closed."""
    if given is not None:
        try:
            return given, answer.accepts(given)
        except AnswerError as exc:
            raise CommandError(f"cannot read --answer: {exc}", status=2) from None
    for _ in range(ASKS):
        try:
            reply = console.input("[bold]your answer>[/] ")
        except EOFError:
            return None
        try:
            return reply, answer.accepts(reply)
        except AnswerError as exc:
            console.print(f"[yellow]{exc}[/]; try again", markup=True)
    raise CommandError("no readable answer", hint="answer with a number or node list", status=2)


def show_diagram(ex: Exercise, run: Run, trace: str | None) -> None:
    """The exercise's ``ledgerlab explain`` diagram of the first run."""
    which = ex.diagram(run) if ex.diagram is not None else None
    if which is None:
        return
    kind, number = which
    header, records = run.records[0], run.records[1:]
    if kind == "height":
        render(height_story(header, records, number), console)
    else:
        render(view_change_story(header, records, number), console)
    console.print(
        f"[dim]the same diagram: ledgerlab explain {trace or 'TRACE'} --{kind} {number}"
        + ("" if trace else f"  (TRACE from ledgerlab learn {ex.number} --trace TRACE)")
        + "[/]",
        soft_wrap=True,
    )


def show_run(ex: Exercise, run: Run, seed: int, diagram: str | None) -> None:
    """The exercise, the run's outcome, its diagram (unless ``diagram`` is None; else the
    trace file it names, '' for none) and what to look at."""
    console.rule(f"Exercise {ex.number} of {len(EXERCISES)}: {ex.title}")
    _lines([ex.intro])
    commands = ex.commands(seed)
    console.print(f"[dim]the same run:[/] {commands[0]}", soft_wrap=True, markup=True)
    for other in commands[1:]:
        console.print(f"[dim]and:[/] {other}", soft_wrap=True)
    s = run.summary
    failed = [k for k, r in s["invariants"].items() if not r["ok"]]
    console.print(
        f"[dim]ran seed {seed}: {s['blocks_committed']} of {s['blocks_target']} blocks, "
        f"{s['view_changes']} view changes, "
        + (f"[red]invariant failed: {', '.join(failed)}[/]" if failed else "invariants ok")
        + "[/]"
    )
    if diagram is not None:
        show_diagram(ex, run, diagram or None)
    if not ex.predict:
        show_look(ex.look(run))


def show_look(lines: list[str]) -> None:
    console.rule("what to look at", style="dim")
    _lines(lines)


def run(args: argparse.Namespace) -> int:
    progress = Progress(Path(args.progress) if args.progress else default_path())
    if args.reset:
        progress.data.clear()
        _save(progress)
        console.print(f"progress cleared ({progress.path})")
        if args.number is None:
            return 0
    if args.number is None:
        if args.answer is not None or args.trace or args.html or args.seed is not None:
            raise CommandError(
                "--answer, --seed, --trace and --html need an exercise number", status=2
            )
        list_exercises(progress)
        return 0
    ex = exercise(args.number)
    seed = ex.seed if args.seed is None else args.seed
    if seed < 0:
        raise CommandError("--seed must be >= 0", status=2)
    if args.live:
        return run_live(ex, args, seed, progress)
    derived = bool(args.html and not args.trace)
    if derived:
        args.trace = str(Path(args.html).with_suffix(".jsonl"))
    if args.html and Path(args.html).resolve() == Path(args.trace).resolve():
        raise CommandError("--html and --trace name the same file", status=2)
    check_answer_text(ex.kind, args.answer)
    trace = open_trace(args.trace, args.html if derived else None)
    try:
        result = ex.run(seed, trace)
    finally:
        if trace is not None:
            trace.close()
    if args.html:
        try:
            write_page(args.trace, args.html, title=f"ledgerlab learn {ex.number}: {ex.title}")
        except OSError as exc:
            raise CommandError(f"cannot write {args.html}: {exc.strerror}", status=2) from None
    show_run(ex, result, seed, None if args.no_diagram else args.trace or "")
    reveal = ex.look(result) if ex.predict else None
    status = judge(ex, ex.question(result), ex.answer(result), args.answer, reveal)
    if status == NO_ANSWER:
        return status
    if args.trace:
        console.print(f"[dim]trace of this run:[/] {args.trace} (ledgerlab explain, ledgerlab viz)")
    if args.html:
        console.print(f"[dim]in a browser:[/] open {args.html}")
    return record(ex, status, seed, progress)


def run_live(ex: Exercise, args: argparse.Namespace, seed: int, progress: Progress) -> int:
    """The exercise's variant on real node processes (exercise 9: a small bench sweep)."""
    live = ex.live
    if live is None:
        with_live = [e.number for e in EXERCISES if e.live is not None]
        raise CommandError(
            f"exercise {ex.number} runs on the simulator only; --live: exercise "
            + ", ".join(map(str, with_live)),
            status=2,
        )
    if args.trace or args.html:
        raise CommandError("--trace and --html are for the simulator runs, not --live", status=2)
    check_answer_text(live.kind, args.answer)
    console.rule(f"Exercise {ex.number} of {len(EXERCISES)}, live: {ex.title}")
    console.print(f"[dim]the same run:[/] {live.command(seed)}", soft_wrap=True)
    console.print("[dim]starting real node processes on loopback: about a minute[/]")
    rows = live.run(seed, lambda line: console.print(line, style="dim", markup=False))
    if not rows:
        raise CommandError("every benchmark run failed", hint="see the lines above")
    show_look(live.look(rows))
    status = judge(ex, live.question(rows), live.answer(rows), args.answer)
    return status if status == NO_ANSWER else record(ex, status, seed, progress)


def check_answer_text(kind: str, text: str | None) -> None:
    """Refuse an unreadable --answer before anything runs."""
    if text is None:
        return
    try:
        parse(kind, text)
    except AnswerError as exc:
        raise CommandError(f"cannot read --answer: {exc}", status=2) from None


def judge(
    ex: Exercise, question: str, answer: Answer, given: str | None, reveal: list[str] | None = None
) -> int:
    """Ask, say whether the reply is right, explain; 0 right, 1 wrong, 3 no answer.
    ``reveal`` (what to look at, when it holds the answer) is shown once the reply is in."""
    console.rule("question", style="dim")
    _lines([question], style="bold")
    got = ask(answer, given)
    if reveal is not None:
        show_look(reveal)
    if got is None:
        console.print(f"no answer (stdin closed). The run's answer: {answer.shown}")
        _lines(answer.why)
        console.print("[dim]give the answer with --answer X[/]")
        return NO_ANSWER
    reply, right = got
    if right:
        console.print(f"[bold green]RIGHT[/]: {answer.shown}")
    else:
        console.print(
            f"[bold red]NOT QUITE[/]: you said {reply.strip()!r}; this run says {answer.shown}"
        )
    console.rule("why", style="dim")
    _lines(answer.why)
    console.rule("think about", style="dim")
    _lines([ex.think])
    console.print("[dim]read:[/] " + ", ".join(ex.reading))
    return 0 if right else 1


def record(ex: Exercise, status: int, seed: int, progress: Progress) -> int:
    progress.record(ex.number, right=status == 0, seed=seed)
    _save(progress)
    done = sum(progress.solved(e.number) for e in EXERCISES)
    nxt = f"; next: ledgerlab learn {ex.number + 1}" if ex.number < len(EXERCISES) else ""
    console.print(f"[dim]{done} of {len(EXERCISES)} solved{nxt}[/]")
    return status


def _save(progress: Progress) -> None:
    try:
        progress.save()
    except OSError as exc:
        console.print(f"[yellow]progress not saved[/] ({progress.path}: {exc.strerror})")
