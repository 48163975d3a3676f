"""The checks every chaos run ends with; any failure fails the run.

They read the honest nodes' stores (:mod:`scripts.chaos.store`) and what the workload
and the runner recorded, and ask:

* **same blocks**: at every height every honest node that has it holds the same block;
* **replay**: the longest honest chain, imported block by block into an empty ledger from
  genesis (``Chain.import_block``), is accepted: each seal a quorum of the sealers in force
  at its height (computed by the replay itself, across membership changes), each block
  re-executes to the same header;
* **seals**: every block every honest node stores carries a seal valid for its height;
* **no duplicates**: no transaction (hash) and no nonce committed twice;
* **acknowledged and successful**: every transaction the client saw with a success receipt
  is in the final chain exactly once, in the block the receipt named; ``lost`` counts
  those that are not (it must be 0);
* **acknowledged committed**: every transaction a node acknowledged committed by the end
  (resent as the docs tell clients to);
* **supply**: on every honest node, the balances of every user the chain names sum to the
  successful userAdd/userSave amounts minus the successful userDraw amounts up to its head;
* **caught up**: every honest member ends at the final head;
* **stalls**: no stretch without progress while a quorum could talk outlasted its bound;
* **no crashes**: no node process exited on its own;
* **no internal errors**: no honest node counted a bug of ours (``internalErrors`` of
  ``getConsensusStatus``: what the supervisor caught, docs/node.md, Supervision);
* **storage faults** (runs with disk faults): no node still reports a fault
  (``storageFault``) at the end; which victims reported one is in the detail;
* **hostile** (``--hostile`` runs, :mod:`scripts.chaos.hostile`): of each same-nonce
  pair at most one committed; no poison pill was acknowledged or committed; no replay
  committed a second time; every flood met TxPoolIsFull.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from node.ledger.block import Block, Receipt
from node.ledger.chain import Chain, ChainError
from node.ledger.executor import Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import decode_values
from node.rpc.client import DAG_TRANSFER
from scripts.chaos.hostile import HostileEvidence
from scripts.chaos.stalls import Stall
from scripts.chaos.store import NodeLedger
from scripts.chaos.workload import TxRecord
from storage.ledger import LedgerStore
from storage.memory import MemoryKV

SUPPLY_SIGN = {"userAdd": 1, "userSave": 1, "userDraw": -1}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(slots=True)
class Evidence:
    """Everything the checks read."""

    genesis: GenesisConfig
    ledgers: Mapping[str, NodeLedger]  # honest nodes
    records: Sequence[TxRecord]
    members: Iterable[str] = ()  # honest nodes that are sealers or observers at the end
    stalls: Sequence[Stall] = ()
    crashes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    internal_errors: Mapping[str, int] = field(default_factory=dict)  # honest nodes
    disk_victims: Iterable[str] = ()  # nodes a disk fault was applied to
    storage_faults: Mapping[str, Sequence[str]] = field(default_factory=dict)  # seen, by node
    storage_fault_at_end: Iterable[str] = ()  # nodes still reporting one at the end
    hostile: HostileEvidence | None = None


@dataclass(slots=True)
class Replayed:
    """The reference chain as the replay rebuilt it."""

    chain: Chain
    height: int
    tx_places: dict[str, list[tuple[int, str]]]  # "0x" hash -> [(height, "0x" block hash)]
    nonces: Counter[str]
    supply: list[int]  # expected supply after each height
    users: set[str]
    failed_at: str | None = None


@dataclass(slots=True)
class Verdict:
    checks: list[Check]
    figures: dict[str, Any]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def run_checks(ev: Evidence) -> Verdict:
    checks: list[Check] = []
    reference = max(ev.ledgers.values(), key=lambda x: x.height, default=None)
    if reference is None:
        return Verdict([Check("ledgers", False, "no honest node's store could be read")], {})
    checks.append(same_blocks(ev.ledgers))
    replayed = replay(ev.genesis, reference)
    checks.append(
        Check(
            "replay",
            replayed.failed_at is None,
            replayed.failed_at
            or f"{reference.name}'s {replayed.height} blocks re-imported from "
            "genesis: every seal and every header checks",
        )
    )
    checks.append(seals(ev.ledgers, replayed))
    checks.append(no_duplicates(replayed))
    lost, lost_check = acknowledged_success(ev.records, replayed)
    checks.append(lost_check)
    checks.append(acknowledged_committed(ev.records, replayed))
    checks.append(supply(ev.genesis, ev.ledgers, replayed))
    checks.append(caught_up(ev.ledgers, ev.members, replayed.height))
    checks.append(stall_bound(ev.stalls))
    checks.append(no_crashes(ev.crashes))
    checks.append(no_internal_errors(ev.internal_errors))
    victims = sorted(set(ev.disk_victims))
    if victims:
        checks.append(storage_faults(victims, ev.storage_faults, ev.storage_fault_at_end))
    if ev.hostile is not None:
        checks += hostile(ev.hostile, replayed)
    committed = sum(r.hash in replayed.tx_places for r in ev.records)
    figures = {
        "final_height": replayed.height,
        "heights": {name: x.height for name, x in ev.ledgers.items()},
        "committed": committed,
        "lost": lost,
        "chain_txs": sum(len(v) for v in replayed.tx_places.values()),
        "users": len(replayed.users),
        "expected_supply": replayed.supply[-1] if replayed.supply else 0,
    }
    return Verdict(checks, figures)


# ----------------------------------------------------------------------------- chain


def same_blocks(ledgers: Mapping[str, NodeLedger]) -> Check:
    top = max((x.height for x in ledgers.values()), default=-1)
    for h in range(top + 1):
        hashes = {name: x.block_hash(h) for name, x in ledgers.items() if x.height >= h}
        if len(set(hashes.values())) > 1:
            shown = ", ".join(f"{n} {v.hex()[:16] if v else None}" for n, v in hashes.items())
            return Check("same blocks", False, f"height {h} differs: {shown}")
    return Check(
        "same blocks", True, f"{len(ledgers)} honest nodes agree at every height up to {top}"
    )


def replay(genesis: GenesisConfig, reference: NodeLedger) -> Replayed:
    """Import ``reference``'s blocks into an empty ledger; what the replay learnt."""
    chain = Chain(LedgerStore(MemoryKV()), genesis)
    out = Replayed(chain, 0, {}, Counter(), [0], set())
    for h in range(1, reference.height + 1):
        try:
            block = reference.block(h)
            chain.import_block(block, lambda _h: None)
        except (ChainError, LookupError, ValueError) as exc:
            out.failed_at = f"block {h} of {reference.name} refused: {exc}"
            return out
        _learn(out, block)
        out.height = h
    return out


