"""Client account keys kept in a chain's ``accounts/`` folder.

An account is a secp256k1 key (the same curve and PEM form as a node's consensus key),
stored as ``accounts/<name>.key`` with mode 0600; its address is what genesis lists as a
governor or asset admin. ``admin`` is made by ``ledgerlab init``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from consensus.crypto import KeyPair
from node.transport.pki import CertificateError, load_consensus_key
from scripts.errors import CommandError

ADMIN = "admin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise CommandError(
            f"bad account name {name!r}: use letters, digits, '_', '.', '-' (at most 64)"
        )
    return name


def key_path(accounts_dir: Path, name: str) -> Path:
    return accounts_dir / f"{check_name(name)}.key"


def save_key(path: Path, keypair: KeyPair) -> None:
    """Write ``keypair`` as PKCS#8 PEM, readable by its owner only; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    key = ec.derive_private_key(int.from_bytes(keypair.secret, "big"), ec.SECP256K1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(f"account key {path} already exists") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)


def new_account(accounts_dir: Path, name: str) -> KeyPair:
    keypair = KeyPair.generate()
    save_key(key_path(accounts_dir, name), keypair)
    return keypair


def load_key(path: Path) -> KeyPair:
    if not path.is_file():
        raise CommandError(
            f"no account key at {path}", hint="create one with: ledgerlab accounts new NAME"
        )
    try:
        return load_consensus_key(path)
    except CertificateError as exc:
        raise CommandError(f"cannot use account key: {exc}") from None


def list_accounts(accounts_dir: Path) -> list[tuple[str, KeyPair]]:
    if not accounts_dir.is_dir():
        return []
    return [(p.stem, load_key(p)) for p in sorted(accounts_dir.glob("*.key"))]
