"""Turn trace records (docs/trace-format.md) into the compact tables the viz page animates.

The page needs, for any instant, what is in flight and what every node believes. The
trace says it per event (a node broadcasts, a node receives, a node becomes prepared), so
this module pairs every receipt with the send it came from (its flight), replays each
node's state into a timeline of snapshots (height, view, phase, votes counted towards the
quorum) and interns repeated strings. Tables are columnar (one list per field) so that a
10-node, 50-height run stays well under a megabyte in the page.

Records without a header (as written before format version 1) are understood too: node
ids are then the endpoint ids seen, and Byzantine nodes are recognised by what they sent.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from consensus.quorum import max_faulty
from scripts.trace.schema import TraceError

MESSAGE_TYPES = ("PrePrepare", "Prepare", "Commit", "ViewChange", "NewView", "garbage")
"""Message kinds in the order the page colours them; anything else maps to ``garbage``."""

PHASES = ("idle", "pre-prepared", "executed", "prepared", "committed", "view-change", "down")
"""A node's phase for its current height, as its lane shows it."""

MARKS = (
    "executed",
    "invalid",
    "prepared",
    "committed",
    "synced",
    "crash",
    "restart",
    "timeout",
    "newview",
    "membership",
    "stop",
)
"""Events drawn on a node's lane at the instant they happen (``stop``: a live node the
launcher stopped; down like a crash until its ``restart``)."""

FLAG_EQUIVOCATION = 1
"""A PrePrepare whose sender sent another proposal for the same (view, height)."""
FLAG_DOUBLE_VOTE = 2
"""A Prepare or Commit whose sender voted for another block in the same (view, height)."""
FLAG_UNPAIRED = 4
"""A receipt whose send is not in the trace (drawn as arriving from nowhere)."""
FLAG_LOST = 8
"""A message that never arrived (``lost`` records): drawn to half way, then a cross."""


@dataclass
class Interner:
    """Repeated strings stored once; tables refer to them by index (-1: none)."""

    values: list[str] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict)

    def __call__(self, value: str | None) -> int:
        if value is None:
            return -1
        found = self._index.get(value)
        if found is None:
            found = self._index[value] = len(self.values)
            self.values.append(value)
        return found


Slot = tuple[int, int, str]
"""(view, height, block) a vote is for."""


@dataclass
class _NodeState:
    height: int = 1
    view: int = 0
    active: bool = True
    up: bool = True
    phase: str = "idle"
    committed: int = 0
    own_block: str | None = None
    prepares: dict[Slot, set[int]] = field(default_factory=dict)
    commits: dict[Slot, set[int]] = field(default_factory=dict)
    view_changes: dict[int, set[int]] = field(default_factory=dict)

    def count(self, votes: dict[Slot, set[int]]) -> int:
        """Matching votes for the current (view, height): for the node's own block once
        it voted, else for the block with most votes (what it would be prepared on)."""
        best = 0
        for (view, height, block), voters in votes.items():
            if view != self.view or height != self.height:
                continue
            if self.own_block is not None and block != self.own_block:
                continue
            best = max(best, len(voters))
        return best

    def asking(self) -> int:
        """ViewChanges held for the view this node is changing to (0 when active)."""
        if self.active:
            return 0
        return len(self.view_changes.get(self.view, ()))


def _delta(values: list[int]) -> list[int]:
    out, last = [], 0
    for v in values:
        out.append(v - last)
        last = v
    return out


