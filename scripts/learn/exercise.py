"""What an exercise is, how it runs, and how an answer is read and judged.

An :class:`Exercise` is data plus four small functions: the scenario it runs, what to look
at in that run, the question, and the expected answer *computed from the run* (so a
different seed or scenario gives a different, still right, expected answer).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from consensus.sim import Scenario, Simulation, check_all
from consensus.sim.summary import summarize
from consensus.sim.trace import JsonlTrace, Recorder, Tee


class AnswerError(ValueError):
    """The typed answer cannot be read as the kind of answer the question wants."""


@dataclass(slots=True)
class SimRun:
    """One finished simulation: the simulator, its trace records and its summary."""

    scenario: Scenario
    sim: Simulation
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    wall_s: float
    cpu_s: float
    """CPU time of this process for the run (less disturbed by other load than wall)."""


@dataclass(slots=True)
class Run:
    """What an exercise ran: usually one simulation (``main``), a sweep for exercise 9."""

    runs: list[SimRun]

    @property
    def main(self) -> SimRun:
        return self.runs[0]

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.main.records

    @property
    def summary(self) -> dict[str, Any]:
        return self.main.summary


def simulate(scenario: Scenario, trace_stream: IO[str] | None = None) -> SimRun:
    """Run ``scenario`` on the real replica code, keeping every trace record."""
    recorder = Recorder()
    sink: Any = recorder if trace_stream is None else Tee(recorder, JsonlTrace(trace_stream))
    started, cpu = time.perf_counter(), time.process_time()
    sim = Simulation(scenario, trace=sink).run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    summary = summarize(sim, check_all(sim))
    return SimRun(scenario, sim, recorder.records, summary, wall, cpu)


UNIT = r"(?:heights?|views?|blocks?|h)"
"""A unit word a number may carry ('height 4', 'view 1'), as 'node' may before a node."""


def parse(kind: str, text: str, count: int | None = None) -> Any:
    """Read a typed answer of ``kind`` (raises AnswerError when it cannot). ``count``, for
    ``nodes``, is how many nodes the run had: a node outside 0..count-1 is unreadable."""
    text = text.strip().lower()
    if not text:
        raise AnswerError("empty answer")
    if kind == "number":
        pattern = rf"(?:{UNIT}\s*)?[~≈]?\s*(-?\d+(?:\.\d+)?)(?:\s*(?:messages?|msgs?))?"
        m = re.fullmatch(pattern, text.replace(",", ""))
        if m is None:
            raise AnswerError(f"expected a number (e.g. '4' or 'height 4'), got {text!r}")
        return float(m.group(1))
    if kind == "nodes":
        words = re.sub(r"\b(nodes?|and)\b", " ", text)
        parts = [p for p in re.split(r"[\s,;]+", words) if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise AnswerError(f"expected node numbers like '2' or '0,3', got {text!r}")
        given = frozenset(int(p) for p in parts)
        if count is not None and max(given) >= count:
            raise AnswerError(f"this run has nodes 0-{count - 1}; there is no node {max(given)}")
        return given
    if kind == "word":
        return text.split()[0].strip(".,!?\"'")
    raise AssertionError(f"unknown answer kind {kind!r}")


@dataclass(frozen=True, slots=True)
class Answer:
    """The expected answer of one run: how to read a typed reply, and why it is right."""

    kind: str
    """``number``, ``nodes`` (one node or a set: '0' or '0,2') or ``word``."""
    value: Any
    """int for ``number``, frozenset[int] for ``nodes``, frozenset[str] for ``word``."""
    shown: str
    """The right answer as the user would type it."""
    why: tuple[str, ...]
    """The explanation, in the run's own terms (times, nodes, heights)."""
    tolerance: float = 0.0
    """For ``number``: a relative tolerance (0.1 accepts +-10 %)."""
    count: int | None = None
    """For ``nodes``: how many nodes the run had (a reply naming another is unreadable)."""

    def parse(self, text: str) -> Any:
        return parse(self.kind, text, self.count)

    def accepts(self, text: str) -> bool:
        """True when ``text`` is the right answer (raises AnswerError if unreadable)."""
        given = self.parse(text)
        if self.kind == "number":
            slack = abs(self.value) * self.tolerance
            return bool(abs(given - self.value) <= slack + 1e-9)
        if self.kind == "nodes":
            return bool(given == self.value)
        return bool(given in self.value)


def node_count(run: Run) -> int:
    """How many nodes the run's (first) simulation had, observers and joiners included."""
    return len(run.main.summary["per_node"])


def number(value: int, why: list[str], tolerance: float = 0.0) -> Answer:
    shown = str(value) if not tolerance else f"{value} (within {tolerance:.0%})"
    return Answer("number", value, shown, tuple(why), tolerance)


def nodes(value: set[int] | frozenset[int], why: list[str], count: int) -> Answer:
    """The node(s) of a run of ``count`` nodes that answer the question."""
    shown = ", ".join(map(str, sorted(value)))
    return Answer("nodes", frozenset(value), shown, tuple(why), count=count)


def word(accepted: set[str], why: list[str]) -> Answer:
    return Answer(
        "word", frozenset(w.lower() for w in accepted), " or ".join(sorted(accepted)), tuple(why)
    )


@dataclass(frozen=True, slots=True)
class Live:
    """A variant on real node processes (exercise 9: ``bench sweep``): the same
    look/question/answer steps over the rows the run returns."""

    command: Callable[[int], str]
    run: Callable[[int, Callable[[str], None]], list[dict[str, Any]]]
    look: Callable[[list[dict[str, Any]]], list[str]]
    question: Callable[[list[dict[str, Any]]], str]
    answer: Callable[[list[dict[str, Any]]], Answer]
    kind: str


@dataclass(frozen=True, slots=True)
class Exercise:
    number: int
    title: str
    intro: str
    """Two or three sentences: what the run shows."""
    commands: Callable[[int], list[str]]
    """The same run(s) for a seed as ``ledgerlab`` command lines (docs/tutorial.md shows
    them for seed 1)."""
    scenario: Callable[[int], Scenario]
    """The exercise's scenario for a seed."""
    look: Callable[[Run], list[str]]
    """What to look at in the run (plain text lines)."""
    question: Callable[[Run], str]
    answer: Callable[[Run], Answer]
    kind: str
    """What the answer is: ``number``, ``nodes`` or ``word`` (see :func:`parse`)."""
    think: str
    """A question to think about afterwards (not checked)."""
    reading: tuple[str, ...]
    """Doc sections to read, e.g. 'docs/consensus.md#view-change'."""
    seed: int = 1
    sweep: Callable[[int], list[Scenario]] | None = None
    """Several scenarios run in turn (exercise 9); ``scenario`` is then the first."""
    diagram: Callable[[Run], tuple[str, int] | None] | None = None
    """The ``ledgerlab explain`` diagram to show first: ("height", H) or
    ("view-change", V), of the first run."""
    live: Live | None = None
    """``learn N --live``: the exercise on real processes instead of the simulator."""
    predict: bool = False
    """Ask before showing what to look at (the look holds the answer): a prediction."""

    def run(self, seed: int | None = None, trace_stream: IO[str] | None = None) -> Run:
        """Run the exercise's scenario (or sweep); the trace of the first run goes to
        ``trace_stream`` when given."""
        s = self.seed if seed is None else seed
        scenarios = self.sweep(s) if self.sweep is not None else [self.scenario(s)]
        runs = [simulate(sc, trace_stream if i == 0 else None) for i, sc in enumerate(scenarios)]
        return Run(runs)
