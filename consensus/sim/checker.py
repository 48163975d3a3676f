"""The invariant checker, run after every simulation.

* agreement: no two honest nodes committed different blocks at the same height;
* validity: every block an honest node committed carries a seal that verify_seal accepts,
  extends its parent, re-executes to the same hashes, and was proposed by the leader of
  its height in some view;
* integrity: no transaction (and no proposal) is committed twice on an honest chain;
* liveness: when the faults stay within f and the network heals, every honest node
  reaches the target, and after the heal (GST) commits resume within a bounded number of
  view changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from consensus.certs import verify_seal
from consensus.quorum import leader_of
from consensus.sim.executor import GENESIS_HASH, GENESIS_STATE_ROOT, execute, payload_txs

if TYPE_CHECKING:
    from consensus.sim.engine import Simulation


@dataclass(frozen=True, slots=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str
    checked: bool = True

    @property
    def status(self) -> str:
        return "skipped" if not self.checked else "ok" if self.ok else "FAILED"


def liveness_bound(f: int) -> int:
    """View changes allowed between the heal and the next commit: f bad leaders in a row,
    plus a few rounds for nodes that drifted to different views while cut off."""
    return 2 * f + 4


def check_agreement(sim: Simulation) -> InvariantResult:
    seen: dict[int, tuple[bytes, int]] = {}
    for node in sim.honest_nodes():
        for block in node.chain:
            prev = seen.setdefault(block.height, (block.block_hash, node.eid))
            if prev[0] != block.block_hash:
                return InvariantResult(
                    "agreement",
                    False,
                    f"fork at height {block.height}: node {prev[1]} has {prev[0].hex()[:12]}, "
                    f"node {node.eid} has {block.block_hash.hex()[:12]}",
                )
    return InvariantResult("agreement", True, f"{len(seen)} heights, one block each")


def check_validity(sim: Simulation) -> InvariantResult:
    keys = sim.keys
    s = sim.scenario
    # Every honest node holds a copy of each block, its seal made of Commit signatures the
    # other nodes' seals mostly share: checking one (key, digest, signature) is a pure
    # function, so the checker makes each distinct check once (at n = 100, 10 blocks:
    # ~1,000 recoveries instead of 67,000). The replicas' own checks are not touched.
    checked: dict[tuple[bytes, bytes, bytes], bool] = {}

    def verifier(public_key: bytes, digest: bytes, signature: bytes) -> bool:
        key = (public_key, digest, signature)
        ok = checked.get(key)
        if ok is None:
            ok = checked[key] = keys.verifier(public_key, digest, signature)
        return ok

    for node in sim.honest_nodes():
        parent_hash, parent_root = GENESIS_HASH, GENESIS_STATE_ROOT
        committed: set[int] = set()
        sealers = s.initial_sealers()
        for block in node.chain:
            where = f"node {node.eid} height {block.height}"
            if block.proposal.height != block.height or block.proposal.parent_hash != parent_hash:
                return InvariantResult("validity", False, f"{where}: does not extend its parent")
            if block.seal.proposal_digest != block.proposal.digest or not verify_seal(
                sim.sealer_keys(sealers),
                verifier,
                block.height,
                block.block_hash,
                block.state_root,
                block.seal,
            ):
                return InvariantResult("validity", False, f"{where}: seal does not verify")
            after = sim.next_sealers(sealers, block.proposal)
            changed = after if after != sealers else None
            ok, bh, sr = execute(block.proposal, parent_root, committed, sim.total_txs, changed)
            if not ok or bh != block.block_hash or sr != block.state_root:
                return InvariantResult("validity", False, f"{where}: does not re-execute")
            if block.sealers != after:
                return InvariantResult("validity", False, f"{where}: wrong sealer list after it")
            origin = sim.proposed.get(block.proposal.digest)
            if (
                origin is None
                or origin[0]
                != sealers[leader_of(origin[1], block.height, len(sealers), s.leader_period)]
            ):
                return InvariantResult(
                    "validity", False, f"{where}: not proposed by a leader of its height"
                )
            committed.update(payload_txs(block.proposal.payload) or [])
            parent_hash, parent_root = block.block_hash, block.state_root
            sealers = after
    return InvariantResult("validity", True, "every committed block is sealed, executed, led")


def check_integrity(sim: Simulation) -> InvariantResult:
    for node in sim.honest_nodes():
        txs: set[int] = set()
        proposals: set[bytes] = set()
        for block in node.chain:
            if block.proposal.digest in proposals:
                return InvariantResult(
                    "integrity", False, f"node {node.eid}: a proposal is committed twice"
                )
            proposals.add(block.proposal.digest)
            for t in payload_txs(block.proposal.payload) or []:
                if t in txs:
                    return InvariantResult(
                        "integrity", False, f"node {node.eid}: tx {t} committed twice"
                    )
                txs.add(t)
    return InvariantResult("integrity", True, "no transaction committed twice")


def check_liveness(sim: Simulation) -> InvariantResult:
    s = sim.scenario
    if not sim.liveness_expected():
        why = (
            "the network never heals"
            if s.gst_ms() is None
            else "more than f of some sealer list are faulty"
        )
        return InvariantResult("liveness", True, f"not expected: {why}", checked=False)
    gst = sim.gst_us or 0
    bound = liveness_bound(s.f)
    worst = 0
    for node in sim.honest_nodes():
        if sim._down_for_good(node):
            continue
        if node.height < s.blocks:
            return InvariantResult(
                "liveness",
                False,
                f"node {node.eid} reached height {node.height} of {s.blocks} "
                f"by {sim.now / 1000:.0f} ms (heal at {gst / 1000:.0f} ms)",
            )
        already = sum(1 for t in node.progress_times if t <= gst) and (
            len([t for t in node.progress_times if t <= gst]) >= s.blocks
        )
        if already:
            continue
        first = next((t for t in node.progress_times if t > gst), None)
        if first is None:
            continue
        changes = sum(1 for t in node.view_change_times if gst < t <= first)
        worst = max(worst, changes)
        if changes > bound:
            return InvariantResult(
                "liveness",
                False,
                f"node {node.eid} needed {changes} view changes after the heal (bound {bound})",
            )
    return InvariantResult(
        "liveness",
        True,
        f"all honest nodes reached {s.blocks}; worst {worst} view changes "
        f"after the heal (bound {bound})",
    )


def check_all(sim: Simulation) -> list[InvariantResult]:
    return [check_agreement(sim), check_validity(sim), check_integrity(sim), check_liveness(sim)]
