"""The channel's TLS settings: what FISCO BCOS 2.x SDKs negotiate (docs/channel.md, TLS).

The SDKs offer ECDHE over secp256k1 only (Node.js's ``ecdhCurve: 'secp256k1'``, the
java-sdk's netty, python-sdk's ``set_ecdh_curve``). OpenSSL allows that group in TLS 1.2
but not in TLS 1.3, and a TLS 1.2 ECDSA certificate must be on a curve the client
offered, so the channel speaks TLS 1.2 only with a secp256k1 certificate of its own
(``conf/channel.crt``), issued by the chain's agency: not the P-256 TLS 1.3 P2P setup.
The client must present a certificate chaining to the same chain CA (``sdk.crt``).
"""

from __future__ import annotations

import ssl
from pathlib import Path

ECDH_CURVE = "secp256k1"


def server_context(ca: Path, cert: Path, key: Path) -> ssl.SSLContext:
    """Mutual TLS 1.2, ECDHE secp256k1, clients verified against ``ca``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ecdh_curve(ECDH_CURVE)
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:ECDHE+AES")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=str(ca))
    ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return ctx


__all__ = ["ECDH_CURVE", "server_context"]
