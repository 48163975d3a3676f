"""What a chaos run does to the cluster, and when: a list of perturbations.

A schedule comes from a seed (:func:`generate`: the same seed, duration and cluster shape
always give the same schedule) or from a TOML file (:func:`load`), and is written back as
TOML (:func:`to_toml`) so that any run can be replayed from its report. The format::

    duration = 60                 # optional; --duration wins

    [[perturbation]]
    at = 5                        # seconds after the workload started
    kind = "kill"                 # SIGKILL, restart after `duration`
    node = 1                      # a node index, or "leader" (asked when applied)
    duration = 4

    [[perturbation]]
    at = 15
    kind = "partition"
    groups = [[0], [1, 2, 3]]     # links between groups are cut; heal after `duration`
    mode = "blackhole"            # or "reset"
    duration = 8

Kinds and their fields are in :data:`KINDS` (docs/reliability.md has the table).
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from consensus.quorum import quorum

COMMON = ("at", "kind")
KINDS: dict[str, tuple[str, ...]] = {
    "kill": ("node", "duration"),
    "pause": ("node", "duration"),
    "leader_kill": ("count", "duration", "interval"),
    "partition": ("groups", "duration", "mode"),
    "slow": ("links", "duration", "delay_ms", "jitter_ms", "rate_kbps"),
    "lossy": ("links", "duration", "loss", "reset"),
    "broker_restart": ("duration",),
    "stale_restart": ("node", "age"),
    "grow": (),
    "remove": ("node", "duration"),
    "disk_full": ("node", "duration"),
    "read_only": ("node", "duration"),
    "clock_skew": ("node", "offset", "duration"),
}
"""Each kind's fields besides ``at`` and ``kind``."""

NETWORK_KINDS = frozenset({"partition", "slow", "lossy"})
MEMBERSHIP_KINDS = frozenset({"grow", "remove"})
DISK_KINDS = frozenset({"disk_full", "read_only"})
"""Need the node's data directory on a filesystem of its own (scripts/chaos/disk.py)."""
CLOCK_KINDS = frozenset({"clock_skew"})
"""Need libfaketime (Debian's faketime) to start the node with its clock off."""
MAX_SKEW = 3600.0
NodeRef = int | str  # an index, or "leader"


class ScheduleError(ValueError):
    """A schedule file or entry that does not say what to do."""


@dataclass(frozen=True, slots=True)
class Perturbation:
    """One fault: what, when, for how long, and to whom."""

    at: float
    kind: str
    node: NodeRef | None = None
    duration: float = 0.0
    groups: tuple[tuple[int, ...], ...] = ()
    links: tuple[tuple[int, int], ...] | None = None  # None: every link
    mode: str = "blackhole"
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbps: float = 0.0
    loss: float = 0.0
    reset: float = 0.0
    count: int = 1
    interval: float = 0.0
    age: float = 0.0
    offset: float = 0.0  # clock_skew: seconds the node's wall clock is off (+ ahead)

    @property
    def span(self) -> float:
        """Seconds from ``at`` until the fault is over (for leader_kill, every round)."""
        if self.kind == "leader_kill":
            return self.count * self.duration + (self.count - 1) * self.interval
        return self.duration

    def describe(self) -> str:
        parts = [f"{self.at:g}s {self.kind}"]
        for name in KINDS[self.kind]:
            value = getattr(self, name)
            if value not in (None, (), 0, 0.0) or name == "node":
                parts.append(f"{name}={_show(value)}")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at, "kind": self.kind}
        for name in KINDS[self.kind]:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = [list(g) for g in value] if isinstance(value, tuple) else value
        return out


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "|".join(",".join(str(x) for x in group) for group in value)
    return str(value)


@dataclass(frozen=True, slots=True)
class Schedule:
    perturbations: tuple[Perturbation, ...]
    duration: float | None = None
    seed: int | None = None
    source: str = "seed"

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.perturbations:
            out[p.kind] = out.get(p.kind, 0) + (p.count if p.kind == "leader_kill" else 1)
        return out


# ----------------------------------------------------------------------------- checking


