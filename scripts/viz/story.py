"""Plain-language captions for what a trace shows: view changes, equivocations, crashes.

The page shows the caption whose interval holds the current instant, so a learner who
has never seen a view change reads, at the moment it happens, what it is and why it
happened in this run. Every sentence is built from the run's own facts (who timed out,
who led, how many votes), never from a fixed script.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any


def _list(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items) or "no node"
    return ", ".join(items[:-1]) + " and " + items[-1]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _leader_of(data: dict[str, Any], view: int, height: int, period: int) -> int | None:
    sealers: list[int] = data["meta"]["sealers"][0][1]
    for h, s in data["meta"]["sealers"]:
        if h <= height:
            sealers = s
    if not sealers:
        return None
    return int(sealers[(view + height // period) % len(sealers)])


def _quorum(data: dict[str, Any], height: int) -> int:
    q = int(data["quorums"][0][1])
    for h, value in data["quorums"]:
        if h <= height:
            q = int(value)
    return q


def _quorum_is(data: dict[str, Any], height: int) -> str:
    """The quorum at ``height`` with its formula: ``2f+1`` only when n = 3f + 1 (5 sealers
    tolerate f = 1 but need 4 votes, which is n - f, not 2f+1)."""
    sealers: list[int] = data["meta"]["sealers"][0][1]
    for h, members in data["meta"]["sealers"]:
        if h <= height:
            sealers = members
    q, n = _quorum(data, height), len(sealers)
    return f"{q} = 2f+1" if n == 3 * ((n - 1) // 3) + 1 else f"{q} = n - f"


def captions(data: dict[str, Any], leader_period: int = 1) -> list[dict[str, Any]]:
    """Captions as ``{t0, t1, kind, title, text}``, sorted by start time."""
    meta = data["meta"]
    f = meta["f"]
    lanes = meta["lanes"]

    def name(i: int | None) -> str:
        return str(lanes[i]["name"]) if i is not None and 0 <= i < len(lanes) else "?"

    def names(nodes: list[int] | set[int]) -> str:
        return _list([name(i) for i in sorted(nodes)])

    notes: list[dict[str, Any]] = []
    committed_in = {row[0]: row[3] for row in data["chain"]}
    commit_time = {row[0]: row[1] for row in data["chain"]}
    down_at: dict[int, list[tuple[int, int]]] = defaultdict(list)
    kinds = data["markKinds"]
    times, mnodes, mkinds, _ = data["marks"]
    crash_started: dict[int, int] = {}
    for t, node, k in zip(times, mnodes, mkinds, strict=True):
        if kinds[k] in ("crash", "stop"):
            crash_started.setdefault(node, t)
        elif kinds[k] == "restart" and node in crash_started:
            down_at[node].append((crash_started.pop(node), t))
    for node, t in crash_started.items():
        down_at[node].append((t, meta["end"] + 1))

    chain_rows = {row[0]: row for row in data["chain"]}

    def committed_by(height: int, t: int) -> set[int]:
        """Nodes that had committed ``height`` (by consensus, not sync) before ``t``."""
        row = chain_rows.get(height)
        if row is None:
            return set()
        return {
            n for tc, n, synced in zip(row[5], row[6], row[7], strict=True) if tc < t and not synced
        }

    def crashed_before(t: int) -> set[int]:
        """Nodes with a crash before ``t`` (a live node's first start is no restart)."""
        return {n for n, spans in down_at.items() if any(a < t for a, _ in spans)}

    def is_down(node: int | None, t: int) -> bool:
        return node is not None and any(a <= t < b for a, b in down_at.get(node, []))

    # -- equivocations -----------------------------------------------------------------
    for e in data["equivocations"]:
        view, height, leader = e["view"], e["height"], e["leader"]
        groups = e["groups"]
        parts = "; ".join(f"proposal {p} to {names(nodes)}" for p, nodes in sorted(groups.items()))
        q = _quorum_is(data, height)
        how = (
            "it runs as two copies with one key (Twins), and they sent"
            if lanes[leader]["behaviour"] == "twins"
            else "it sent"
        )
        if committed_in.get(height) == view:
            outcome = (
                f"One proposal still reached {q} matching Prepares and committed: "
                "the nodes that got the other one could not vote for it and fetch the "
                "committed block later. No honest node ever commits two different blocks."
            )
        else:
            outcome = (
                f"Honest nodes vote only for the proposal they received and executed, so "
                f"neither proposal can gather {q} matching Prepares: nobody commits in "
                f"view {view}. The nodes' timers run out and they replace the leader by a "
                "view change. The chain never forks."
            )
        end = next(
            (
                vc["t"]
                for vc in data["viewChangesSent"]
                if vc["height"] == height and vc["view"] == view + 1
            ),
            commit_time.get(height, e["t"] + 200_000),
        )
        notes.append(
            {
                "t0": e["t"],
                "t1": end,
                "kind": "equivocation",
                "title": f"Byzantine equivocation by {name(leader)}",
                "text": f"{name(leader)} leads height {height} in view {view} and is Byzantine: "
                f"{how} DIFFERENT proposals for the same slot ({parts}). {outcome}",
            }
        )

    # -- double votes and garbage ------------------------------------------------------
    caught = defaultdict(set)
    for ev in data.get("evidence", []):
        caught[(ev["against"], ev["view"], ev["height"])].add(ev["holder"])
    for d in data.get("doubleVotes", []):
        node, view, height = d["node"], d["view"], d["height"]
        q = _quorum_is(data, height)
        parts = "; ".join(f"block {b} to {names(to)}" for b, to in d["blocks"].items())
        kinds = " and ".join(f"{k}s" for k in d["types"])
        holders = caught.get((node, view, height))
        evidence = (
            f" {names(holders)} received both and kept them as evidence against {name(node)}."
            if holders
            else ""
        )
        notes.append(
            {
                "t0": d["t"],
                "t1": d["t"] + 150_000,
                "kind": "equivocation",
                "title": f"Byzantine double vote by {name(node)}",
                "text": f"{name(node)} is Byzantine: at height {height} in view {view} it sent "
                f"{kinds} for DIFFERENT blocks ({parts}).{evidence} An honest node counts one "
                f"vote per signer and slot, and any two quorums of {q} share at least "
                f"f+1 = {f + 1} nodes, one of them honest, so a double vote cannot make two "
                "blocks commit.",
            }
        )
    for g in data.get("garbage", []):
        notes.append(
            {
                "t0": g["t"],
                "t1": g["t"] + 150_000,
                "kind": "fault",
                "title": f"{name(g['node'])} sends garbage",
                "text": f"{name(g['node'])} sends bytes that are no valid message "
                f"({g['count']} in this run, grey lines): every node drops and counts them, "
                "and consensus goes on with the valid messages.",
            }
        )

    # -- view changes ------------------------------------------------------------------
    by_view: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for vc in data["viewChangesSent"]:
        if isinstance(vc["view"], int):
            by_view[vc["view"]].append(vc)
    new_views = {nv["view"]: nv for nv in data["newViews"]}
    for view in sorted(by_view):
        sent = sorted(by_view[view], key=lambda x: x["t"])
        t0 = sent[0]["t"]
        height = int(sent[0]["height"] or 0)
        old = view - 1
        old_leader = _leader_of(data, old, height, leader_period)
        timed_out = sorted({x["node"] for x in sent if x["timedOut"]})
        joined = sorted({x["node"] for x in sent if not x["timedOut"]} - set(timed_out))
        why = f"height {height} did not commit in view {old} before the consensus timeout"
        done = sorted(committed_by(height, t0))
        if done:
            why = (
                f"{names(done)} committed height {height} in view {old}, but the other nodes "
                "did not gather a quorum of Commits before the consensus timeout"
            )
        elif old_leader is not None and is_down(old_leader, t0):
            why += f": its leader, {name(old_leader)}, is down"
        elif any(e["view"] == old and e["height"] == height for e in data["equivocations"]):
            why += f": its leader, {name(old_leader)}, equivocated"
        elif old_leader is not None:
            why += f" (leader: {name(old_leader)})"
        text = (
            f"A VIEW CHANGE replaces the leader. {_upper_first(why)}. "
            f"{_upper_first(names(timed_out))} timed out and broadcast ViewChange for view {view}"
        )
        if joined:
            text += f"; {names(joined)} joined once f+1 = {f + 1} nodes had asked"
        text += "."
        nv = new_views.get(view)
        t1 = t0 + 200_000
        if nv is not None:
            q = _quorum_is(data, int(nv["height"] or height))
            if nv["proposal"]:
                carried = (
                    f"a ViewChange carried a prepared certificate, so it re-proposes that "
                    f"block ({nv['proposal']}): a block that may have committed is never lost"
                )
            else:
                carried = "no ViewChange carried a prepared block, so it proposes afresh"
            text += (
                f" The new leader, {name(nv['leader'])}, collected {nv['proofs']} ViewChanges "
                f"(a quorum is {q}) and broadcast NewView: {carried}. View {view} begins."
            )
            t1 = nv["t"] + 60_000
        else:
            text += " No NewView for this view is in the trace (the view changed again)."
        notes.append(
            {
                "t0": t0,
                "t1": t1,
                "kind": "view-change",
                "title": f"View change: view {old} -> view {view}",
                "text": text,
            }
        )

    # -- crashes, restarts, syncs, membership -----------------------------------------
    strings = data["strings"]
    told: set[tuple[str, int]] = set()
    for t, node, k, detail in zip(*data["marks"], strict=True):
        kind = kinds[k]
        if kind == "membership":
            if (kind, detail) in told:
                continue
            told.add((kind, detail))
        if kind == "crash":
            notes.append(
                {
                    "t0": t,
                    "t1": t + 150_000,
                    "kind": "fault",
                    "title": f"{name(node)} crashes",
                    "text": f"{name(node)} stops: it sends and receives nothing until it "
                    "restarts. With f = "
                    f"{f}, the other nodes can go on without it.",
                }
            )
        elif kind == "stop":
            notes.append(
                {
                    "t0": t,
                    "t1": t + 150_000,
                    "kind": "fault",
                    "title": f"{name(node)} is stopped",
                    "text": f"{name(node)} was stopped cleanly (ledgerlab stop-node or down): "
                    "it sends and receives nothing until it starts again. With f = "
                    f"{f}, the other nodes can go on without it.",
                }
            )
        elif kind == "restart" and node in crashed_before(t):
            notes.append(
                {
                    "t0": t,
                    "t1": t + 150_000,
                    "kind": "fault",
                    "title": f"{name(node)} restarts",
                    "text": f"{name(node)} is back with what it had persisted (its view "
                    "and prepared certificate); it catches up on the blocks it missed.",
                }
            )
        elif kind == "synced":
            last = notes[-1] if notes else None
            if last is not None and last["kind"] == "sync" and last["key"] == (node, t):
                last["heights"].append(strings[detail])
            else:
                notes.append(
                    {
                        "t0": t,
                        "t1": t + 150_000,
                        "kind": "sync",
                        "key": (node, t),
                        "node": node,
                        "heights": [strings[detail]],
                    }
                )
        elif kind == "membership":
            notes.append(
                {
                    "t0": t,
                    "t1": t + 150_000,
                    "kind": "membership",
                    "title": "The sealer list changes",
                    "text": f"A committed governance transaction changed the sealers "
                    f"({strings[detail]}); quorum and leader order follow the new list.",
                }
            )
    for note in notes:
        if note["kind"] == "sync":
            node, got = note.pop("node"), note.pop("heights")
            del note["key"]
            what = (
                got[0]
                if len(got) == 1
                else f"heights {got[0].split()[-1]} to {got[-1].split()[-1]}"
            )
            note["title"] = f"{name(node)} catches up by block sync"
            note["text"] = (
                f"{name(node)} was behind and fetched {what} from a peer. It accepts a block "
                "only with a quorum of valid Commit signatures of its height's sealers (the "
                "seal), so it needs no trust in the peer that sent it."
            )
    for note in notes:  # sentences start with a capital, node names included
        note["text"] = _upper_first(note["text"])
    notes.sort(key=lambda n: (n["t0"], n["kind"]))
    return notes
