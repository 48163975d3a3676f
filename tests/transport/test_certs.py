"""Certificate chain generation, node-id binding and loading."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from consensus.crypto import KeyPair
from node.transport import pki as certs
from tests.transport.conftest import Pki


def test_layout_and_key_permissions(pki: Pki) -> None:
    root = pki.root
    for path in (
        root / "cert" / "ca.crt",
        root / "cert" / "agency0" / "agency.crt",
        root / "cert" / "agency0" / "ca.crt",
        root / "node0" / "ca.crt",
        root / "node0" / "node.crt",
        root / "node0" / "node.nodeid",
    ):
        assert path.is_file(), path
    for key in (
        root / "cert" / "ca.key",
        root / "cert" / "agency0" / "agency.key",
        root / "node0" / "node.key",
        root / "node0" / "consensus.key",
    ):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_node_id_is_consensus_public_key(pki: Pki) -> None:
    node = pki.nodes[0]
    assert len(node.node_id) == 128
    assert node.node_id == node.consensus.public_key.hex()
    assert (pki.root / "node0" / "node.nodeid").read_text().strip() == node.node_id
    leaf = x509.load_pem_x509_certificates(node.cert_path.read_bytes())
    assert len(leaf) == 2  # node certificate followed by its agency, as FISCO's node.crt
    assert certs.node_id_of(leaf[0]) == node.node_id
    assert leaf[0].issuer == leaf[1].subject


def test_given_consensus_key_is_certified(pki: Pki, tmp_path: Path) -> None:
    key = KeyPair.generate()
    ident = certs.generate_node(pki.root / "cert" / "agency0", tmp_path / "n", consensus=key)
    assert ident.node_id == key.public_key.hex()
    assert certs.load_node(tmp_path / "n").consensus == key


def test_load_rejects_mismatched_consensus_key(pki: Pki, tmp_path: Path) -> None:
    shutil.copytree(pki.root / "node0", tmp_path / "n")
    shutil.copy(pki.root / "node1" / "consensus.key", tmp_path / "n" / "consensus.key")
    with pytest.raises(certs.CertificateError, match="bound to"):
        certs.load_node(tmp_path / "n")


def test_load_rejects_mismatched_tls_key(pki: Pki, tmp_path: Path) -> None:
    shutil.copytree(pki.root / "node0", tmp_path / "n")
    shutil.copy(pki.root / "node1" / "node.key", tmp_path / "n" / "node.key")
    with pytest.raises(certs.CertificateError, match="does not match"):
        certs.load_node(tmp_path / "n")


def _forged_cert(pki: Pki, claimed: KeyPair, prover: KeyPair) -> x509.Certificate:
    """An agency-signed certificate claiming ``claimed``'s id with ``prover``'s proof."""
    agency_dir = pki.root / "cert" / "agency0"
    agency_key = certs._load_key(agency_dir / "agency.key")
    agency_cert = certs._load_certs(agency_dir / "agency.crt")[0]
    tls_key = ec.generate_private_key(ec.SECP256R1())
    honest = certs.binding_extension(prover, tls_key.public_key())
    proof = honest[-65:]
    forged = certs._der(0x30, certs._der(0x04, claimed.public_key) + certs._der(0x04, proof))
    builder = certs._builder(
        certs._name("evil", "chain0", "node"), agency_cert.subject, tls_key.public_key(), 1
    ).add_extension(x509.UnrecognizedExtension(certs.NODE_BINDING_OID, forged), critical=False)
    return builder.sign(agency_key, hashes.SHA256())


def test_binding_proof_must_come_from_claimed_key(pki: Pki) -> None:
    victim, attacker = KeyPair.generate(), KeyPair.generate()
    with pytest.raises(certs.CertificateError, match="not made by the claimed"):
        certs.node_id_of(_forged_cert(pki, victim, attacker))


def test_binding_proof_covers_the_tls_key(pki: Pki) -> None:
    """A proof copied from another certificate does not bind a different TLS key."""
    node = certs.load_node(pki.root / "node0")
    real = x509.load_pem_x509_certificates(node.cert_path.read_bytes())[0]
    stolen = real.extensions.get_extension_for_oid(certs.NODE_BINDING_OID).value.value
    agency_dir = pki.root / "cert" / "agency0"
    other_tls = ec.generate_private_key(ec.SECP256R1())
    cert = (
        certs._builder(
            certs._name("evil", "chain0", "node"),
            certs._load_certs(agency_dir / "agency.crt")[0].subject,
            other_tls.public_key(),
            1,
        )
        .add_extension(x509.UnrecognizedExtension(certs.NODE_BINDING_OID, stolen), critical=False)
        .sign(certs._load_key(agency_dir / "agency.key"), hashes.SHA256())
    )
    with pytest.raises(certs.CertificateError):
        certs.node_id_of(cert)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x30\x00", b"\x04\x40" + b"\x00" * 64, b"\x30\x81\xff" + b"\x00" * 10],
)
def test_malformed_binding_is_a_certificate_error(pki: Pki, value: bytes) -> None:
    agency_dir = pki.root / "cert" / "agency0"
    tls = ec.generate_private_key(ec.SECP256R1())
    cert = (
        certs._builder(
            certs._name("x", "chain0", "node"), certs._name("a", "b", "c"), tls.public_key(), 1
        )
        .add_extension(x509.UnrecognizedExtension(certs.NODE_BINDING_OID, value), critical=False)
        .sign(certs._load_key(agency_dir / "agency.key"), hashes.SHA256())
    )
    with pytest.raises(certs.CertificateError):
        certs.node_id_of(cert)


def test_unbound_certificate_is_refused(pki: Pki) -> None:
    ca = certs._load_certs(pki.root / "cert" / "ca.crt")[0]
    with pytest.raises(certs.CertificateError, match="no node id"):
        certs.node_id_of(ca)
    with pytest.raises(certs.CertificateError, match="no certificate"):
        certs.peer_node_id(None)
    with pytest.raises(certs.CertificateError, match="unreadable"):
        certs.peer_node_id(b"\x30\x03junk")


def test_node_certified_directly_by_ca_is_refused(pki: Pki, tmp_path: Path) -> None:
    """Nodes must be certified by an agency; the CA itself only certifies agencies."""
    fake_agency = tmp_path / "ca-as-agency"
    fake_agency.mkdir()
    shutil.copy(pki.root / "cert" / "ca.crt", fake_agency / "agency.crt")
    shutil.copy(pki.root / "cert" / "ca.key", fake_agency / "agency.key")
    shutil.copy(pki.root / "cert" / "ca.crt", fake_agency / "ca.crt")
    ident = certs.generate_node(fake_agency, tmp_path / "n")
    der = x509.load_pem_x509_certificates(ident.cert_path.read_bytes())[0].public_bytes(
        certs.serialization.Encoding.DER
    )
    subject = certs.ca_subject(pki.nodes[0])
    with pytest.raises(certs.CertificateError, match="not by an agency"):
        certs.peer_node_id(der, subject)
    assert certs.peer_node_id(der) == ident.node_id  # the binding itself is fine
