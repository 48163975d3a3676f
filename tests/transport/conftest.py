"""Certificate material shared by the transport tests (made once per session: keygen is slow)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from node.transport import pki as certs
from node.transport.pki import NodeIdentity
from tests.loops import both_loops

GENESIS = bytes.fromhex("aa" * 32)

pytest_asyncio_loop_factories = both_loops  # the runtime runs on uvloop


@dataclass
class Pki:
    root: Path
    nodes: list[NodeIdentity]  # members of the chain, certified by agency0
    foreign: NodeIdentity  # certified by another chain's CA

    @property
    def ids(self) -> list[str]:
        return [n.node_id for n in self.nodes]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    certs.generate_chain_ca(root / "cert", chain_name="chain0")
    certs.generate_agency(root / "cert", root / "cert" / "agency0", name="agency0")
    nodes = [
        certs.generate_node(root / "cert" / "agency0", root / f"node{i}", name=f"node{i}")
        for i in range(5)
    ]
    certs.generate_chain_ca(root / "other", chain_name="other")
    certs.generate_agency(root / "other", root / "other" / "agency", name="agency-x")
    foreign = certs.generate_node(root / "other" / "agency", root / "foreign", name="foreign")
    return Pki(root=root, nodes=nodes, foreign=foreign)
