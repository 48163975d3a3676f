"""Certificate material for the security tests: a chain with three members, and the
identities that must not get in (another CA, expired, a forged binding)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from node.transport import pki as certs
from node.transport.pki import NodeIdentity
from tests.loops import both_loops

GENESIS = bytes.fromhex("cc" * 32)

pytest_asyncio_loop_factories = both_loops  # the runtime runs on uvloop


@dataclass
class Pki:
    root: Path
    agency: Path
    members: list[NodeIdentity]
    foreign: NodeIdentity  # certified by another chain's CA
    expired: NodeIdentity  # a member's own certificate, re-issued already expired
    not_yet: NodeIdentity  # valid only from tomorrow

    @property
    def ids(self) -> list[str]:
        return [n.node_id for n in self.members]


def agency_key(agency: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((agency / "agency.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def reissue(agency: Path, node_dir: Path, *, start: datetime.timedelta,
            end: datetime.timedelta) -> None:  # fmt: skip
    """Sign ``node_dir``'s certificate again, valid from now+start to now+end."""
    cert, *chain = x509.load_pem_x509_certificates((node_dir / "node.crt").read_bytes())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + start)
        .not_valid_after(now + end)
    )
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    new = builder.sign(agency_key(agency), hashes.SHA256())
    (node_dir / "node.crt").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (new, *chain))
    )


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("security-pki")
    certs.generate_chain_ca(root / "ca", chain_name="chain0")
    certs.generate_agency(root / "ca", root / "agency", name="agency0")
    members = [
        certs.generate_node(root / "agency", root / f"node{i}", name=f"node{i}") for i in range(3)
    ]
    certs.generate_chain_ca(root / "other", chain_name="other")
    certs.generate_agency(root / "other", root / "other-agency", name="agency-x")
    foreign = certs.generate_node(root / "other-agency", root / "foreign", name="foreign")
    day = datetime.timedelta(days=1)
    certs.generate_node(root / "agency", root / "expired", name="expired")
    reissue(root / "agency", root / "expired", start=-30 * day, end=-day)
    certs.generate_node(root / "agency", root / "not-yet", name="not-yet")
    reissue(root / "agency", root / "not-yet", start=day, end=30 * day)
    return Pki(
        root=root,
        agency=root / "agency",
        members=members,
        foreign=foreign,
        expired=certs.load_node(root / "expired"),
        not_yet=certs.load_node(root / "not-yet"),
    )
