"""Facts read from a run's trace records: what the exercises' answers are computed from.

Every function here reads the simulator's trace (``consensus/sim/trace.py``; records with
``t`` in virtual microseconds, ``node``, ``ev`` and the message fields), never a fixed
expectation, so an exercise's answer follows the run it is asked about. This is the one
module that knows the record layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Records = list[dict[str, Any]]


def ms(t_us: int | float) -> str:
    return f"{t_us / 1000:.1f} ms"


@dataclass(frozen=True, slots=True)
class PreparedAt:
    """The moment a node became prepared at a height, and the Prepares it held then."""

    node: int
    height: int
    view: int
    t_us: int
    block: str | None
    senders: frozenset[int]
    """Sealers whose matching Prepare (same view and block) the node held, itself included."""


def prepared_at(records: Records, node: int, height: int) -> PreparedAt | None:
    """When ``node`` first became prepared at ``height`` (its ``phase: prepared`` record,
    docs/trace-format.md) and every matching Prepare it held then: the ones received
    before that moment, same view and block, plus its own. The record's ``voters`` are
    only the quorum the certificate keeps; a node may hold more."""
    held: dict[tuple[int, str | None], set[int]] = {}
    for rec in records:
        if rec.get("node") != node:
            continue
        ev = rec["ev"]
        if ev in ("recv", "bcast") and rec.get("type") == "Prepare" and rec["height"] == height:
            signer = (
                int(rec["sender"] if "sender" in rec else rec["from"]) if ev == "recv" else node
            )
            held.setdefault((rec["view"], rec.get("block")), set()).add(signer)
        elif ev == "phase" and rec["phase"] == "prepared" and rec["height"] == height:
            view, block = rec["view"], rec.get("block")
            senders = frozenset(held.get((view, block), set()) | set(rec.get("voters", ())))
            return PreparedAt(node, height, view, rec["t"], block, senders)
    return None


def commits(records: Records, height: int | None = None) -> Records:
    """Commit records (a node committing a height through consensus), in time order."""
    return [r for r in records if r["ev"] == "commit" and height in (None, r["height"])]


def committed_view(records: Records, height: int) -> int | None:
    """The view in which the first node committed ``height``."""
    first = commits(records, height)
    return first[0]["view"] if first else None


def new_view_sender(records: Records, view: int) -> tuple[int, int, int] | None:
    """(node, height, time) of the first NewView broadcast for ``view``."""
    for rec in records:
        if rec["ev"] == "bcast" and rec.get("type") == "NewView" and rec["view"] == view:
            return rec["node"], rec["height"], rec["t"]
    return None


def view_changes_started(records: Records) -> list[tuple[int, int, int, int]]:
    """(time, node, new view, height) of every ViewChange a node broadcast first for a view."""
    seen: set[tuple[int, int]] = set()
    out = []
    for rec in records:
        if rec["ev"] == "bcast" and rec.get("type") == "ViewChange":
            key = (rec["node"], rec["view"])
            if key not in seen:
                seen.add(key)
                out.append((rec["t"], rec["node"], rec["view"], rec["height"]))
    return out


def proposals_received(records: Records, leader: int, height: int, view: int) -> dict[int, str]:
    """node -> proposal digest of the first PrePrepare it received from ``leader``."""
    out: dict[int, str] = {}
    for rec in records:
        if (
            rec["ev"] == "recv"
            and rec.get("type") == "PrePrepare"
            and rec.get("from") == leader
            and rec["height"] == height
            and rec["view"] == view
        ):
            out.setdefault(rec["node"], rec["proposal"])
    return out


def own_prepare(records: Records, node: int, height: int, view: int) -> str | None:
    """The proposal digest ``node`` voted for with its own Prepare (None: no vote)."""
    for rec in records:
        if (
            rec["ev"] == "bcast"
            and rec.get("node") == node
            and rec.get("type") == "Prepare"
            and rec["height"] == height
            and rec["view"] == view
        ):
            return str(rec["proposal"])
    return None


def highest_commit_before(records: Records, t_us: float) -> int:
    """The highest height any node committed (or synced) before ``t_us``."""
    best = 0
    for rec in records:
        if rec["t"] >= t_us:
            break
        if rec["ev"] in ("commit", "synced"):
            best = max(best, rec["height"])
    return best


def first_commit_after(records: Records, t_us: float) -> dict[str, Any] | None:
    return next((r for r in records if r["ev"] == "commit" and r["t"] >= t_us), None)


def synced(records: Records, node: int) -> Records:
    """The blocks ``node`` got by block sync (each seal checked), in order."""
    return [r for r in records if r["ev"] == "synced" and r.get("node") == node]


def events_of(records: Records, ev: str, node: int | None = None) -> Records:
    return [r for r in records if r["ev"] == ev and node in (None, r.get("node"))]
