"""What a simulation run is made of: nodes, network, faults, Byzantine roles, workload.

A :class:`Scenario` is plain data. It can be built in code, from ``ledgerlab sim`` flags,
from a TOML file (:func:`load_toml`) or drawn at random from a seed
(:func:`random_scenario`, used by the CI sweep and the soak run).
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consensus.quorum import max_faulty

BEHAVIOURS = (
    "silent",  # receives and runs honestly, sends nothing
    "crash",  # crash-recover: goes down and comes back, again and again
    "equivocate",  # as leader, sends different proposals to the two halves of the peers
    "double-vote",  # sends conflicting Prepares/Commits to different peers
    "bad-signature",  # every message has a corrupted signature or a forged sender
    "spam",  # honest, plus stale-view, far-future, garbage and duplicate messages
    "withhold",  # never sends its Commits
    "twins",  # two instances sharing one identity and key
)


class ScenarioError(ValueError):
    """A scenario that cannot be run (bad node index, unknown behaviour, ...)."""


@dataclass(slots=True)
class NetworkSpec:
    """Per-link latency (each link gets a fixed base of 0.5x..1.5x ``latency_ms``) plus
    uniform jitter; independent drop and duplication; ``reorder`` is the chance that a
    message is held back by up to five latencies."""

    latency_ms: float = 20.0
    jitter_ms: float = 5.0
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0


@dataclass(slots=True)
class PartitionSpec:
    """From ``start_ms`` to ``heal_ms`` (None: never) only nodes in the same group talk.
    Nodes not named in ``groups`` form one more group together."""

    groups: list[list[int]]
    start_ms: float
    heal_ms: float | None


@dataclass(slots=True)
class CrashSpec:
    """Node ``node`` crashes at ``at_ms`` and restarts at ``restart_ms`` (None: never),
    keeping only its committed blocks and its last PersistState."""

    node: int
    at_ms: float
    restart_ms: float | None


@dataclass(slots=True)
class DropRule:
    """Drop matching messages: a scalpel for tests and lessons. Empty tuples match all."""

    kinds: tuple[str, ...] = ()
    src: tuple[int, ...] = ()
    dst: tuple[int, ...] = ()
    start_ms: float = 0.0
    end_ms: float | None = None


LEADER = -1
"""``MembershipChange.node`` for "whoever proposed the block": removing the current leader."""
MEMBERSHIP_OPS = ("add", "remove")


@dataclass(slots=True)
class MembershipChange:
    """Block ``height`` changes the sealer list, in force from ``height + 1`` (as the
    Consensus precompile does): ``add`` appends node ``node`` (it followed the chain as an
    observer until then), ``remove`` takes it out (it goes on as an observer). ``node`` may
    be :data:`LEADER`: the node that proposed that block. A change that would empty the
    list, or add a sealer twice, changes nothing (the precompile refuses it)."""

    height: int
    op: str
    node: int


@dataclass(slots=True)
class Scenario:
    nodes: int = 4
    """Every node of the run; the first ``sealers`` of them seal at genesis."""
    seed: int = 1
    blocks: int = 20
    txs_per_block: int = 10
    byzantine: dict[int, str] = field(default_factory=dict)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    partitions: list[PartitionSpec] = field(default_factory=list)
    crashes: list[CrashSpec] = field(default_factory=list)
    drop_rules: list[DropRule] = field(default_factory=list)
    timeout_ms: float = 1000.0
    tick_ms: float = 50.0
    backoff_cap: int = 6
    leader_period: int = 1
    exec_ms: float = 2.0
    tx_interval_ms: float = 0.0
    """A block's worth of transactions arrives every this many ms (0: all at the start)."""
    max_time_ms: float | None = None
    status_ms: float = 1000.0
    """How often nodes exchange (height, head) for block sync; 0 turns it off."""
    signatures: str = "real"
    twins_split: bool = True
    break_rule: str | None = None
    sealers: int | None = None
    """Sealers at genesis: nodes ``0 .. sealers - 1`` (None: all); the others observe."""
    membership: list[MembershipChange] = field(default_factory=list)

    def initial_sealers(self) -> tuple[int, ...]:
        return tuple(range(self.nodes if self.sealers is None else self.sealers))

    @property
    def f(self) -> int:
        return max_faulty(self.nodes)

    def faulty_nodes(self) -> list[int]:
        """Nodes that are Byzantine or crash: the ones the protocol may not rely on."""
        out = set(self.byzantine)
        out.update(c.node for c in self.crashes)
        return sorted(out)

    def gst_ms(self) -> float | None:
        """When the last partition heals and the last crashed node restarts (None: never)."""
        t = 0.0
        for p in self.partitions:
            if p.heal_ms is None:
                return None
            t = max(t, p.heal_ms)
        for c in self.crashes:
            if c.restart_ms is None:
                continue  # a node that never returns is one of the tolerated faults
            t = max(t, c.restart_ms)
        for r in self.drop_rules:
            if r.end_ms is None:
                return None
            t = max(t, r.end_ms)
        return t

    def liveness_expected(self) -> bool:
        """Within the fault budget in every sealer list, pessimistically: removing "the
        leader" is taken to remove an honest sealer (the run knows which; see
        :meth:`consensus.sim.engine.Simulation.liveness_expected`)."""
        if self.gst_ms() is None:
            return False
        faulty = set(self.faulty_nodes())
        return all(bad <= max_faulty(size) for size, bad in self.sealer_budgets(faulty))

    def sealer_budgets(self, faulty: set[int]) -> list[tuple[int, int]]:
        """(sealers, faulty sealers) of each list the scenario's changes produce."""
        members = list(self.initial_sealers())
        honest_gone = 0  # honest sealers removed as "the leader"
        out = [(len(members), len(faulty & set(members)))]
        for c in sorted(self.membership, key=lambda c: c.height):
            size = len(members) - honest_gone
            if c.op == "add" and c.node not in members:
                members.append(c.node)
            elif c.op == "remove" and size > 1:
                if c.node == LEADER:
                    honest_gone += 1
                elif c.node in members:
                    members.remove(c.node)
            out.append((len(members) - honest_gone, len(faulty & set(members))))
        return out

    def validate(self) -> None:
        if not 1 <= self.nodes <= 1000:
            raise ScenarioError("nodes must be between 1 and 1000")
        if self.blocks < 1 or self.txs_per_block < 1:
            raise ScenarioError("blocks and txs_per_block must be at least 1")
        for node, kind in self.byzantine.items():
            if not 0 <= node < self.nodes:
                raise ScenarioError(f"byzantine node {node} is not in 0..{self.nodes - 1}")
            if kind not in BEHAVIOURS:
                raise ScenarioError(f"unknown behaviour {kind!r}; one of {', '.join(BEHAVIOURS)}")
        for p in self.partitions:
            for g in p.groups:
                for node in g:
                    if not 0 <= node < self.nodes:
                        raise ScenarioError(f"partition names node {node}, not in the cluster")
            if p.heal_ms is not None and p.heal_ms < p.start_ms:
                raise ScenarioError("a partition heals before it starts")
        for c in self.crashes:
            if not 0 <= c.node < self.nodes:
                raise ScenarioError(f"crash names node {c.node}, not in the cluster")
            if c.restart_ms is not None and c.restart_ms < c.at_ms:
                raise ScenarioError("a node restarts before it crashes")
        n = self.network
        for name in ("drop", "duplicate", "reorder"):
            if not 0.0 <= getattr(n, name) < 1.0:
                raise ScenarioError(f"network {name} must be in [0, 1)")
        if n.latency_ms < 0 or n.jitter_ms < 0:
            raise ScenarioError("latency and jitter must be >= 0")
        if self.tx_interval_ms < 0 or self.exec_ms < 0:
            raise ScenarioError("tx_interval_ms and exec_ms must be >= 0")
        if self.timeout_ms < self.tick_ms or self.tick_ms <= 0:
            raise ScenarioError("need 0 < tick_ms <= timeout_ms")
        if self.leader_period < 1 or self.backoff_cap < 0 or self.status_ms < 0:
            raise ScenarioError("need leader_period >= 1, backoff_cap >= 0 and status_ms >= 0")
        if self.signatures not in ("real", "fake"):
            raise ScenarioError("signatures must be 'real' or 'fake'")
        if self.break_rule not in (None, *BREAK_RULES):
            raise ScenarioError(f"unknown rule to break; one of {', '.join(BREAK_RULES)}")
        self._validate_membership()

    def _validate_membership(self) -> None:
        if self.sealers is not None and not 1 <= self.sealers <= self.nodes:
            raise ScenarioError(f"sealers must be between 1 and nodes ({self.nodes})")
        for c in self.membership:
            if c.op not in MEMBERSHIP_OPS:
                raise ScenarioError(f"unknown membership op {c.op!r}; one of add, remove")
            if c.height < 1:
                raise ScenarioError("a membership change needs a block height >= 1")
            if not (0 <= c.node < self.nodes or (c.node == LEADER and c.op == "remove")):
                raise ScenarioError(
                    f"membership change names node {c.node}, not in the cluster"
                    " (-1, the leader, only with remove)"
                )