class _Builder:
    """One pass over the records; :meth:`result` is the page's data."""

    def __init__(self, records: list[dict[str, Any]], header: dict[str, Any]) -> None:
        self.records = [
            r for r in records if isinstance(r.get("t"), int) and isinstance(r.get("ev"), str)
        ]
        self.header = header
        self.versioned = bool(header.get("nodes"))
        nodes_info = [n for n in header.get("nodes") or [] if isinstance(n, dict)]
        ids = {int(n["id"]) for n in nodes_info if isinstance(n.get("id"), int)}
        ids |= {
            int(r["node"])
            for r in self.records
            if isinstance(r.get("node"), int) and r["node"] >= 0
        }
        if not ids:
            raise TraceError("the trace has no node events: nothing to show")
        self.ids = sorted(ids)
        self.lane = {nid: i for i, nid in enumerate(self.ids)}
        by_id = {int(n["id"]): n for n in nodes_info if isinstance(n.get("id"), int)}
        self.lanes: list[dict[str, Any]] = []
        for nid in self.ids:
            n = by_id.get(nid, {})
            self.lanes.append(
                {
                    "id": nid,
                    "name": str(n.get("name") or f"node{nid}"),
                    "role": str(n.get("role") or "sealer"),
                    "behaviour": n.get("behaviour"),
                }
            )
        # legacy traces give the sender's run index in "from"; v1 gives the node id
        self.index_ids: dict[int, list[int]] = defaultdict(list)
        for nid in self.ids:
            index = by_id.get(nid, {}).get("index", nid)
            self.index_ids[int(index) if isinstance(index, int) else nid].append(nid)
        sealers = header.get("sealers")
        self.sealer_changes: list[tuple[int, list[int]]] = [
            (
                1,
                [int(x) for x in sealers]
                if isinstance(sealers, list) and sealers
                else [int(n["id"]) for n in self.lanes if n["role"] == "sealer"],
            )
        ]
        self.strings = Interner()
        self.proposal_label: dict[str, str] = {}
        self.labels_used: dict[int, int] = defaultdict(int)

    # -- helpers -------------------------------------------------------------------------

    def label(self, height: Any, digest: Any) -> str | None:
        """A short readable name for a proposal: its height and a letter (3A, 3B, ...)."""
        if not isinstance(digest, str):
            return None
        if digest not in self.proposal_label:
            h = height if isinstance(height, int) else 0
            k = self.labels_used[h]
            self.labels_used[h] += 1
            self.proposal_label[digest] = f"{h}{chr(ord('A') + k) if k < 26 else f'#{k}'}"
        return self.proposal_label[digest]

    def names(self, ids: Any) -> str:
        """Node names for a list of node ids (a phase record's voters)."""
        if not isinstance(ids, list):
            return "?"
        return ", ".join(
            self.lanes[self.lane[x]]["name"] if x in self.lane else str(x) for x in ids
        )

    def sealers_at(self, height: int) -> list[int]:
        current = self.sealer_changes[0][1]
        for h, s in self.sealer_changes:
            if h <= height:
                current = s
        return current

    def quorum_at(self, height: int) -> int:
        n = max(1, len(self.sealers_at(height)))
        return n - max_faulty(n)

    # -- the pass ------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        lane, strings, label = self.lane, self.strings, self.label
        records = self.records
        for r in records:
            if r["ev"] == "membership" and isinstance(r.get("height"), int):
                members = [int(x) for x in r.get("sealers", []) if isinstance(x, int)]
                if all(r["height"] != h for h, _ in self.sealer_changes):
                    self.sealer_changes.append((r["height"], members))
        self.sealer_changes.sort(key=lambda x: x[0])
        has_phase = any(r["ev"] == "phase" for r in records)
        has_timer = any(r["ev"] == "timer" for r in records)

        sends: dict[tuple[int, str, Any, Any], list[int]] = defaultdict(list)
        # the same sends by receiver: a NewView broadcast and a later copy sent to one
        # lagging peer share sender, type, view and height, and a receipt must not be
        # drawn as leaving with a copy addressed to someone else
        sends_to: dict[tuple[int, str, Any, Any, int], list[int]] = defaultdict(list)
        any_send: dict[int, list[int]] = defaultdict(list)
        for r in records:
            if r["ev"] in ("bcast", "send") and r.get("node") in lane:
                key = (r["node"], str(r.get("type")), r.get("view"), r.get("height"))
                sends[key].append(r["t"])
                to = r.get("to")
                for dst in to if isinstance(to, list) else [to]:
                    if isinstance(dst, int):
                        sends_to[(*key, dst)].append(r["t"])
                any_send[r["node"]].append(r["t"])

        def sender_of(r: dict[str, Any]) -> list[int]:
            src = r.get("from")
            if not isinstance(src, int):
                return []
            if self.versioned:
                return [src] if src in lane else []
            return [x for x in self.index_ids.get(src, [src]) if x in lane]

        # which sends each receiver already got: a node that receives the same NewView
        # twice (the broadcast, then a copy re-sent to it) got two sends, not one twice
        taken: dict[tuple[Any, ...], set[int]] = defaultdict(set)

        def unused(times: list[int], t: int, used: set[int]) -> int:
            """Index of the latest send at or before ``t`` this receiver has not had yet
            (else the earliest later one: a live clock; else the latest: a duplicate)."""
            last = bisect.bisect_right(times, t) - 1
            for j in itertools.chain(range(last, -1, -1), range(last + 1, len(times))):
                if j not in used:
                    return j
            return max(last, 0)

        def sent_at(r: dict[str, Any]) -> tuple[int, int]:
            """(sender lane, send time) of a receipt: the latest matching send before it
            that its receiver has not received yet (live clocks may put it a little
            after: then the earliest one)."""
            best: tuple[int, int] | None = None
            best_take: tuple[tuple[Any, ...], int] | None = None
            dst = r["node"]
            candidates = sender_of(r)
            for nid in candidates:
                key = (nid, str(r.get("type")), r.get("view"), r.get("height"))
                addressed = sends_to.get((*key, dst)) if self.versioned else None
                times = (
                    addressed
                    or sends.get(key)
                    or (any_send.get(nid) if r.get("type") == "garbage" else None)
                )
                if not times:
                    continue
                where = (*key, dst, addressed is not None)
                j = unused(times, r["t"], taken[where])
                t_sent = times[j]
                if best is None or (t_sent <= r["t"] and t_sent > best[1]):
                    best, best_take = (nid, t_sent), (where, j)
            if best is None or best_take is None:
                return (lane[candidates[0]] if candidates else -1), -1
            taken[best_take[0]].add(best_take[1])
            return lane[best[0]], min(best[1], r["t"])

        msg_rows: list[tuple[int, ...]] = []
        lost_rows: list[tuple[int, ...]] = []
        marks: list[tuple[int, int, int, int]] = []
        states = [_NodeState() for _ in self.ids]
        snap_keys = ("t", "n", "h", "v", "ph", "fl", "pc", "cc", "vc", "ch")
        snaps: dict[str, list[int]] = {k: [] for k in snap_keys}
        last: list[tuple[int, ...] | None] = [None] * len(self.ids)
        commits_by_height: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        first_commit: dict[int, dict[str, Any]] = {}
        block_proposal: dict[str, str] = {}
        txs_in: dict[str, int] = {}  # proposal digest -> transactions (execute records)
        new_views: list[dict[str, Any]] = []
        vc_sent: list[dict[str, Any]] = []
        timed_out: set[tuple[int, Any]] = set()  # (node, view it asked for) by its timer
        recv_at: set[tuple[int, int]] = set()
        pp_seen: dict[tuple[int, Any, Any], dict[str, set[int]]] = defaultdict(dict)
        equivocations: dict[tuple[int, Any, Any], dict[str, Any]] = {}
        vote_seen: dict[tuple[int, str, Any, Any], set[str]] = defaultdict(set)
        misbehaved: dict[int, set[str]] = defaultdict(set)
        signer_of: dict[int, int] = {}  # lane -> lane whose key signs (Twins share one)
        double_votes: dict[tuple[int, Any, Any], dict[str, Any]] = {}
        evidence: list[dict[str, Any]] = []
        garbage: dict[int, dict[str, int]] = {}
        vote_to: dict[tuple[int, str, Any, Any], list[tuple[int, str, int]]] = defaultdict(list)

        def double_vote(
            slot: tuple[int, Any, Any], t: int, ty: str, block: Any, to: set[int]
        ) -> None:
            d = double_votes.setdefault(slot, {"t": t, "types": set(), "blocks": {}})
            d["t"] = min(d["t"], t)
            d["types"].add(ty)
            d["blocks"].setdefault(str(block), set()).update(to)

        height_start: dict[int, int] = {1: records[0]["t"] if records else 0}
        end = 0

        def snapshot(i: int, t: int) -> None:
            s = states[i]
            row = (
                s.height,
                s.view,
                PHASES.index(s.phase),
                (1 if s.active else 0) | (2 if s.up else 0),
                s.count(s.prepares),
                s.count(s.commits),
                s.asking(),
                s.committed,
            )
            if row != last[i]:
                last[i] = row
                for key, value in zip(snap_keys, (t, i, *row), strict=True):
                    snaps[key].append(value)

        def mark(t: int, i: int, kind: str, detail: str | None = None) -> None:
            marks.append((t, i, MARKS.index(kind), strings(detail)))

        def vote(s: _NodeState, kind: str, voter: int, r: dict[str, Any]) -> None:
            votes = s.prepares if kind == "Prepare" else s.commits
            key = (int(r.get("view", 0)), int(r.get("height", 0)), str(r.get("block")))
            votes.setdefault(key, set()).add(voter)

        def extra(r: dict[str, Any]) -> int:
            skip = {
                "t",
                "ev",
                "node",
                "from",
                "to",
                "type",
                "view",
                "height",
                "proposal",
                "block",
                "sender",
            }
            rest = [f"{k}={r[k]}" for k in sorted(r) if k not in skip]
            return strings(", ".join(rest)) if rest else -1

        def message_row(
            ts: int, fl: int, src: int, dst: int, r: dict[str, Any], flags: int
        ) -> tuple[int, ...]:
            ty = str(r.get("type"))
            code = MESSAGE_TYPES.index(ty) if ty in MESSAGE_TYPES else len(MESSAGE_TYPES) - 1
            block = r.get("block")
            return (
                ts,
                fl,
                src,
                dst,
                code,
                int(r.get("view", -1)),
                int(r.get("height", -1)),
                strings(label(r.get("height"), r.get("proposal"))),
                strings(block if isinstance(block, str) else None),
                extra(r),
                flags,
            )

        for i in range(len(self.ids)):
            snapshot(i, 0)

        for r in records:
            t, ev = r["t"], r["ev"]
            end = max(end, t)
            nid = r.get("node")
            if nid not in lane:
                continue
            i = lane[nid]
            s = states[i]
            if ev == "state":
                h, v, active = (
                    int(r.get("height", s.height)),
                    int(r.get("view", s.view)),
                    bool(r.get("active", True)),
                )
                height_start.setdefault(h, t)
                if h != s.height:
                    s.phase, s.own_block = "idle", None
                if active and (v > s.view or not s.active):
                    mark(t, i, "newview", f"view {v} starts")
                if v > s.view and not active and not has_timer:
                    mark(t, i, "timeout", f"asks for view {v}")
                s.height, s.view, s.active = h, v, active
                if not active:
                    s.phase = "view-change"
                elif s.phase == "view-change":
                    s.phase = "idle"
            elif ev == "timer" and r.get("fired") == "view-change":
                # by view, not time: a live node stamps its ViewChange a few µs later
                timed_out.add((nid, r.get("view")))
                mark(t, i, "timeout", f"timer fired: asks for view {r.get('view')}")
            elif ev in ("bcast", "send"):
                ty = str(r.get("type"))
                if ty == "PrePrepare":
                    label(r.get("height"), r.get("proposal"))
                    if r.get("height") == s.height and s.phase == "idle":
                        s.phase = "pre-prepared"
                elif ty in ("Prepare", "Commit"):
                    if isinstance(r.get("block"), str) and isinstance(r.get("proposal"), str):
                        block_proposal.setdefault(r["block"], r["proposal"])
                    vote(s, ty, i, r)
                    if ty == "Prepare" and r.get("height") == s.height:
                        s.own_block = str(r.get("block"))
                elif ty == "ViewChange":
                    s.view_changes.setdefault(int(r.get("view", 0)), set()).add(i)
                    if ev == "bcast":
                        vc_sent.append(
                            {
                                "t": t,
                                "node": i,
                                "view": r.get("view"),
                                "height": r.get("height"),
                                "prepared": r.get("prepared"),
                                "timedOut": (nid, r.get("view")) in timed_out
                                if has_timer
                                else (nid, t) not in recv_at,
                            }
                        )
                elif ty == "NewView" and ev == "bcast":
                    new_views.append(
                        {
                            "t": t,
                            "leader": i,
                            "view": r.get("view"),
                            "height": r.get("height"),
                            "proofs": r.get("proofs"),
                            "proposal": label(r.get("height"), r.get("proposal")),
                            "reproposed": r.get("reproposed"),
                        }
                    )
            elif ev == "lost":
                dst = r.get("to")
                if dst in lane:
                    lost_rows.append(message_row(t, 0, i, lane[dst], r, FLAG_LOST))
            elif ev == "recv":
                recv_at.add((nid, t))
                src, ts = sent_at(r)
                flags = 0
                if ts < 0:
                    ts, flags = t, FLAG_UNPAIRED
                ty = str(r.get("type"))
                prop = r.get("proposal")
                signer = src
                if src >= 0 and isinstance(r.get("sender"), int) and r["sender"] in lane:
                    signer = signer_of[src] = lane[r["sender"]]
                if ty == "PrePrepare" and isinstance(prop, str) and src >= 0:
                    slot = (signer, r.get("view"), r.get("height"))
                    pp_seen[slot].setdefault(prop, set()).add(i)
                    if len(pp_seen[slot]) > 1:
                        flags |= FLAG_EQUIVOCATION
                        misbehaved[signer].add("equivocate")
                        equivocations.setdefault(slot, {"t": t})
                    if r.get("height") == s.height and s.phase == "idle":
                        s.phase = "pre-prepared"
                elif ty in ("Prepare", "Commit") and src >= 0:
                    key = (signer, ty, r.get("view"), r.get("height"))
                    vote_seen[key].add(str(r.get("block")))
                    vote_to[(signer, ty, r.get("view"), r.get("height"))].append(
                        (t, str(r.get("block")), i)
                    )
                    if len(vote_seen[key]) > 1:
                        flags |= FLAG_DOUBLE_VOTE
                        misbehaved[signer].add("double-vote")
                    vote(s, ty, src, r)
                elif ty == "ViewChange" and src >= 0:
                    s.view_changes.setdefault(int(r.get("view", 0)), set()).add(src)
                elif ty == "garbage" and src >= 0:
                    misbehaved[src].add("garbage")
                    g = garbage.setdefault(src, {"t": t, "count": 0})
                    g["count"] += 1
                msg_rows.append(message_row(ts, t - ts, src, i, r, flags))
            elif ev == "byzantine" and r.get("type") in ("Prepare", "Commit"):
                versions = [x for x in r.get("versions") or [] if isinstance(x, dict)]
                if len({x.get("block") for x in versions}) > 1:
                    for x in versions:
                        to = {lane[d] for d in x.get("to") or [] if d in lane}
                        double_vote(
                            (i, r.get("view"), r.get("height")),
                            t,
                            str(r.get("type")),
                            x.get("block"),
                            to,
                        )
            elif ev == "evidence" and r.get("against") in lane:
                evidence.append(
                    {
                        "t": t,
                        "holder": i,
                        "against": lane[r["against"]],
                        "type": r.get("type"),
                        "view": r.get("view"),
                        "height": r.get("height"),
                    }
                )
            elif ev == "byzantine" and r.get("type") == "PrePrepare":
                versions = [x for x in r.get("versions") or [] if isinstance(x, dict)]
                if len({x.get("proposal") for x in versions}) > 1:
                    slot = (i, r.get("view"), r.get("height"))
                    equivocations.setdefault(slot, {"t": t})["t"] = t
                    for x in versions:
                        targets = {lane[d] for d in x.get("to") or [] if d in lane}
                        label(r.get("height"), x.get("proposal"))
                        pp_seen[slot].setdefault(str(x.get("proposal")), set()).update(targets)
            elif ev == "execute":
                if isinstance(r.get("proposal"), str) and isinstance(r.get("txs"), int):
                    txs_in[r["proposal"]] = r["txs"]
                if r.get("height") == s.height and s.phase == "idle":
                    s.phase = "pre-prepared"
            elif ev == "executed":
                ok = bool(r.get("ok"))
                mark(
                    t,
                    i,
                    "executed" if ok else "invalid",
                    f"proposal {label(r.get('height'), r.get('proposal'))}",
                )
                if ok and r.get("height") == s.height and s.phase in ("idle", "pre-prepared"):
                    s.phase = "executed"
            elif ev == "phase" and r.get("phase") == "prepared":
                if r.get("height") == s.height and s.phase not in ("committed", "down"):
                    s.phase = "prepared"
                mark(
                    t,
                    i,
                    "prepared",
                    f"height {r.get('height')}, view {r.get('view')}: {r.get('votes')} "
                    f"matching Prepares, from {self.names(r.get('voters'))}",
                )
            elif ev == "persist_state" and not has_phase:
                prepared = r.get("prepared")
                if (
                    isinstance(prepared, list)
                    and len(prepared) == 2
                    and prepared[1] == s.height
                    and s.phase in ("idle", "pre-prepared", "executed")
                ):
                    s.phase = "prepared"
                    mark(t, i, "prepared", f"height {prepared[1]}, view {prepared[0]}")
            elif ev in ("commit", "synced"):
                h = int(r.get("height", 0))
                s.committed = max(s.committed, h)
                if h == s.height:
                    s.phase = "committed"
                mark(t, i, "committed" if ev == "commit" else "synced", f"height {h}")
                commits_by_height[h].append((t, i, 1 if ev == "synced" else 0))
                if h not in first_commit:
                    block = str(r.get("block"))
                    first_commit[h] = {
                        "t": t,
                        "block": block,
                        "view": r.get("view"),
                        "proposal": self.proposal_label.get(block_proposal.get(block, "")),
                    }
            elif ev in ("crash", "stop"):
                s.up, s.phase = False, "down"
                mark(t, i, ev)
            elif ev == "restart":
                s.up, s.phase = True, "idle"
                mark(t, i, "restart")
            elif ev == "membership":
                mark(
                    t, i, "membership", f"sealers from height {r.get('height')}: {r.get('sealers')}"
                )
            snapshot(i, t)

        # every version of a conflicting message is flagged, the first one sent included
        pp_code, vote_codes = (
            MESSAGE_TYPES.index("PrePrepare"),
            {MESSAGE_TYPES.index("Prepare"): "Prepare", MESSAGE_TYPES.index("Commit"): "Commit"},
        )
        double = {key for key, blocks in vote_seen.items() if len(blocks) > 1}
        for signer, ty, view, height in double:  # seen by the receivers (Twins, old traces)
            got = vote_to[(signer, ty, view, height)]
            first_conflict = min(t for t, b, _ in got if b != got[0][1])
            for _, block, dst in got:
                double_vote((signer, view, height), first_conflict, ty, block, {dst})

        def flagged(row: tuple[int, ...]) -> tuple[int, ...]:
            src, code, view, height = signer_of.get(row[2], row[2]), row[4], row[5], row[6]
            extra_flags = 0
            if code == pp_code and (src, view, height) in equivocations:
                extra_flags = FLAG_EQUIVOCATION
            elif code in vote_codes and (src, vote_codes[code], view, height) in double:
                extra_flags = FLAG_DOUBLE_VOTE
            return (*row[:10], row[10] | extra_flags)

        msg_rows = [flagged(row) for row in msg_rows]
        flights = [row[1] for row in msg_rows if not row[10] & FLAG_UNPAIRED]
        typical = int(median(flights)) if flights else 20_000
        msg_rows += [(row[0], typical, *row[2:]) for row in lost_rows]
        # by send time, then the copies of one send together (the log tells a broadcast
        # in one line), then by arrival
        msg_rows.sort(key=lambda row: (row[0], row[2], row[4], row[0] + row[1], row[3]))
        msg_keys = ("ts", "fl", "src", "dst", "ty", "v", "h", "p", "b", "x", "fg")
        msgs: dict[str, list[int]] = {k: [] for k in msg_keys}
        for row in msg_rows:
            for column, value in zip(msg_keys, row, strict=True):
                msgs[column].append(value)
        msgs["ts"] = _delta(msgs["ts"])
        marks.sort()
        for i, seen in misbehaved.items():
            if self.lanes[i]["behaviour"] is None:
                self.lanes[i]["behaviour"] = "/".join(sorted(seen)) + " (seen in the trace)"

        chain = []
        for h in sorted(first_commit):
            fc = first_commit[h]
            done = sorted(commits_by_height[h])
            chain.append(
                [
                    h,
                    fc["t"],
                    strings(fc["block"]),
                    fc["view"] if isinstance(fc["view"], int) else -1,
                    strings(fc["proposal"]),
                    [c[0] for c in done],
                    [c[1] for c in done],
                    [c[2] for c in done],
                    txs_in.get(block_proposal.get(fc["block"], ""), -1),
                ]
            )
        sealer_lanes = [[h, [lane[x] for x in s if x in lane]] for h, s in self.sealer_changes]
        return {
            "version": 1,
            "meta": {
                "lanes": self.lanes,
                "sealers": sealer_lanes,
                "f": max_faulty(max(1, len(self.sealer_changes[0][1]))),
                "seed": self.header.get("seed"),
                "source": self.header.get("source") or "sim",
                "clock": self.header.get("clock") or "virtual",
                "timeoutMs": self.header.get("timeout_ms"),
                "title": self.header.get("title"),
                "start": self.header["t"]
                if isinstance(self.header.get("t"), int)
                else (records[0]["t"] if records else 0),
                "end": end,
                "typicalFlight": typical,
            },
            "types": list(MESSAGE_TYPES),
            "phases": list(PHASES),
            "markKinds": list(MARKS),
            "strings": strings.values,
            "msgs": msgs,
            "snaps": snaps,
            "marks": [list(c) for c in zip(*marks, strict=True)] if marks else [[], [], [], []],
            "chain": chain,
            "newViews": new_views,
            "viewChangesSent": vc_sent,
            "equivocations": [
                {
                    "t": e["t"],
                    "leader": slot[0],
                    "view": slot[1],
                    "height": slot[2],
                    "groups": {label(slot[2], p): sorted(v) for p, v in pp_seen[slot].items()},
                }
                for slot, e in sorted(equivocations.items(), key=lambda x: x[1]["t"])
            ],
            "doubleVotes": [
                {
                    "t": d["t"],
                    "node": slot[0],
                    "view": slot[1],
                    "height": slot[2],
                    "types": [k for k in ("Prepare", "Commit") if k in d["types"]],
                    "blocks": {b[:8]: sorted(to) for b, to in sorted(d["blocks"].items())},
                }
                for slot, d in sorted(double_votes.items(), key=lambda x: x[1]["t"])
            ],
            "evidence": evidence,
            "garbage": [
                {"t": g["t"], "node": n, "count": g["count"]} for n, g in sorted(garbage.items())
            ],
            "quorums": [[h, self.quorum_at(h)] for h, _ in self.sealer_changes],
            "heights": [[h, t] for h, t in sorted(height_start.items())],
        }


def build(records: list[dict[str, Any]], header: dict[str, Any] | None = None) -> dict[str, Any]:
    """The page's data for time-ordered trace ``records`` and the trace's ``header``."""
    return _Builder(records, header or {}).result()
