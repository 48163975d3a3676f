"""Certificates that admit a node to the chain: chain CA -> agency -> node, as FISCO BCOS.

Why two keys per node: consensus signs with secp256k1 (the node id is its 64-byte public
key, 128 hex chars), but OpenSSL's TLS 1.3 stack does not negotiate secp256k1 signatures,
so the TLS certificate carries a P-256 key. The two are bound by a certificate extension
(OID :data:`NODE_BINDING_OID`) holding the node id and a *proof*: the consensus key's
signature over the certificate's SubjectPublicKeyInfo. The agency signs the extension as
part of the certificate, and the proof shows the consensus-key holder chose this TLS key,
so neither a stolen TLS key for another id nor an agency alone can impersonate a sealer.

Layout written here (the launcher calls these functions)::

    <cert_dir>/ca.crt, ca.key                    chain CA (self-signed, pathlen 1)
    <agency_dir>/agency.crt, agency.key, ca.crt  agency (signed by the CA, pathlen 0)
    <node_dir>/ca.crt                             trust anchor
               node.crt                           node certificate followed by agency.crt
               node.key                           P-256 TLS key
               consensus.key                      secp256k1 consensus key (PKCS#8 PEM)
               node.nodeid                        node id (hex), one line

Private keys are written with mode 0600.
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consensus.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, hash32, recover

# 2.25.<uuid> is an OID anyone may mint (ITU-T X.667); this one names ledgerlab's binding.
NODE_BINDING_OID = x509.ObjectIdentifier("2.25.239600014666918740799053707477749477854")
_PROOF_DOMAIN = b"ledgerlab/node-cert-binding/v1"
DEFAULT_DAYS = 3650

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
AGENCY_CERT = "agency.crt"
AGENCY_KEY = "agency.key"
NODE_CERT = "node.crt"
NODE_KEY = "node.key"
CONSENSUS_KEY = "consensus.key"
NODE_ID_FILE = "node.nodeid"


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
"""What the chain CA and an agency may sign: certificates and revocation lists only."""


class CertificateError(ValueError):
    """Certificate material that is missing, malformed or does not bind a node id."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Everything a transport needs to prove who this node is and to check peers."""

    node_id: str
    consensus: KeyPair
    ca_cert_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        return tls_context(self, server=True)

    def client_context(self) -> ssl.SSLContext:
        return tls_context(self, server=False)


# --- DER for the binding extension: SEQUENCE { OCTET STRING nodeId, OCTET STRING proof } ---


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def _der_read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    if pos + 2 > len(data) or data[pos] != tag:
        raise CertificateError("binding extension: unexpected DER tag")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        width = n & 0x7F
        if width == 0 or width > 2 or pos + width > len(data):
            raise CertificateError("binding extension: bad DER length")
        n = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    if pos + n > len(data):
        raise CertificateError("binding extension: truncated")
    return data[pos : pos + n], pos + n


def _proof_digest(spki_der: bytes) -> bytes:
    return hash32(_PROOF_DOMAIN + spki_der)


def _spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def binding_extension(consensus: KeyPair, tls_public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The extension value binding ``consensus`` (node id) to ``tls_public_key``."""
    proof = consensus.sign(_proof_digest(_spki(tls_public_key)))
    return _der(0x30, _der(0x04, consensus.public_key) + _der(0x04, proof))


def node_id_of(cert: x509.Certificate) -> str:
    """The node id bound into ``cert``; raises :class:`CertificateError` if unbound or forged."""
    try:
        ext = cert.extensions.get_extension_for_oid(NODE_BINDING_OID)
    except x509.ExtensionNotFound:
        raise CertificateError("certificate carries no node id binding") from None
    except ValueError as exc:  # malformed extensions
        raise CertificateError(f"certificate extensions unreadable: {exc}") from None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise CertificateError("binding extension has an unexpected type")
    seq, end = _der_read(value.value, 0, 0x30)
    if end != len(value.value):
        raise CertificateError("binding extension: trailing bytes")
    public, pos = _der_read(seq, 0, 0x04)
    proof, pos = _der_read(seq, pos, 0x04)
    if pos != len(seq) or len(public) != PUBLIC_KEY_SIZE or len(proof) != SIGNATURE_SIZE:
        raise CertificateError("binding extension: wrong field sizes")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise CertificateError("node certificate key is not an EC key")
    try:
        signer = recover(_proof_digest(_spki(key)), proof)
    except ValueError:
        raise CertificateError("binding proof is not a valid signature") from None
    if signer != public:
        raise CertificateError("binding proof was not made by the claimed node key")
    return public.hex()


# --- generation ---


CLOCK_SLACK = datetime.timedelta(days=1)
"""How far back a new certificate is valid from (a clock behind by less still takes it)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)


