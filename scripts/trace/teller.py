"""Why each step of a PBFT run happened: one trace record -> one diagram step and its note.

:class:`Teller` turns records of a trace (docs/trace-format.md) into :class:`Step` rows
of the sequence diagram: an arrow (a message delivered, or lost) or a mark on one node's
lane (a phase reached, a timer, a commit, a sync, a Byzantine act), with a plain-language
note of why, given in full once and briefly after. Which records make the story of a
height or of a view change is ``scripts/trace/story.py``'s business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class Step:
    """One row of the diagram."""

    t: int
    """µs since the start of the trace."""
    kind: str
    """``arrow`` (src -> dst), ``lost`` (src -x dst) or ``mark`` (on src's lane)."""
    src: int
    dst: int | None
    label: str
    style: str = ""
    note: str = ""


@dataclass
class Story:
    title: str
    lanes: list[tuple[int, str]]
    """(node id, name) per lane, left to right."""
    steps: list[Step] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


WHY_PREPARED = (
    "it saves the certificate before sending Commit, because a node that crashed after "
    "voting must not vote differently when it returns"
)
WHY_SEAL = (
    "those Commit signatures are the block's seal: anyone with the sealer list can check "
    "later that a quorum decided it (block sync does)"
)
WHY_QUORUM = (
    "any two quorums (n - f of the n sealers; 2f+1 of 3f+1) share at least f+1 nodes, one of "
    "them honest, and an honest node signs one Prepare per view and height: two different "
    "blocks can never both gather a quorum"
)


def quorum_count(votes: int, n: int) -> str:
    """``3 = 2f+1`` when ``votes`` is the quorum of ``n = 3f+1`` sealers, ``4 = n - f``
    for other sizes, the plain number when it is not the quorum."""
    f = (n - 1) // 3
    if votes != n - f:
        return f"{votes} (a quorum is {n - f})"
    return f"{votes} = 2f+1" if n == 3 * f + 1 else f"{votes} = n - f (n = {n}, f = {f})"


class Teller:
    """Turns records into steps, remembering what was already explained in full."""

    def __init__(self, header: Record) -> None:
        self.names = {n["id"]: n["name"] for n in header["nodes"]}
        self.byzantine = {
            n["id"] for n in header["nodes"] if n.get("behaviour") not in (None, "crash")
        }
        """Nodes the header marks faulty: what they propose is not what they may send."""
        self.t0 = int(header.get("t", 0))
        self.told: set[str] = set()
        self.steps: list[Step] = []
        self.committed: dict[int, dict[int, Record]] = {}
        self.n = len(header["sealers"])
        """Sealers in force (the header's, then each membership record's)."""
        self.view_of: dict[int, tuple[int, bool]] = {}
        self.timed_out: set[tuple[int, int]] = set()
        """(node, view) whose own timer moved it to the view."""
        self.new_views: dict[tuple[int, int], Record] = {}
        """(node, view) -> the NewView that node received or sent for the view."""

    # -- helpers ----------------------------------------------------------------------

    def name(self, node: Any) -> str:
        if isinstance(node, int) and node in self.names:
            return str(self.names[node])
        return f"node ?{node}"

    def names_of(self, nodes: Iterable[int]) -> str:
        return ", ".join(self.name(n) for n in nodes) or "nobody"

    def first(self, key: str) -> bool:
        """True the first time ``key`` is asked: the long explanation is given once."""
        if key in self.told:
            return False
        self.told.add(key)
        return True

    def add(self, rec: Record, kind: str, src: int, dst: int | None, label: str, **kw: Any) -> None:
        self.steps.append(Step(rec["t"] - self.t0, kind, src, dst, label, **kw))

    @staticmethod
    def msg_label(rec: Record) -> str:
        typ = rec.get("type", "?")
        text = f"{typ} v{rec.get('view')}"
        if typ in ("PrePrepare", "NewView") and rec.get("proposal"):
            text += f" {rec['proposal'][:6]}"
        elif typ in ("Prepare", "Commit"):
            text += f" {rec.get('block', '')[:6]}"
        elif typ == "ViewChange":
            p = rec.get("prepared")
            text += " no cert" if p is None else f" cert v{p}"
        return text

    # -- one record -------------------------------------------------------------------

    def tell(self, rec: Record) -> None:
        ev = rec["ev"]
        method = getattr(self, f"_{ev}", None)
        if method is not None:
            method(rec)

    def _recv(self, rec: Record) -> None:
        src = rec.get("from")
        typ = rec.get("type")
        note = ""
        if typ == "ViewChange" and self.first(f"vc-recv-{rec['view']}"):
            note = (
                f"a ViewChange asks for view {rec['view']}; a node that sees f+1 of them "
                "joins (at least one is honest), the new leader waits for a quorum"
            )
        elif typ == "Prepare" and self.first(f"prepare-{rec['height']}-{rec['view']}"):
            note = (
                f"a Prepare is {self.name(rec.get('sender'))}'s vote: this proposal, executed "
                f"on this parent, gives block {rec.get('block')}; a node counts the Prepares "
                "that match its own execution"
            )
        elif typ == "Commit" and self.first(f"commit-{rec['height']}-{rec['view']}"):
            note = (
                f"a Commit says that {self.name(rec.get('sender'))} is prepared: it holds "
                "a quorum of matching Prepares for this block and has saved them"
            )
        if typ == "NewView":
            self.new_views.setdefault((rec["node"], rec["view"]), rec)
        style = _STYLES.get(str(typ), "")
        self.add(
            rec,
            "arrow",
            src if isinstance(src, int) else -1,
            rec["node"],
            self.msg_label(rec),
            style=style,
            note=note,
        )

    def _lost(self, rec: Record) -> None:
        why = {
            "partition": "cut off by a partition",
            "loss": "lost by the network",
            "rule": "dropped by the scenario's drop rule",
            "down": f"{self.name(rec['to'])} is down",
        }.get(rec.get("why", ""), rec.get("why", ""))
        label = f"{self.msg_label(rec)} ✗ {rec.get('why', '')}"
        note = ""
        if self.first(f"lost-{rec.get('why')}-{rec.get('type')}"):
            note = f"this {rec.get('type')} never arrives: {why}"
        self.add(rec, "lost", rec["node"], rec["to"], label, style="red", note=note)

    def _bcast(self, rec: Record) -> None:
        typ = rec.get("type")
        node = rec["node"]
        if typ == "PrePrepare":
            note = ""
            if self.first(f"pp-{rec['height']}-{rec['view']}-{node}"):
                note = (
                    f"{self.name(node)} leads view {rec['view']} at height {rec['height']}: it "
                    f"proposes block {rec.get('proposal')} to everyone"
                )
                if node in self.byzantine:  # its replica asked for this; see what went out
                    note = (
                        f"{self.name(node)} leads view {rec['view']} at height "
                        f"{rec['height']}: its replica proposes block {rec.get('proposal')}, "
                        "but it is faulty and may send everyone something else"
                    )
            self.add(
                rec,
                "mark",
                node,
                None,
                f"proposes {rec.get('proposal', '')[:6]}",
                style="bold cyan",
                note=note,
            )
        elif typ == "NewView":
            self.new_views.setdefault((node, rec["view"]), rec)
            self._new_view(rec)

    def _new_view(self, rec: Record) -> None:
        node = rec["node"]
        proofs = rec.get("proof_from", [])
        prepared = [v for v in rec.get("proof_prepared", []) if v is not None]
        head = (
            f"{self.name(node)} leads view {rec['view']} at height {rec['height']}: it holds "
            f"{quorum_count(len(proofs), self.n)} ViewChanges (from {self.names_of(proofs)}) "
            "and broadcasts "
            "them as a NewView. "
        )
        if rec.get("reproposed") is not None:
            why = (
                f"{len(prepared)} of them carry a certificate prepared in view "
                f"{max(prepared)}, so the NewView must re-propose that block "
                f"({rec.get('proposal')}) instead of a new one: it may already be committed "
                "somewhere, and any quorum of ViewChanges includes an honest node that "
                "prepared it"
            )
        elif rec.get("proposal") is None:
            why = (
                f"none carries a prepared certificate for height {rec['height']}, so nothing "
                "can have been committed there: the new leader proposes afresh"
            )
        else:
            why = f"it carries proposal {rec.get('proposal')}"
        self.add(
            rec,
            "mark",
            node,
            None,
            f"NewView v{rec['view']}",
            style="bold magenta",
            note=head + why,
        )

    def _phase(self, rec: Record) -> None:
        node, h, v = rec["node"], rec["height"], rec["view"]
        phase = rec["phase"]
        if phase == "pre-prepared":
            note = ""
            if rec.get("leader") == node:
                note = ""
            elif self.first(f"pre-{h}-{v}-{rec['proposal']}"):
                note = (
                    f"{self.name(node)} accepts {self.name(rec.get('leader'))}'s proposal "
                    f"{rec['proposal']}: it comes from the leader of view {v} at height {h} "
                    "and extends its head; it executes it before voting (FISCO BCOS executes, "
                    "then votes on the result)"
                )
            self.add(rec, "mark", node, None, "pre-prepared", style="cyan", note=note)
            return
        votes, voters = rec.get("votes", 0), rec.get("voters", [])
        count = quorum_count(votes, rec.get("n", self.n))
        if phase == "prepared":
            if self.first(f"prepared-{h}-{v}"):
                note = (
                    f"{self.name(node)} now holds {count} matching Prepares (from "
                    f"{self.names_of(voters)}), so it is prepared; {WHY_PREPARED}"
                )
            else:
                note = (
                    f"{self.name(node)} is prepared too ({count} Prepares: {self.names_of(voters)})"
                )
            self.add(rec, "mark", node, None, "PREPARED", style="bold yellow", note=note)
        elif phase == "committed":
            self.committed.setdefault(h, {})[node] = rec
            if self.first(f"committed-{h}"):
                note = (
                    f"{self.name(node)} holds {count} Commits (from {self.names_of(voters)}) "
                    f"for the block it prepared: height {h} is decided, block {rec.get('block')}; "
                    f"{WHY_SEAL}"
                )
            else:
                note = f"{self.name(node)} commits too ({count} Commits: {self.names_of(voters)})"
            self.add(rec, "mark", node, None, "COMMITTED", style="bold green", note=note)

    def _executed(self, rec: Record) -> None:
        if rec.get("ok"):
            if self.first(f"exec-{rec['height']}-{rec['proposal']}"):
                note = (
                    "executed; its Prepare says: this proposal, on this parent, gives this block "
                    "hash and state root"
                )
            else:
                note = ""
            self.add(rec, "mark", rec["node"], None, "executed → Prepare", style="dim", note=note)
        else:
            self.add(
                rec,
                "mark",
                rec["node"],
                None,
                "INVALID",
                style="bold red",
                note=f"{self.name(rec['node'])} found proposal {rec['proposal']} invalid: no vote",
            )

    def _timer(self, rec: Record) -> None:
        node, fired = rec["node"], rec["fired"]
        if fired == "view-change":
            self.timed_out.add((node, rec["view"]))
            if self.first(f"timeout-{rec['view']}"):
                note = (
                    f"{self.name(node)}'s timer fired: nothing was decided in time, so it "
                    f"suspects the leader and moves to view {rec['view']}; it saves the new view "
                    "first (it promises never to act in a lower one) and broadcasts a "
                    "ViewChange with its highest prepared certificate"
                )
            else:
                note = f"{self.name(node)}'s timer fired too: it moves to view {rec['view']}"
            label = f"timeout → view {rec['view']}"
        elif fired == "resend":
            note = (
                "still no NewView: it says its ViewChange again"
                if self.first(f"resend-{node}")
                else ""
            )
            label = "timeout: resend ViewChange"
        else:
            note = ""
            label = f"timer: {fired}"
        self.add(rec, "mark", node, None, label, style="yellow", note=note)

    def note_state(self, rec: Record) -> None:
        """Remember every node's (view, active), told or not: a ``state`` record is a view
        change only if one of them changed."""
        self.view_of[rec["node"]] = (rec["view"], rec["active"])

    def _state(self, rec: Record) -> None:
        if self.view_of.get(rec["node"]) == (rec["view"], rec["active"]):
            return  # only the height changed: nothing to say about views
        if rec.get("active") and self.first(f"active-{rec['node']}-{rec['view']}"):
            if rec["view"] > 0:
                nv = self.new_views.get((rec["node"], rec["view"]))
                who = self.name(rec["node"])
                if nv is None:  # the new leader: its own NewView follows
                    note = f"{who} starts view {rec['view']} with its own NewView"
                else:
                    note = f"{who} accepted the NewView: it votes in view {rec['view']} again"
                nv_h, own_h = (nv or {}).get("height"), rec.get("height")
                if isinstance(nv_h, int) and isinstance(own_h, int) and own_h > nv_h:
                    # already past the NewView's height (it committed it in the old view):
                    # the NewView only moves it to the new view, it votes on its own height
                    note += (
                        f", at height {own_h}: it had already committed height {nv_h}, so "
                        "the NewView's proposal is not for it"
                    )
                elif nv is not None and nv.get("reproposed") is not None:
                    note += (
                        f"; the NewView's proposal {nv.get('proposal')} (prepared in view "
                        f"{nv['reproposed']}) is the proposal of view {rec['view']} at height "
                        f"{nv['height']}, so it votes for that same block again"
                    )
                elif nv is not None and nv.get("proposal") is None:
                    note += "; the new leader will propose afresh with a PrePrepare"
                self.add(
                    rec,
                    "mark",
                    rec["node"],
                    None,
                    f"view {rec['view']} active",
                    style="magenta",
                    note=note,
                )
        elif not rec.get("active") and self.first(f"waiting-{rec['node']}-{rec['view']}"):
            note = ""
            if (rec["node"], rec["view"]) not in self.timed_out:
                note = (
                    f"{self.name(rec['node'])} joins view {rec['view']} without a timeout of "
                    f"its own: f+1 nodes asked for it, so at least one honest node did"
                )
            self.add(
                rec,
                "mark",
                rec["node"],
                None,
                f"in view change → {rec['view']}",
                style="yellow",
                note=note,
            )

    def _commit(self, rec: Record) -> None:
        self.add(rec, "mark", rec["node"], None, f"stores block {rec['block'][:6]}", style="green")

    def _synced(self, rec: Record) -> None:
        node = rec["node"]
        src = rec.get("from", -1)
        known = isinstance(src, int) and src >= 0
        source = f" from {self.name(src)}" if known else ""
        note = (
            f"{self.name(node)} fetched block {rec['height']}{source} by block sync: it casts "
            f"no vote of its own, it checks the seal ({rec.get('votes')} Commit signatures of "
            f"view {rec.get('view')}, a quorum of the sealers) and re-executes the block to the "
            "same hash; a quorum certificate proves the block was decided"
        )
        label = f"block {rec['height']} by sync"
        if known:  # an arrow from the peer it came from
            self.add(rec, "arrow", src, node, label, style="bold blue", note=note)
        else:
            self.add(rec, "mark", node, None, label, style="bold blue", note=note)

    def _request_sync(self, rec: Record) -> None:
        node = rec["node"]
        if self.first(f"req-{node}-{rec.get('target')}"):
            note = (
                f"{self.name(node)} learns that peers ({self.names_of(rec.get('peers', []))}) "
                f"are ahead, up to height {rec.get('target')}: it fetches the blocks it missed"
            )
            self.add(rec, "mark", node, None, "behind: request sync", style="blue", note=note)

    def _byzantine(self, rec: Record) -> None:
        node = rec["node"]
        versions = rec.get("versions", [])
        parts = []
        for v in versions:
            what = v.get("proposal") if rec["type"] == "PrePrepare" else v.get("block")
            tag = "the honest one" if v.get("honest") else "another"
            parts.append(f"{tag} ({what}) to {self.names_of(v.get('to', []))}")
        if rec.get("withheld"):
            parts.append(f"nothing to {self.names_of(rec['withheld'])}")
        kind = rec.get("behaviour")
        if kind == "equivocate" and rec["type"] == "PrePrepare":
            lead = (
                f"{self.name(node)} EQUIVOCATES: as leader of view {rec['view']} at height "
                f"{rec['height']} it signs two different proposals: "
            )
            tail = (
                ". Honest nodes vote only for what they received, and at most one proposal "
                f"can prepare: {WHY_QUORUM}"
            )
        else:
            lead = f"{self.name(node)} (Byzantine: {kind}) sends {rec['type']} v{rec['view']}: "
            tail = ""
            if kind == "double-vote":
                tail = (
                    ". A vote for a block that no honest node executed to matches nobody's "
                    "result, so it counts for nothing; a node that gets both versions holds "
                    "proof of the double vote"
                )
        self.add(
            rec,
            "mark",
            node,
            None,
            f"BYZANTINE {kind}",
            style="bold red",
            note=lead + "; ".join(parts) + tail,
        )

    def _evidence(self, rec: Record) -> None:
        first, second = rec.get("first", {}), rec.get("second", {})
        key = "proposal" if rec["type"] == "PrePrepare" else "block"
        note = (
            f"{self.name(rec['node'])} now holds two validly signed {rec['type']}s of "
            f"{self.name(rec['against'])} for view {rec['view']}, height {rec['height']} "
            f"({first.get(key)} and {second.get(key)}): proof of equivocation; it keeps the "
            "evidence and counts only the first"
        )
        self.add(
            rec,
            "mark",
            rec["node"],
            None,
            f"caught {self.name(rec['against'])}",
            style="bold red",
            note=note,
        )

    def _membership(self, rec: Record) -> None:
        sealers = rec.get("sealers", [])
        n = len(sealers)
        self.n = n or self.n
        f = (n - 1) // 3 if n else 0
        if self.first(f"members-{rec['height']}"):
            note = (
                f"from height {rec['height']} the sealers are {self.names_of(sealers)}: n = {n}, "
                f"f = {f}, a quorum is n - f = {n - f}"
            )
            self.add(rec, "mark", rec["node"], None, "new sealer list", style="bold", note=note)

    def _crash(self, rec: Record) -> None:
        self.add(
            rec,
            "mark",
            rec["node"],
            None,
            "CRASH",
            style="bold red",
            note=f"{self.name(rec['node'])} crashes: it keeps only its stored chain and last "
            "saved state",
        )

    def _stop(self, rec: Record) -> None:
        self.add(
            rec,
            "mark",
            rec["node"],
            None,
            "STOPPED",
            style="bold red",
            note=f"{self.name(rec['node'])} is stopped cleanly (`ledgerlab {rec.get('how')}`): "
            "its chain and saved state are on disk, it sends nothing until it starts again",
        )

    def _restart(self, rec: Record) -> None:
        self.add(
            rec,
            "mark",
            rec["node"],
            None,
            "restarts",
            style="bold",
            note=f"{self.name(rec['node'])} starts on an empty chain (height 0)"
            if rec.get("height") == 0
            else f"{self.name(rec['node'])} starts again from its stored chain at height "
            f"{rec.get('height')}",
        )


_STYLES = {
    "PrePrepare": "cyan",
    "Prepare": "yellow",
    "Commit": "green",
    "ViewChange": "magenta",
    "NewView": "bold magenta",
    "garbage": "red",
}