def _learn(out: Replayed, block: Block) -> None:
    block_hash = "0x" + block.hash.hex()
    delta = 0
    for stx in block.decode_transactions():
        tx_hash = "0x" + stx.hash.hex()
        out.tx_places.setdefault(tx_hash, []).append((block.number, block_hash))
        tx = stx.tx
        out.nonces[tx.nonce] += 1
        if tx.to != DAG_TRANSFER:
            continue
        out.users.update(str(a) for a in tx.args if isinstance(a, str))
        receipt = out.chain.store.receipt(stx.hash)
        if tx.method in SUPPLY_SIGN and receipt is not None and _status(receipt) == 0:
            delta += SUPPLY_SIGN[tx.method] * int(tx.args[1])
    out.supply.append(out.supply[-1] + delta)


def _status(raw: bytes) -> int:
    return Receipt.decode(raw).status


def seals(ledgers: Mapping[str, NodeLedger], replayed: Replayed) -> Check:
    checked = 0
    for name, x in ledgers.items():
        for h in range(1, min(x.height, replayed.height) + 1):
            block = x.block(h)
            if block.hash != x.block_hash(h):
                return Check("seals", False, f"{name} block {h}: stored hash index disagrees")
            if not replayed.chain.verify_seal(block):
                return Check(
                    "seals",
                    False,
                    f"{name} block {h}: its seal is not a quorum of "
                    "the sealers in force at that height",
                )
            checked += 1
    return Check(
        "seals",
        True,
        f"{checked} stored blocks on {len(ledgers)} nodes, each seal "
        "a quorum of its height's sealers",
    )


