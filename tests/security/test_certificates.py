"""Who may connect over TCP + mutual TLS (docs/p2p.md section 2), as security checks.

Already covered elsewhere, not repeated here: a certificate from another chain's CA
(tests/transport/test_tcp.py::test_certificate_from_another_ca_is_refused, and against
real processes in tests/adversarial, "certificate of another chain"); a node certified
by the CA directly, an unbound or malformed binding, a proof by another key
(tests/transport/test_certs.py); a HELLO naming another node
(test_tcp.py::test_hello_claiming_another_node_id_is_refused); blacklisted and
non-member nodes refused at connect, and a connected peer cut off when it is
blacklisted later (test_tcp.py::test_blacklisted_and_non_member_nodes_are_refused,
::test_membership_change_disconnects_removed_peers; MQTT: tests/transport/test_mqtt.py).

Added here: an expired (or not yet valid) certificate cannot connect, in either
direction; a key that does not match its certificate cannot even be offered; a
certificate the agency signed for one TLS key but carrying a member's node id and that
member's proof (made for the member's own TLS key) is refused; and the another-CA case
once more, both ways, with the exact counters, next to the others.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from consensus.crypto import KeyPair
from node.transport import pki as certs
from node.transport.pki import NODE_BINDING_OID, CertificateError, NodeIdentity
from node.transport.tcp import TcpTransport
from tests.security.conftest import GENESIS, Pki, agency_key

pytestmark = pytest.mark.timeout(60)


def make(identity: NodeIdentity, allowed: list[str], **kw: Any) -> TcpTransport:
    opts: dict[str, Any] = {"backoff_initial": 0.05, "backoff_max": 0.2, "handshake_timeout": 2.0}
    opts.update(kw)
    return TcpTransport(identity=identity, genesis_hash=GENESIS, allowed=allowed, **opts)


def addr(t: TcpTransport) -> str:
    return f"127.0.0.1:{t.listen_port}"


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def refused_both_ways(pki: Pki, bad: NodeIdentity, reason: str) -> None:
    """``bad`` dials a member, and a member dials ``bad``: no link either way, and the
    member (the server in the first case) counts ``reason``."""
    allowed = [*pki.ids, bad.node_id]  # even listed as a member, it must not get in
    async with make(pki.members[0], allowed) as member:
        async with make(bad, allowed, peers=[addr(member)]) as intruder:
            await until(lambda: member.stats.disconnects[reason] >= 2)
            assert member.peers() == frozenset() and intruder.peers() == frozenset()
        async with make(bad, allowed) as server:
            member.add_peer(addr(server))
            await until(lambda: server.stats.disconnects["tls_handshake"] >= 1)
            await asyncio.sleep(0.3)
            assert member.peers() == frozenset() and server.peers() == frozenset()
        # and a good member still connects afterwards
        async with make(pki.members[1], allowed, peers=[addr(member)]) as good:
            await good.wait_for_peers([member.node_id], timeout=5)


@pytest.mark.asyncio
async def test_a_certificate_from_another_ca_cannot_connect(pki: Pki) -> None:
    await refused_both_ways(pki, pki.foreign, "tls_handshake")


@pytest.mark.asyncio
async def test_an_expired_certificate_cannot_connect(pki: Pki) -> None:
    cert = x509.load_pem_x509_certificates(pki.expired.cert_path.read_bytes())[0]
    assert cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC)
    await refused_both_ways(pki, pki.expired, "tls_handshake")


@pytest.mark.asyncio
async def test_a_certificate_not_yet_valid_cannot_connect(pki: Pki) -> None:
    await refused_both_ways(pki, pki.not_yet, "tls_handshake")


def _forged_with_members_binding(pki: Pki, victim: NodeIdentity, out: Path) -> NodeIdentity:
    """The agency's signature over a certificate for OUR TLS key that carries the victim's
    node id and the victim's binding proof (which was made over the victim's TLS key)."""
    victim_cert, agency_cert = x509.load_pem_x509_certificates(victim.cert_path.read_bytes())
    binding = victim_cert.extensions.get_extension_for_oid(NODE_BINDING_OID)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(victim_cert.subject)
        .issuer_name(victim_cert.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for ext in victim_cert.extensions:
        if ext.oid in (NODE_BINDING_OID, x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER):
            continue
        builder = builder.add_extension(ext.value, critical=ext.critical)
    builder = builder.add_extension(binding.value, critical=False)
    cert = builder.sign(agency_key(pki.agency), hashes.SHA256())
    out.mkdir(parents=True, exist_ok=True)
    (out / "node.crt").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, agency_cert))
    )
    (out / "node.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return NodeIdentity(
        node_id=victim.node_id,
        consensus=KeyPair.generate(),  # not the victim's: the forger does not hold it
        ca_cert_path=victim.ca_cert_path,
        cert_path=out / "node.crt",
        key_path=out / "node.key",
    )


@pytest.mark.asyncio
async def test_a_members_binding_on_another_tls_key_is_refused(pki: Pki, tmp_path: Path) -> None:
    victim = pki.members[2]
    forged = _forged_with_members_binding(pki, victim, tmp_path / "forged")
    with pytest.raises(CertificateError, match="not made by the claimed node key"):
        certs.node_id_of(x509.load_pem_x509_certificates(forged.cert_path.read_bytes())[0])
    async with make(pki.members[0], pki.ids) as member:
        async with make(forged, pki.ids, peers=[addr(member)]):
            await until(lambda: member.stats.disconnects["bad_certificate"] >= 2)
            assert victim.node_id not in member.peers()
        async with make(forged, pki.ids) as server:  # the other way: we dial the forger
            member.add_peer(addr(server))
            await until(lambda: member.stats.disconnects["bad_certificate"] >= 3)
            assert member.peers() == frozenset()
        async with make(victim, pki.ids, peers=[addr(member)]):  # the real one gets in
            await member.wait_for_peers([victim.node_id], timeout=5)


def test_a_key_that_does_not_match_its_certificate_cannot_be_offered(
    pki: Pki, tmp_path: Path
) -> None:
    """Holding a member's certificate (public) without its TLS key: OpenSSL refuses to
    build a context from the pair, so the certificate cannot be presented at all, and
    loading such a node folder fails with CertificateError before any socket exists."""
    victim = pki.members[1]
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = tmp_path / "node.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    stolen = NodeIdentity(victim.node_id, KeyPair.generate(), victim.ca_cert_path,
                          victim.cert_path, key_path)  # fmt: skip
    for build in (stolen.server_context, stolen.client_context):
        with pytest.raises(ssl.SSLError, match=r"KEY_VALUES_MISMATCH|key values mismatch"):
            build()
    with pytest.raises(ssl.SSLError):
        TcpTransport(identity=stolen, genesis_hash=GENESIS)
    folder = tmp_path / "stolen"
    folder.mkdir()
    for name in ("node.crt", "ca.crt", "consensus.key", "node.nodeid"):
        (folder / name).write_bytes((victim.cert_path.parent / name).read_bytes())
    (folder / "node.key").write_bytes(key_path.read_bytes())
    with pytest.raises(CertificateError, match=r"node\.key does not match node\.crt"):
        certs.load_node(folder)


@pytest.mark.asyncio
async def test_closing_while_refused_handshakes_race_does_not_hang(pki: Pki) -> None:
    """Regression: on Python 3.11 ``asyncio.wait_for`` swallows a cancel that lands as
    the handshake it waits on fails, so a dial loop refused over and over (an expired
    certificate) went on dialling after ``close()``, and ``close()`` never returned (the
    tests above hung about one run in two). Close at many moments of the race."""
    allowed = [*pki.ids, pki.expired.node_id]
    async with make(pki.members[0], allowed) as member:
        for k in range(40):
            intruder = make(pki.expired, allowed, peers=[addr(member)],
                            backoff_initial=0.001, backoff_max=0.002)  # fmt: skip
            await intruder.start()
            await asyncio.sleep(0.002 * (k % 10))
            async with asyncio.timeout(5):
                await intruder.close()
        assert member.stats.disconnects["tls_handshake"] >= 1
