"""What `ledgerlab explain` tells: the records of one height or one view change.

:func:`height_story` and :func:`view_change_story` select the records of a trace
(docs/trace-format.md) that concern a height or a view, have a
:class:`~scripts.trace.teller.Teller` turn each into a step with the reason for it, and
add a summary (who decided what in which view, a vote split, who synced). The diagram
itself is drawn by ``scripts/trace/diagram.py``.
"""

from __future__ import annotations

from scripts.trace.teller import Record, Step, Story, Teller

__all__ = ["Record", "Step", "Story", "height_story", "view_change_story", "view_changes"]

_ABOUT_HEIGHT = {
    "recv",
    "lost",
    "bcast",
    "phase",
    "executed",
    "timer",
    "commit",
    "synced",
    "byzantine",
    "evidence",
}


def _lanes(header: Record) -> list[tuple[int, str]]:
    return [(n["id"], n["name"]) for n in header["nodes"]]


def height_story(header: Record, records: list[Record], height: int) -> Story:
    """Everything that decided ``height``: proposals, votes, phases, view changes,
    Byzantine acts, losses and syncs of that height, and who was where."""
    teller = Teller(header)
    at: dict[int, int] = {}
    syncing = {r["node"] for r in records if r["ev"] == "synced" and r["height"] == height}
    for rec in records:
        ev = rec["ev"]
        node = rec.get("node", -1)
        if ev == "state":
            was = at.get(node)
            at[node] = rec["height"]
            if height in (was, rec["height"]):
                teller.tell(rec)
            teller.note_state(rec)
            continue
        if ev in ("crash", "stop", "restart", "membership", "request_sync"):
            if _node_event_concerns(rec, at.get(node, 1), height, node in syncing):
                teller.tell(rec)
        elif ev in _ABOUT_HEIGHT and rec.get("height") == height:
            teller.tell(rec)
    story = Story(f"height {height}, step by step", _lanes(header), teller.steps)
    story.summary = _height_summary(teller, records, height)
    return story


def _node_event_concerns(rec: Record, at: int, height: int, syncs_it: bool) -> bool:
    """Whether a crash, restart, sync request or membership change of a node now at
    height ``at`` belongs to the story of ``height``."""
    ev = rec["ev"]
    if at == height or (ev == "membership" and rec["height"] == height):
        return True
    if ev in ("crash", "stop", "restart"):
        return syncs_it and at <= height
    return ev == "request_sync" and int(rec.get("target", 0)) >= height >= at


def _height_summary(teller: Teller, records: list[Record], height: int) -> list[str]:
    committed = teller.committed.get(height, {})
    synced = sorted({r["node"] for r in records if r["ev"] == "synced" and r["height"] == height})
    if not committed and not synced:
        return [f"height {height} was not decided in this trace"]
    lines = []
    if committed:
        first = min(committed.values(), key=lambda r: r["t"])
        lines.append(
            f"height {height} was decided in view {first['view']}: block {first.get('block')}, "
            f"committed by {teller.names_of(sorted(committed))}"
        )
    if synced:
        lines.append(f"fetched by block sync: {teller.names_of(synced)}")
    lines += _vote_split(teller, records, height)
    views = sorted(
        {
            r["view"]
            for r in records
            if r["ev"] == "timer" and r["fired"] == "view-change" and r["height"] == height
        }
    )
    if views:
        lines.append(f"view changes at this height: to view {', '.join(map(str, views))}")
    return lines


def _vote_split(teller: Teller, records: list[Record], height: int) -> list[str]:
    """Per view where the Prepares of ``height`` disagreed: which block got whose vote."""
    votes: dict[int, dict[str, set[int]]] = {}
    for r in records:
        if r["ev"] == "bcast" and r.get("type") == "Prepare" and r["height"] == height:
            votes.setdefault(r["view"], {}).setdefault(r.get("block", "?"), set()).add(r["node"])
    for r in records:  # what Byzantine nodes really sent
        if r["ev"] == "byzantine" and r.get("type") == "Prepare" and r["height"] == height:
            for v in r.get("versions", []):
                votes.setdefault(r["view"], {}).setdefault(v.get("block", "?"), set()).add(
                    r["node"]
                )
    lines = []
    for view, blocks in sorted(votes.items()):
        if len(blocks) > 1:
            split = "; ".join(
                f"block {b} from {teller.names_of(sorted(who))}"
                for b, who in sorted(blocks.items())
            )
            lines.append(f"Prepares in view {view} split: {split}")
    return lines


def view_changes(records: list[Record]) -> list[int]:
    """The views that some node moved to (each a view change), in order."""
    return sorted(
        {r["view"] for r in records if r["ev"] == "state" and not r["active"] and r["view"] > 0}
    )


def view_change_story(header: Record, records: list[Record], view: int) -> Story:
    """The change to ``view``: timers, ViewChanges, the NewView and its proposal, and the
    first height decided in the new view."""
    teller = Teller(header)
    nv_height = next(
        (
            r["height"]
            for r in records
            if r["ev"] == "bcast" and r.get("type") == "NewView" and r["view"] == view
        ),
        None,
    )
    for rec in records:
        ev = rec["ev"]
        if rec.get("view") != view:
            if ev in ("crash", "stop", "restart"):
                teller.tell(rec)
        else:
            about_view = ev in ("timer", "state") or rec.get("type") in ("ViewChange", "NewView")
            if about_view or (rec.get("height") == nv_height and ev in _ABOUT_HEIGHT):
                teller.tell(rec)
        if ev == "state":
            teller.note_state(rec)
    story = Story(f"view change to view {view}, step by step", _lanes(header), teller.steps)
    if nv_height is None:
        story.summary = [f"no node sent a NewView for view {view} in this trace"]
    else:
        committed = teller.committed.get(nv_height, {})
        story.summary = [f"view {view} became active at height {nv_height} with a NewView"]
        if committed:
            story.summary.append(
                f"height {nv_height} was then decided in view {view}, committed by "
                f"{teller.names_of(sorted(committed))}"
            )
    return story