def no_duplicates(replayed: Replayed) -> Check:
    twice = [h for h, places in replayed.tx_places.items() if len(places) > 1]
    nonces = [n for n, k in replayed.nonces.items() if k > 1]
    if twice or nonces:
        return Check(
            "no duplicates",
            False,
            f"{len(twice)} txs committed twice "
            f"({twice[:3]}), {len(nonces)} nonces reused ({nonces[:3]})",
        )
    return Check("no duplicates", True, f"{len(replayed.tx_places)} txs, each hash and nonce once")


# ----------------------------------------------------------------------------- workload


def acknowledged_success(records: Sequence[TxRecord], replayed: Replayed) -> tuple[int, Check]:
    seen = [r for r in records if r.status == 0]
    bad = []
    for r in seen:
        places = replayed.tx_places.get(r.hash, [])
        if len(places) != 1 or places[0] != (r.block_number, r.block_hash):
            bad.append(f"{r.hash[:18]} (receipt: block {r.block_number}; chain: {places})")
    detail = (
        f"{len(seen)} txs with a success receipt, each once in the block its receipt named"
        if not bad
        else f"{len(bad)} of {len(seen)} lost or moved: " + "; ".join(bad[:5])
    )
    return len(bad), Check("acknowledged and successful", not bad, detail)


def acknowledged_committed(records: Sequence[TxRecord], replayed: Replayed) -> Check:
    acked = [r for r in records if r.acked]
    missing = [r for r in acked if r.hash not in replayed.tx_places]
    if missing:
        expired = sum(r.expired for r in missing)
        shown = "; ".join(
            f"{r.hash[:18]} acked by node{r.acked_by}, sent to {r.sent_to}" for r in missing[:5]
        )
        return Check(
            "acknowledged committed",
            False,
            f"{len(missing)} of {len(acked)} "
            f"acknowledged txs never committed ({expired} past their block limit): "
            f"{shown}",
        )
    return Check("acknowledged committed", True, f"all {len(acked)} acknowledged txs committed")


def supply(genesis: GenesisConfig, ledgers: Mapping[str, NodeLedger], replayed: Replayed) -> Check:
    executor = Executor(genesis)
    users = sorted(replayed.users)
    bad = []
    for name, x in ledgers.items():
        if x.height > replayed.height:
            continue
        total = 0
        for user in users:
            status, output = executor.call(
                x.reader.state, DAG_TRANSFER, "userBalance", [user], block_number=x.height
            )
            if status == 0:
                total += int(decode_values(output)[0])
        expected = replayed.supply[x.height]
        if total != expected:
            bad.append(f"{name} at height {x.height}: {total} (expected {expected})")
    if bad:
        return Check("supply", False, "; ".join(bad))
    return Check(
        "supply",
        True,
        f"{len(users)} users on {len(ledgers)} nodes: balances sum "
        f"to minted - drawn ({replayed.supply[-1]:,} at the head)",
    )


def caught_up(ledgers: Mapping[str, NodeLedger], members: Iterable[str], height: int) -> Check:
    behind = {n: ledgers[n].height for n in members if n in ledgers and ledgers[n].height < height}
    missing = [n for n in members if n not in ledgers]
    if behind or missing:
        return Check(
            "caught up", False, f"behind the head {height}: {behind}; unreadable: {missing}"
        )
    return Check("caught up", True, f"every honest member at the final head {height}")