BREAK_RULES = ("skip-reproposal", "small-quorum")
"""Safety rules ``--break`` can switch off, to watch the invariant checker catch a fork."""


def parse_partition(spec: str) -> PartitionSpec:
    """``"0,1|2,3@1000-6000"``: groups split by ``|``, times in ms; ``"0@500-"`` never heals."""
    try:
        groups_part, _, times = spec.partition("@")
        groups = [[int(x) for x in g.split(",") if x.strip()] for g in groups_part.split("|")]
        start_s, _, heal_s = times.partition("-")
        start = float(start_s) if start_s else 0.0
        heal = float(heal_s) if heal_s else None
    except ValueError:
        raise ScenarioError(f"bad partition {spec!r}; expected like '0,1|2,3@1000-6000'") from None
    if not any(groups):
        raise ScenarioError(f"partition {spec!r} names no nodes")
    return PartitionSpec([g for g in groups if g], start, heal)


def parse_crash(spec: str) -> CrashSpec:
    """``"2@1000-5000"``: node 2 crashes at 1000 ms and restarts at 5000 ms."""
    try:
        node_s, _, times = spec.partition("@")
        at_s, _, restart_s = times.partition("-")
        return CrashSpec(int(node_s), float(at_s or 0), float(restart_s) if restart_s else None)
    except ValueError:
        raise ScenarioError(f"bad crash {spec!r}; expected like '2@1000-5000'") from None


