"""What ``ledgerlab bench`` sends: the load formats, each one a maker of signed raw txs.

A format knows three things: the transactions that must commit before the timed load
(accounts to spend from), one load transaction at a time, and a quantity the load must
conserve, read back from every node afterwards (so a run proves the chain executed the
load correctly, not only that it committed something). ``--format NAME`` picks one from
:data:`FORMATS`; a new wire format (FISCO BCOS's, say) is one more class here.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from typing import Protocol

from consensus.crypto import KeyPair
from node.rpc.client import AsyncRpcClient
from scripts.launcher.layout import Chain
from scripts.launcher.load import Signed, TransferSigner, read_balances

INITIAL_BALANCE = 1_000_000_000


class LoadFormat(Protocol):
    """Makes the signed raw transactions of one load format (client cost, not timed)."""

    name: str

    def setup_txs(self, block_limit: int) -> list[Signed]:
        """Transactions to commit before the load (e.g. the accounts it spends from)."""
        ...

    def load_tx(self, rng: random.Random, block_limit: int) -> Signed:
        """One transaction of the timed load."""
        ...

    @property
    def expected_total(self) -> int:
        """What :meth:`read_total` must give on every node after the load."""
        ...

    async def read_total(self, client: AsyncRpcClient) -> int | None:
        """The conserved quantity on one node (None when it cannot be read)."""
        ...


class DagTransferLoad:
    """DagTransfer (FISCO BCOS's performance precompile): ``userAdd`` then ``userTransfer``
    between random users; the users' balances must add up to what was minted.

    User names carry a random run tag so that a run against a chain that already holds
    an earlier run's users (``--dir``) creates fresh ones instead of failing.
    """

    name = "dag"

    def __init__(self, chain: Chain, key: KeyPair, users: int) -> None:
        self.signer = TransferSigner(chain, key)
        tag = secrets.token_hex(3)
        self.users = [f"b{tag}u{i:05d}" for i in range(users)]

    def setup_txs(self, block_limit: int) -> list[Signed]:
        return [self.signer.sign("userAdd", [u, INITIAL_BALANCE], block_limit) for u in self.users]

    def load_tx(self, rng: random.Random, block_limit: int) -> Signed:
        return self.signer.transfer(rng, self.users, block_limit)

    @property
    def expected_total(self) -> int:
        return INITIAL_BALANCE * len(self.users)

    async def read_total(self, client: AsyncRpcClient) -> int | None:
        balances = await read_balances(client, self.users)
        if None in balances:
            return None
        return sum(b for b in balances if b is not None)


FORMATS: dict[str, Callable[[Chain, KeyPair, int], LoadFormat]] = {"dag": DagTransferLoad}
"""``--format`` name -> constructor ``(chain, signing key, users)``."""
