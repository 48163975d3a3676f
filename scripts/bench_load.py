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
from node.ledger.fisco import encode_calldata, sign_fisco_tx
from node.rpc.client import AsyncRpcClient
from scripts.errors import CommandError
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


class FiscoDagTransferLoad(DagTransferLoad):
    """The same DagTransfer load in FISCO BCOS 2.x format (docs/fisco-format.md): RLP
    transactions with ABI calldata, signed over Keccak-256, as FISCO's SDKs send them.
    Needs a chain whose ids are FISCO's numbers (a fresh bench chain gets 1 and 1)."""

    name = "fisco"

    def __init__(self, chain: Chain, key: KeyPair, users: int) -> None:
        super().__init__(chain, key, users)
        if not (chain.chain_id.isdigit() and chain.group_id.isdigit()):
            raise CommandError(
                f"--format fisco needs numeric chain and group ids; {chain.root} has "
                f"{chain.chain_id!r} / {chain.group_id!r}",
                hint="make one with `ledgerlab init --fisco`",
            )
        self.key = key
        self.chain_id, self.group_id = int(chain.chain_id), int(chain.group_id)

    def _sign(self, signature: str, args: list[str | int], block_limit: int) -> Signed:
        stx = sign_fisco_tx(
            self.key,
            to=0x5002,
            data=encode_calldata(signature, args),
            block_limit=block_limit,
            chain_id=self.chain_id,
            group_id=self.group_id,
        )
        return "0x" + stx.hash.hex(), stx.encoded

    def setup_txs(self, block_limit: int) -> list[Signed]:
        add = "userAdd(string,uint256)"
        return [self._sign(add, [u, INITIAL_BALANCE], block_limit) for u in self.users]

    def load_tx(self, rng: random.Random, block_limit: int) -> Signed:
        src, dst = rng.sample(self.users, 2)
        amount = rng.randint(1, 100)
        return self._sign("userTransfer(string,string,uint256)", [src, dst, amount], block_limit)


FORMATS: dict[str, Callable[[Chain, KeyPair, int], LoadFormat]] = {
    "dag": DagTransferLoad,
    "fisco": FiscoDagTransferLoad,
}
"""``--format`` name -> constructor ``(chain, signing key, users)``."""