def check(p: Perturbation, nodes: int) -> Perturbation:
    """``p`` if it makes sense for a cluster of ``nodes`` nodes, else ScheduleError."""
    where = f"perturbation at {p.at:g} s ({p.kind})"
    if p.kind not in KINDS:
        raise ScheduleError(f"{where}: unknown kind; kinds are {', '.join(KINDS)}")
    if p.at < 0 or p.duration < 0 or p.age < 0 or p.interval < 0:
        raise ScheduleError(f"{where}: times must be >= 0")
    if "node" in KINDS[p.kind]:
        fixed = p.kind == "stale_restart" or p.kind in DISK_KINDS or p.kind in CLOCK_KINDS
        _check_node(p.node, nodes, where, leader_ok=not fixed)
    if p.kind in CLOCK_KINDS and not (0 < abs(p.offset) <= MAX_SKEW):
        raise ScheduleError(f"{where}: offset must be non-zero seconds within ±{MAX_SKEW:g}")
    if p.kind == "partition":
        _check_groups(p.groups, nodes, where)
    if p.links is not None:
        for a, b in p.links:
            if not (0 <= a < nodes and 0 <= b < nodes) or a == b:
                raise ScheduleError(f"{where}: link {a}-{b} is not a pair of nodes 0..{nodes - 1}")
    if p.mode not in ("blackhole", "reset"):
        raise ScheduleError(f"{where}: mode must be blackhole or reset")
    if not (0 <= p.loss < 1 and 0 <= p.reset < 1):
        raise ScheduleError(f"{where}: loss and reset are probabilities below 1")
    if p.kind == "leader_kill" and p.count < 1:
        raise ScheduleError(f"{where}: count must be at least 1")
    if p.kind == "stale_restart" and p.age <= 0:
        raise ScheduleError(f"{where}: age (seconds between copy and restart) must be > 0")
    if p.kind == "stale_restart" and p.age > p.at:
        raise ScheduleError(f"{where}: the copy would be taken {p.age - p.at:g} s before the start")
    return p


def _check_node(node: NodeRef | None, nodes: int, where: str, *, leader_ok: bool) -> None:
    if node == "leader" and leader_ok:
        return
    if not isinstance(node, int) or isinstance(node, bool) or not 0 <= node < nodes + 8:
        allowed = f"0..{nodes - 1}" + (' or "leader"' if leader_ok else "")
        raise ScheduleError(f"{where}: node must be {allowed}, got {node!r}")


def _check_groups(groups: Sequence[Sequence[int]], nodes: int, where: str) -> None:
    seen = [i for g in groups for i in g]
    if len(groups) < 2 or len(seen) != len(set(seen)) or not seen:
        raise ScheduleError(f"{where}: groups must be two or more disjoint lists of nodes")
    if any(not 0 <= i < nodes + 8 for i in seen):
        raise ScheduleError(f"{where}: group members must be node indices")


# ----------------------------------------------------------------------------- TOML