def stall_bound(stalls: Sequence[Stall]) -> Check:
    over = [s for s in stalls if not s.ok]
    worst = max(stalls, key=lambda s: s.seconds, default=None)
    if over:
        shown = "; ".join(
            f"{s.seconds:.1f} s from t={s.start:.1f} (bound {s.bound:.1f})" for s in over[:3]
        )
        return Check("stalls", False, f"{len(over)} stalls beyond their bound: {shown}")
    if worst is None:
        return Check("stalls", True, "no stall of a second or more while a quorum could talk")
    return Check(
        "stalls",
        True,
        f"longest {worst.seconds:.1f} s while a quorum could talk (bound {worst.bound:.1f} s)",
    )


def no_crashes(crashes: Mapping[str, Sequence[str]]) -> Check:
    found = {n: list(v) for n, v in crashes.items() if v}
    if found:
        return Check("no crashes", False, "; ".join(f"{n}: {v[-1]}" for n, v in found.items()))
    return Check("no crashes", True, "no node exited on its own")


def no_internal_errors(errors: Mapping[str, int]) -> Check:
    found = {n: k for n, k in errors.items() if k}
    if found:
        return Check(
            "no internal errors",
            False,
            f"bugs caught by the supervisor: {found} (the node logs have the tracebacks)",
        )
    return Check("no internal errors", True, "no honest node counted a bug of its own")


def storage_faults(
    victims: Sequence[str], seen: Mapping[str, Sequence[str]], at_end: Iterable[str]
) -> Check:
    """Every disk fault must be over at the end. One that never bit (the node had nothing
    to write while it lasted: no quorum, or not a member) is said, not failed."""
    still = sorted(set(at_end))
    unseen = [v for v in victims if not seen.get(v)]
    bit = [v for v in victims if seen.get(v)]
    if still:
        return Check("storage faults", False, f"{', '.join(still)} still cannot write at the end")
    detail = f"{', '.join(bit) or 'no node'}: the fault was reported (storageFault) and is over"
    if unseen:
        detail += f"; {', '.join(unseen)}: wrote nothing while it lasted (no fault to see)"
    return Check("storage faults", True, detail)


def hostile(ev: HostileEvidence, replayed: Replayed) -> list[Check]:
    places = replayed.tx_places
    both = [(x, y) for x, y in ev.pairs if x in places and y in places]
    one = sum((x in places) != (y in places) for x, y in ev.pairs)
    pairs = Check(
        "hostile: nonce pairs",
        not both,
        f"both txs of a same-nonce pair committed: {both[:3]}"
        if both
        else f"{len(ev.pairs)} same-nonce pairs raced across nodes, {one} with one committed, "
        "none with both",
    )
    acked = {h: ev.pills[h] for h, a in ev.pill_answers.items() if a == "ack"}
    untyped = {h: a for h, a in ev.pill_answers.items() if a.startswith("code ")}
    landed = {h: n for h, n in ev.pills.items() if h in places}
    pills = Check(
        "hostile: poison pills",
        not (acked or landed or untyped),
        f"acknowledged {sorted(set(acked.values()))}, committed {sorted(set(landed.values()))}, "
        f"untyped answers {sorted(set(untyped.values()))}"
        if acked or landed or untyped
        else f"{len(ev.pills)} pills ({len(set(ev.pills.values()))} kinds), each refused with "
        "a typed error, none committed",
    )
    twice = [h for h in ev.replays if len(places.get(h, ())) > 1]
    replays = Check(
        "hostile: replays",
        not twice,
        f"replayed txs committed twice: {twice[:3]}"
        if twice
        else f"{len(ev.replays)} replays of committed txs, none committed again",
    )
    reached = [b for b in ev.bursts if b["admitted"] or b["pool_full"]]
    unlimited = [b["node"] for b in reached if not b["pool_full"]]
    flood = Check(
        "hostile: pool limit",
        not unlimited,
        f"bursts at {unlimited} met no TxPoolIsFull"
        if unlimited
        else f"{len(reached)} bursts over the pool capacity, each refused in part "
        f"(TxPoolIsFull: {sum(b['pool_full'] for b in reached)})",
    )
    for b in ev.bursts:
        b["admitted_committed"] = sum(h in places for h in b["admitted_hashes"])
    return [pairs, pills, replays, flood]