def parse_membership(spec: str) -> MembershipChange:
    """``"add:4@3"``: block 3 adds node 4 (from block 4 on); ``"remove:leader@5"``."""
    try:
        op, _, rest = spec.partition(":")
        node_s, _, height_s = rest.partition("@")
        node = LEADER if node_s == "leader" else int(node_s)
        return MembershipChange(int(height_s), op, node)
    except ValueError:
        raise ScenarioError(
            f"bad membership change {spec!r}; expected like 'add:4@3' or 'remove:leader@5'"
        ) from None


MAX_FLOAT = 1e12
"""Largest magnitude of a float setting: 1e12 ms is 31 years of virtual time, and the
engine turns milliseconds into integer microseconds (inf, NaN or 1e305 cannot be)."""


def _get(table: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = table.get(key, default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if value is not None and (
        not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    ):
        raise ScenarioError(f"{key} must be a {kind.__name__}")
    if isinstance(value, float) and not abs(value) <= MAX_FLOAT:  # NaN fails this too
        raise ScenarioError(f"{key} must be a number within +-{MAX_FLOAT:g}, not {value}")
    return value


def _tables(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The ``[[name]]`` array of tables (empty when absent)."""
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise ScenarioError(f"[[{name}]] must be an array of tables")
    return items


def _groups(value: Any) -> list[list[int]]:
    if not isinstance(value, list) or not all(
        isinstance(g, list) and all(type(n) is int for n in g) for g in value
    ):
        raise ScenarioError("partition groups must be a list of lists of node indices")
    return [list(g) for g in value]


def from_dict(data: dict[str, Any]) -> Scenario:
    """A scenario from the TOML layout documented in docs/consensus.md."""
    s = Scenario()
    for key, kind in (
        ("nodes", int),
        ("seed", int),
        ("blocks", int),
        ("txs_per_block", int),
        ("timeout_ms", float),
        ("tick_ms", float),
        ("backoff_cap", int),
        ("leader_period", int),
        ("exec_ms", float),
        ("tx_interval_ms", float),
        ("max_time_ms", float),
        ("status_ms", float),
        ("signatures", str),
        ("twins_split", bool),
        ("sealers", int),
    ):
        setattr(s, key, _get(data, key, kind, getattr(s, key)))
    net = data.get("network", {})
    if not isinstance(net, dict):
        raise ScenarioError("[network] must be a table")
    for key in ("latency_ms", "jitter_ms", "drop", "duplicate", "reorder"):
        setattr(s.network, key, _get(net, key, float, getattr(s.network, key)))
    for p in _tables(data, "partition"):
        s.partitions.append(
            PartitionSpec(
                _groups(p.get("groups", [])),
                _get(p, "start_ms", float, 0.0),
                _get(p, "heal_ms", float, None),
            )
        )
    for c in _tables(data, "crash"):
        s.crashes.append(
            CrashSpec(
                _get(c, "node", int, 0),
                _get(c, "at_ms", float, 0.0),
                _get(c, "restart_ms", float, None),
            )
        )
    for b in _tables(data, "byzantine"):
        s.byzantine[_get(b, "node", int, 0)] = _get(b, "behaviour", str, "silent")
    for m in _tables(data, "membership"):
        node = m.get("node", 0)
        s.membership.append(
            MembershipChange(
                _get(m, "height", int, 1),
                _get(m, "op", str, "add"),
                LEADER if node == "leader" else _get(m, "node", int, 0),
            )
        )
    s.validate()
    return s


def load_toml(path: str | Path) -> Scenario:
    """Read a scenario file; errors become ScenarioError with the reason."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ScenarioError(f"{path} is not valid TOML: nested too deeply") from None
    return from_dict(data)


def random_scenario(seed: int, *, signatures: str = "fake") -> Scenario:
    """A random but reproducible scenario within the fault budget (f or fewer faulty).

    Draws cluster size, network quality, Byzantine roles, crashes and partitions (any
    size, always healing) from ``seed``; used by the CI sweep and the soak run.
    """
    rng = random.Random(f"ledgerlab-scenario-{seed}")
    n = rng.choice((1, 2, 3, 4, 4, 4, 5, 6, 7))
    s = Scenario(nodes=n, seed=seed, blocks=rng.randint(3, 8), signatures=signatures)
    s.txs_per_block = rng.choice((1, 3, 10))
    s.timeout_ms = rng.choice((300.0, 500.0, 1000.0))
    s.tick_ms = s.timeout_ms / rng.choice((5, 10, 20))
    s.backoff_cap = rng.choice((2, 4, 6))
    s.leader_period = rng.choice((1, 1, 2))
    s.tx_interval_ms = rng.choice((0.0, 200.0, 500.0, 1000.0))
    s.network = NetworkSpec(
        latency_ms=rng.choice((1.0, 10.0, 30.0)),
        jitter_ms=rng.choice((0.0, 5.0, 20.0)),
        drop=rng.choice((0.0, 0.0, 0.01, 0.05)),
        duplicate=rng.choice((0.0, 0.0, 0.05, 0.2)),
        reorder=rng.choice((0.0, 0.1, 0.3)),
    )
    f = max_faulty(n)
    nodes = list(range(n))
    rng.shuffle(nodes)
    budget = rng.randint(0, f)
    for node in nodes[:budget]:
        if rng.random() < 0.25:
            at = rng.uniform(0, 3000)
            restart = at + rng.uniform(200, 5000) if rng.random() < 0.8 else None
            s.crashes.append(CrashSpec(node, at, restart))
        else:
            s.byzantine[node] = rng.choice(BEHAVIOURS)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        if n < 2:
            break
        size = rng.randint(1, n - 1)
        members = sorted(rng.sample(range(n), size))
        start = rng.uniform(0, 4000)
        s.partitions.append(PartitionSpec([members], start, start + rng.uniform(100, 6000)))
    if rng.random() < 0.4:
        _random_membership(s, rng)
    s.validate()
    return s


def _random_membership(s: Scenario, rng: random.Random) -> None:
    """Up to two new observers and one to three changes (add, remove, re-add, and the
    leader's removal last), each kept only if every list stays within its fault budget."""
    extra = rng.choice((0, 1, 1, 2))
    s.sealers = s.nodes
    s.nodes += extra
    faulty = set(s.faulty_nodes())
    for _ in range(rng.randint(1, 3)):
        members = set(s.initial_sealers())
        for c in s.membership:
            (members.add if c.op == "add" else members.discard)(c.node)
        outside = sorted(set(range(s.nodes)) - members - faulty)
        choices = [("remove", n) for n in sorted(members)] + [("add", n) for n in outside]
        if len(members) > 1:
            choices.append(("remove", LEADER))
        op, node = rng.choice(choices)
        height = rng.randint(1, max(1, s.blocks - 1))
        last = max((c.height for c in s.membership), default=0)
        if any(c.node == LEADER for c in s.membership) or height <= last:
            height = last + 1  # keep the changes in order, a leader's removal last
        s.membership.append(MembershipChange(height, op, node))
        if not all(bad <= max_faulty(n) for n, bad in s.sealer_budgets(faulty)):
            s.membership.pop()
        if node == LEADER:
            break