def _write_certs(path: Path, *certs: x509.Certificate) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(f"{path}: cannot load private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{path}: not an EC private key")
    return key


def _load_certs(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"{path}: cannot load certificate: {exc}") from None
    return certs


def _leaf_usage(
    builder: x509.CertificateBuilder, agency_cert: x509.Certificate
) -> x509.CertificateBuilder:
    """What every leaf the agency signs carries: TLS server and client use, its issuer's key id."""
    return builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        critical=False,
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(agency_cert.public_key()),  # type: ignore[arg-type]
        critical=False,
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        # Valid from a day back: a node whose clock is minutes (or hours) behind the
        # machine that made the certificates must still accept them (docs/reliability.md).
        .not_valid_before(now - CLOCK_SLACK)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _name(common: str, org: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        ]
    )


def generate_chain_ca(
    cert_dir: Path | str, *, chain_name: str = "chain0", days: int = DEFAULT_DAYS
) -> Path:
    """Write a self-signed chain CA (``ca.crt``, ``ca.key``) into ``cert_dir``; returns it."""
    out = Path(cert_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(chain_name, chain_name, "chain")
    cert = (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            _CA_KEY_USAGE,
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(out / CA_KEY, key)
    _write_certs(out / CA_CERT, cert)
    return out


def generate_agency(
    cert_dir: Path | str, agency_dir: Path | str, *, name: str = "agency0", days: int = DEFAULT_DAYS
) -> Path:
    """Write an agency certificate signed by the CA in ``cert_dir`` into ``agency_dir``."""
    src, out = Path(cert_dir), Path(agency_dir)
    out.mkdir(parents=True, exist_ok=True)
    ca_key = _load_key(src / CA_KEY)
    ca_cert = _load_certs(src / CA_CERT)[0]
    key = ec.generate_private_key(ec.SECP256R1())
    chain = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(chain[0].value) if chain else "chain"
    cert = (
        _builder(_name(name, org, "agency"), ca_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _CA_KEY_USAGE,
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(out / AGENCY_KEY, key)
    _write_certs(out / AGENCY_CERT, cert)
    _write_certs(out / CA_CERT, ca_cert)
    return out


def generate_node(
    agency_dir: Path | str,
    node_dir: Path | str,
    *,
    consensus: KeyPair | None = None,
    name: str = "node",
    days: int = DEFAULT_DAYS,
) -> NodeIdentity:
    """Write node material signed by the agency in ``agency_dir``; returns the loaded identity.

    ``consensus`` defaults to a fresh secp256k1 key; pass one to certify an existing node id.
    """
    src, out = Path(agency_dir), Path(node_dir)
    out.mkdir(parents=True, exist_ok=True)
    agency_key = _load_key(src / AGENCY_KEY)
    agency_cert = _load_certs(src / AGENCY_CERT)[0]
    ca_cert = _load_certs(src / CA_CERT)[0]
    consensus = consensus or KeyPair.generate()
    key = ec.generate_private_key(ec.SECP256R1())
    org_attr = agency_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(org_attr[0].value) if org_attr else "chain"
    builder = (
        _builder(_name(name, org, "node"), agency_cert.subject, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    cert = (
        _leaf_usage(builder, agency_cert)
        .add_extension(
            x509.UnrecognizedExtension(
                NODE_BINDING_OID, binding_extension(consensus, key.public_key())
            ),
            critical=False,
        )
        .sign(agency_key, hashes.SHA256())
    )
    _write_key(out / NODE_KEY, key)
    _write_key(
        out / CONSENSUS_KEY,
        ec.derive_private_key(int.from_bytes(consensus.secret, "big"), ec.SECP256K1()),
    )
    _write_certs(out / NODE_CERT, cert, agency_cert)
    _write_certs(out / CA_CERT, ca_cert)
    (out / NODE_ID_FILE).write_text(consensus.public_key.hex() + "\n")
    return load_node(out)


def generate_secp256k1_cert(
    agency_dir: Path | str,
    out_dir: Path | str,
    *,
    stem: str,
    name: str,
    unit: str,
    days: int = DEFAULT_DAYS,
) -> Path:
    """Write ``<stem>.crt`` (a secp256k1 certificate signed by the agency, then the agency
    certificate) and ``<stem>.key`` (PKCS#8) into ``out_dir``; returns the .crt path.

    For the FISCO channel (docs/channel.md): its TLS 1.2 clients offer only secp256k1, so
    the node's ``channel.crt`` and the SDK's ``sdk.crt`` are on that curve, as FISCO's.
    """
    src, out = Path(agency_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    agency_key = _load_key(src / AGENCY_KEY)
    agency_cert = _load_certs(src / AGENCY_CERT)[0]
    key = ec.generate_private_key(ec.SECP256K1())
    org_attr = agency_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    org = str(org_attr[0].value) if org_attr else "chain"
    builder = _builder(
        _name(name, org, unit), agency_cert.subject, key.public_key(), days
    ).add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    cert = _leaf_usage(builder, agency_cert).sign(agency_key, hashes.SHA256())
    _write_key(out / f"{stem}.key", key)
    _write_certs(out / f"{stem}.crt", cert, agency_cert)
    return out / f"{stem}.crt"


# --- loading ---


def load_consensus_key(path: Path | str) -> KeyPair:
    """The secp256k1 consensus key stored at ``path`` (PKCS#8 PEM)."""
    key = _load_key(Path(path))
    if not isinstance(key.curve, ec.SECP256K1):
        raise CertificateError(f"{path}: consensus key is not secp256k1")
    return KeyPair.from_secret(key.private_numbers().private_value.to_bytes(32, "big"))


def load_node(node_dir: Path | str) -> NodeIdentity:
    """Load and cross-check a node directory written by :func:`generate_node`."""
    d = Path(node_dir)
    consensus = load_consensus_key(d / CONSENSUS_KEY)
    certs = _load_certs(d / NODE_CERT)
    if not certs:
        raise CertificateError(f"{d / NODE_CERT}: no certificate")
    bound = node_id_of(certs[0])
    if bound != consensus.public_key.hex():
        raise CertificateError(f"{d}: node.crt is bound to {bound[:16]}..., not to consensus.key")
    tls_key = _load_key(d / NODE_KEY)
    if _spki(tls_key.public_key()) != _spki(certs[0].public_key()):  # type: ignore[arg-type]
        raise CertificateError(f"{d}: node.key does not match node.crt")
    if not (d / CA_CERT).is_file():
        raise CertificateError(f"{d / CA_CERT}: missing")
    return NodeIdentity(
        node_id=bound,
        consensus=consensus,
        ca_cert_path=d / CA_CERT,
        cert_path=d / NODE_CERT,
        key_path=d / NODE_KEY,
    )


def tls_context(identity: NodeIdentity, *, server: bool) -> ssl.SSLContext:
    """Mutual-TLS 1.3 context trusting only this chain's CA.

    Hostnames are not checked: peers are identified by the node id in their certificate,
    which the transport checks after the handshake (see :func:`peer_node_id`).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(identity.ca_cert_path))
    ctx.load_cert_chain(certfile=str(identity.cert_path), keyfile=str(identity.key_path))
    return ctx


def peer_node_id(der: bytes | None, ca_subject: x509.Name | None = None) -> str:
    """Node id of a peer's DER certificate, already chain-verified by the TLS handshake.

    With ``ca_subject`` the certificate must not be issued by the CA directly: nodes are
    certified by an agency, as in FISCO BCOS.
    """
    if not der:
        raise CertificateError("peer presented no certificate")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateError(f"peer certificate unreadable: {exc}") from None
    if ca_subject is not None and cert.issuer == ca_subject:
        raise CertificateError("peer certificate is issued by the CA itself, not by an agency")
    return node_id_of(cert)


def ca_subject(identity: NodeIdentity) -> x509.Name:
    """Subject of this chain's CA, for :func:`peer_node_id`."""
    return _load_certs(identity.ca_cert_path)[0].subject