def load(path: Path, nodes: int) -> Schedule:
    """A schedule file (module docstring); ScheduleError names what is wrong."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ScheduleError(f"{path}: {exc}") from None
    return parse(doc, nodes, source=str(path))


def parse(doc: Mapping[str, Any], nodes: int, *, source: str = "toml") -> Schedule:
    extra = set(doc) - {"duration", "seed", "perturbation"}
    if extra:
        raise ScheduleError(f"unknown top-level keys {sorted(extra)} (duration, perturbation)")
    entries = doc.get("perturbation", [])
    if not isinstance(entries, list):
        raise ScheduleError("perturbation must be an array of tables ([[perturbation]])")
    items = tuple(sorted((_entry(e, nodes) for e in entries), key=lambda p: p.at))
    duration = doc.get("duration")
    if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
        raise ScheduleError("duration must be a positive number of seconds")
    seed = doc.get("seed")
    return Schedule(items, None if duration is None else float(duration), seed, source)


_FLOATS = {f.name for f in fields(Perturbation) if f.type == "float"}


def _entry(raw: Any, nodes: int) -> Perturbation:
    if not isinstance(raw, dict):
        raise ScheduleError("each [[perturbation]] must be a table")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ScheduleError(f"perturbation kind {kind!r} unknown; kinds are {', '.join(KINDS)}")
    if "at" not in raw:
        raise ScheduleError(f"a {kind} perturbation needs `at` (seconds)")
    allowed = set(COMMON) | set(KINDS[kind])
    unknown = set(raw) - allowed
    if unknown:
        raise ScheduleError(f"{kind}: unknown fields {sorted(unknown)}; it takes {sorted(allowed)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        values[name] = _convert(kind, name, value)
    return check(Perturbation(**values), nodes)


def _convert(kind: str, name: str, value: Any) -> Any:
    try:
        if name in _FLOATS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            return float(value)
        if name == "groups":
            return tuple(tuple(int(i) for i in g) for g in value)
        if name == "links":
            if value == "all":
                return None
            return tuple((int(a), int(b)) for a, b in value)
        if name == "count":
            return int(value)
        return value
    except (TypeError, ValueError):
        raise ScheduleError(f"{kind}: bad value for {name}: {value!r}") from None


def to_toml(schedule: Schedule) -> str:
    lines = [f"# chaos schedule ({schedule.source})"]
    if schedule.seed is not None:
        lines.append(f"seed = {schedule.seed}")
    if schedule.duration is not None:
        lines.append(f"duration = {schedule.duration:g}")
    for p in schedule.perturbations:
        lines += ["", "[[perturbation]]"]
        for key, value in p.as_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, float):
        return f"{value:g}" if value != int(value) else str(int(value))
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


# ----------------------------------------------------------------------------- random


@dataclass(frozen=True, slots=True)
class Shape:
    """What the generator may do to this cluster."""

    nodes: int
    transport: str = "tcp"
    network: bool = True  # the proxies are in place
    membership: bool = True
    byzantine: frozenset[int] = frozenset()
    kinds: frozenset[str] | None = None  # restrict to these
    disk: bool = False  # disk faults can run here (scripts/chaos/disk.py: root, loop devices)
    clock: bool = False  # libfaketime is installed

    def allowed(self) -> list[str]:
        out = [k for k in KINDS if k != "broker_restart" or self.transport == "mqtt"]
        if not self.network:
            out = [k for k in out if k not in NETWORK_KINDS]
        if not self.disk:
            out = [k for k in out if k not in DISK_KINDS]
        if not self.clock:
            out = [k for k in out if k not in CLOCK_KINDS]
        if not self.membership:
            out = [k for k in out if k not in MEMBERSHIP_KINDS]
        if self.kinds is not None:
            out = [k for k in out if k in self.kinds]
        return out


WEIGHTS = {
    "kill": 4,
    "pause": 2,
    "leader_kill": 3,
    "partition": 4,
    "slow": 2,
    "lossy": 2,
    "broker_restart": 2,
    "stale_restart": 2,
    "disk_full": 2,
    "read_only": 1,
    "clock_skew": 2,
}
WARMUP = 4.0
COOLDOWN = 6.0


@dataclass(slots=True)
class _Plan:
    rng: random.Random
    shape: Shape
    out: list[Perturbation] = field(default_factory=list)
    grown: int = 0

    @property
    def honest(self) -> list[int]:
        return [i for i in range(self.shape.nodes) if i not in self.shape.byzantine]

    def victim(self) -> int:
        return self.rng.choice(self.honest)


def generate(seed: int, duration: float, shape: Shape) -> Schedule:
    """A random schedule, the same for the same arguments (see module docstring).

    Faults follow each other with short gaps; at most one at a time takes nodes away, a
    ``remove`` or ``grow`` is placed inside another fault, a slow or lossy spell may
    overlap the next fault, and ``stale_restart`` copies a node early and restarts it
    from the copy later. The last seconds are quiet, so the chain can settle.
    """
    rng = random.Random(seed)
    plan = _Plan(rng, shape)
    kinds = [k for k in shape.allowed() if k not in MEMBERSHIP_KINDS]
    t = WARMUP
    end = duration - COOLDOWN
    while kinds and t < end:
        kind = rng.choices(kinds, [WEIGHTS[k] for k in kinds])[0]
        p = _make(plan, kind, t, end)
        if p is None or p.at + p.span > end:
            break
        plan.out.append(p)
        _maybe_membership(plan, p)
        overlap = kind in ("slow", "lossy") and rng.random() < 0.5
        t = round(p.at + (1.0 if overlap else p.span + rng.uniform(1.5, 4.0)), 1)
    items = tuple(sorted(plan.out, key=lambda p: p.at))
    return Schedule(items, duration, seed, "seed")


def _make(plan: _Plan, kind: str, t: float, end: float) -> Perturbation | None:
    rng = plan.rng
    span = round(rng.uniform(3.0, 8.0), 1)
    if kind in ("kill", "pause"):
        return Perturbation(t, kind, node=plan.victim(), duration=span)
    if kind == "leader_kill":
        count = rng.randint(2, 3)
        return Perturbation(
            t,
            kind,
            count=count,
            duration=round(rng.uniform(2, 4), 1),
            interval=round(rng.uniform(2, 4), 1),
        )
    if kind == "partition":
        return Perturbation(
            t, kind, groups=_groups(plan), duration=span, mode=rng.choice(("blackhole", "reset"))
        )
    if kind == "slow":
        return Perturbation(
            t,
            kind,
            links=_some_links(plan),
            duration=span,
            delay_ms=rng.choice((20, 50, 100, 200)),
            jitter_ms=rng.choice((0, 10, 40)),
            rate_kbps=rng.choice((0, 0, 256, 1024)),
        )
    if kind == "lossy":
        return Perturbation(
            t,
            kind,
            links=_some_links(plan),
            duration=span,
            loss=rng.choice((0.02, 0.05, 0.1)),
            reset=rng.choice((0.0, 0.001, 0.005)),
        )
    if kind == "broker_restart":
        return Perturbation(t, kind, duration=round(rng.uniform(1, 4), 1))
    if kind in DISK_KINDS:
        return Perturbation(t, kind, node=plan.victim(), duration=span)
    if kind == "clock_skew":
        # MQTT drops a new boot's batches stamped more than max_age (300 s) ago: keep
        # within it there (docs/reliability.md, Clock skew)
        sizes = (90, 180, 240) if plan.shape.transport == "mqtt" else (90, 300, 600)
        offset = rng.choice((-1, 1)) * rng.choice(sizes)
        return Perturbation(t, kind, node=plan.victim(), offset=offset, duration=span + 4)
    if kind == "stale_restart":
        age = round(rng.uniform(8.0, 20.0), 1)
        if t + age > end:
            return None
        return Perturbation(t + age, kind, node=plan.victim(), age=age)
    raise AssertionError(kind)


def _groups(plan: _Plan) -> tuple[tuple[int, ...], ...]:
    """Isolate f nodes (the rest keeps a quorum), or split so that no side has one."""
    rng, n = plan.rng, plan.shape.nodes
    order = plan.honest + sorted(plan.shape.byzantine)
    rng.shuffle(order)
    f = (n - 1) // 3
    if rng.random() < 0.6 and f > 0:
        return (tuple(sorted(order[:f])), tuple(sorted(order[f:])))
    half = n // 2
    if n - half >= quorum(n):  # odd sizes: make the bigger side one short of a quorum
        half = n - quorum(n) + 1
    return (tuple(sorted(order[:half])), tuple(sorted(order[half:])))


def _some_links(plan: _Plan) -> tuple[tuple[int, int], ...] | None:
    """Every link, or the links of one node."""
    if plan.rng.random() < 0.4:
        return None
    k = plan.victim()
    return tuple((k, j) for j in range(plan.shape.nodes) if j != k)


def _maybe_membership(plan: _Plan, fault: Perturbation) -> None:
    """Now and then, change the membership while ``fault`` is on."""
    allowed = plan.shape.allowed()
    if fault.kind not in ("kill", "partition", "pause") or fault.span < 5:
        return
    if plan.rng.random() > 0.5:
        return
    at = round(fault.at + 1.0, 1)
    if "grow" in allowed and plan.grown < 1 and plan.rng.random() < 0.5:
        plan.grown += 1
        plan.out.append(Perturbation(at, "grow"))
    elif "remove" in allowed:
        target = fault.node if isinstance(fault.node, int) else plan.victim()
        plan.out.append(Perturbation(at, "remove", node=target, duration=fault.span + 2))


def restrict(schedule: Schedule, kinds: Iterable[str]) -> Schedule:
    keep = set(kinds)
    return replace(
        schedule, perturbations=tuple(p for p in schedule.perturbations if p.kind in keep)
    )
