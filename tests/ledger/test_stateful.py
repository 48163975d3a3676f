"""Random asset workloads against a reference model, with a second node replaying blocks.

The machine queues random DagTransfer calls (valid and invalid, by admins, owners and
strangers), seals them into blocks on one node, and checks: every receipt status equals
what an independent model of FISCO's rules predicts; total supply equals minted minus
drawn; every balance matches; and a second executor fed the block bytes (decode, recover
senders, execute) reaches the same receipt and state roots as the header.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from consensus.crypto import KeyPair
from node.ledger.block import Block
from node.ledger.executor import Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.dag_transfer import TABLE_PREFIX, parse_record
from node.ledger.tx import UINT256_MAX, VerifiedTx
from storage.ledger import LedgerStore
from storage.memory import MemoryKV
from tests.ledger.support import (
    ADMIN,
    ALICE,
    BOB,
    Chain,
    make_tx,
    open_genesis,
    permissioned_genesis,
)

USERS = st.sampled_from(["alice", "bob", "carol", "dave", ""])
SIGNERS = st.sampled_from([ADMIN, ALICE, BOB])
AMOUNTS = st.one_of(
    st.integers(0, 50),
    st.integers(0, 10**6),
    st.integers(UINT256_MAX - 100, UINT256_MAX),
)


class Model:
    """FISCO DagTransfer rules written out again, independently of the precompile."""

    def __init__(self, admins: set[bytes]) -> None:
        self.admins = admins
        self.balance: dict[str, int] = {}
        self.owner: dict[str, bytes | None] = {}
        self.minted = 0
        self.drawn = 0

    def may_spend(self, sender: bytes, user: str) -> bool:
        if not self.admins:
            return True
        owner = self.owner[user]
        return sender == owner if owner is not None else sender in self.admins

    def apply(self, sender: bytes, method: str, args: tuple[Any, ...]) -> int:
        perm = bool(self.admins)
        if method == "userAdd":
            user, amount, *rest = args
            if perm and sender not in self.admins:
                return -50000
            if not user:
                return -51400
            if user in self.balance:
                return -51403
            self.balance[user] = amount
            self.owner[user] = bytes.fromhex(rest[0]) if rest else sender
            self.minted += amount
            return 0
        if method == "userSave":
            user, amount = args
            if perm and sender not in self.admins:
                return -50000
            if not user:
                return -51400
            if amount == 0:
                return -51401
            if user not in self.balance:
                self.balance[user], self.owner[user] = 0, sender
            if self.balance[user] + amount > UINT256_MAX:
                return -51405
            self.balance[user] += amount
            self.minted += amount
            return 0
        if method == "userDraw":
            user, amount = args
            if not user:
                return -51400
            if amount == 0:
                return -51401
            if user not in self.balance:
                return -51402
            if not self.may_spend(sender, user):
                return -50000
            if self.balance[user] < amount:
                return -51404
            self.balance[user] -= amount
            self.drawn += amount
            return 0
        if method == "userTransfer":
            src, dst, amount = args
            if not src or not dst:
                return -51400
            if amount == 0:
                return -51401
            if src == dst:
                return 0
            if src not in self.balance:
                return -51402
            if not self.may_spend(sender, src):
                return -50000
            if self.balance[src] < amount:
                return -51404
            if self.balance.get(dst, 0) + amount > UINT256_MAX:
                return -51405
            if dst not in self.balance:
                self.balance[dst], self.owner[dst] = 0, None
            self.balance[src] -= amount
            self.balance[dst] += amount
            return 0
        if method == "userBalance":
            (user,) = args
            return -51400 if not user else (0 if user in self.balance else -51402)
        return -50100


class Replica:
    """A second node: gets block bytes only, and must reach the same roots."""

    def __init__(self, genesis: GenesisConfig) -> None:
        self.executor = Executor(genesis)
        self.store = LedgerStore(MemoryKV())
        self.store.commit_block(genesis.block_commit())

    def feed(self, raw: bytes) -> None:
        block = Block.decode(raw)
        assert block.tx_root_matches()
        head = self.store.head()
        assert head is not None and block.header.parent_hash == head.block_hash
        txs = [t.verified() for t in block.decode_transactions()]
        result = self.executor.execute_block(
            self.store.state, number=block.number, parent_state_root=head.state_root, txs=txs
        )
        assert result.state_root == block.header.state_root
        assert result.receipt_root == block.header.receipt_root
        self.store.commit_block(result.block_commit(block))


class AssetMachine(RuleBasedStateMachine):
    GENESIS = open_genesis()

    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain(self.GENESIS)
        self.replica = Replica(self.GENESIS)
        self.model = Model(set(self.GENESIS.asset_admins))
        self.pending: list[VerifiedTx] = []

    def queue(self, kp: KeyPair, method: str, *args: Any) -> None:
        self.pending.append(make_tx(kp, method, *args, block_limit=10**6))

    @rule(kp=SIGNERS, user=USERS, amount=AMOUNTS, owner=st.sampled_from([None, ALICE, BOB]))
    def add(self, kp: KeyPair, user: str, amount: int, owner: KeyPair | None) -> None:
        if owner is None:
            self.queue(kp, "userAdd", user, amount)
        else:
            self.queue(kp, "userAdd", user, amount, owner.address.hex())

    @rule(kp=SIGNERS, user=USERS, amount=AMOUNTS)
    def save(self, kp: KeyPair, user: str, amount: int) -> None:
        self.queue(kp, "userSave", user, amount)

    @rule(kp=SIGNERS, user=USERS, amount=AMOUNTS)
    def draw(self, kp: KeyPair, user: str, amount: int) -> None:
        self.queue(kp, "userDraw", user, amount)

    @rule(kp=SIGNERS, src=USERS, dst=USERS, amount=AMOUNTS)
    def transfer(self, kp: KeyPair, src: str, dst: str, amount: int) -> None:
        self.queue(kp, "userTransfer", src, dst, amount)

    @rule(kp=SIGNERS, user=USERS)
    def balance_tx(self, kp: KeyPair, user: str) -> None:
        self.queue(kp, "userBalance", user)

    @rule(kp=SIGNERS)
    def unknown_method(self, kp: KeyPair) -> None:
        self.queue(kp, "userMint", "alice", 5)

    @precondition(lambda self: len(self.pending) <= 12)
    @rule()
    def seal(self) -> None:
        txs, self.pending = self.pending, []
        expected = [self.model.apply(v.sender, v.tx.tx.method, v.tx.tx.args) for v in txs]
        result = self.chain.run(*txs)
        assert [r.status for r in result.receipts] == expected
        self.replica.feed(self.chain.head.encode())
        head = self.replica.store.head()
        assert head is not None and head.state_root == self.chain.head.header.state_root

    @invariant()
    def supply_is_minted_minus_drawn(self) -> None:
        state = self.chain.store.state
        balances = {
            key[len(TABLE_PREFIX) :].decode(): parse_record(value)[0]
            for key, value in state.scan(prefix=TABLE_PREFIX)
        }
        assert sum(balances.values()) == self.model.minted - self.model.drawn
        assert balances == self.model.balance


class PermissionedAssetMachine(AssetMachine):
    GENESIS = permissioned_genesis()


_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOpenAssets = AssetMachine.TestCase
TestOpenAssets.settings = _SETTINGS
TestPermissionedAssets = PermissionedAssetMachine.TestCase
TestPermissionedAssets.settings = _SETTINGS
