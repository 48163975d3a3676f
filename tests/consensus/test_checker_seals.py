"""The validity check verifies each distinct (sealers, block, seal) once for all the honest
nodes that hold it; a node whose copy carries another seal is still checked on its own."""

from __future__ import annotations

import dataclasses

from consensus.messages import Seal
from consensus.sim import NetworkSpec, Scenario, run_scenario
from consensus.sim.checker import check_validity
from consensus.sim.engine import Simulation


def small_run(signatures: str) -> Simulation:
    return run_scenario(
        Scenario(nodes=4, blocks=3, signatures=signatures, network=NetworkSpec(latency_ms=5))
    )


def test_every_copy_valid_passes() -> None:
    assert check_validity(small_run("real")).ok


def test_one_copy_with_a_bad_signature_fails_the_check() -> None:
    sim = small_run("real")
    victim = sim.nodes[2]
    block = victim.chain[-1]
    index, signature = block.seal.signatures[0]
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    forged = Seal(
        block.seal.view, block.seal.proposal_digest, ((index, bad), *block.seal.signatures[1:])
    )
    victim.chain[-1] = dataclasses.replace(block, seal=forged)
    result = check_validity(sim)
    assert not result.ok
    assert "node 2" in result.detail and "seal does not verify" in result.detail
