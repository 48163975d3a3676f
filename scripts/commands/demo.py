"""``ledgerlab demo``: the ledger core end to end, in one process (temporary).

Genesis, keys, signed DagTransfer transactions, a few blocks executed and committed to
a persistent ledger, balances, and the supply check. It will be replaced by the real
cluster demo; until then it is the Quickstart's main job.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from consensus.crypto import KeyPair
from node.accounts import format_address
from node.block import Block
from node.executor import ExecutionResult, Executor, status_name
from node.genesis import GenesisConfig
from node.precompiles.dag_transfer import TABLE_PREFIX, parse_record
from node.tx import SignedTransaction, Transaction, VerifiedTx, decode_values
from scripts.cli import CommandError
from storage.backends import DEFAULT_BACKEND, open_store
from storage.kv import StorageError
from storage.ledger import LedgerStore

console = Console()


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a small end-to-end example of the ledger core",
        description="Create a genesis, sign DagTransfer transactions, execute and commit a "
        "few blocks to a persistent ledger, and check balances and total supply.",
    )
    parser.add_argument("--dir", help="keep the ledger here (default: a temporary directory)")
    parser.add_argument("--seed", type=int, default=7, help="seed for the demo's keys")
    parser.set_defaults(func=run)


class DemoChain:
    """One node's chain: execute a block, seal the header, commit it to the ledger."""

    def __init__(self, genesis: GenesisConfig, store: LedgerStore) -> None:
        self.genesis = genesis
        self.executor = Executor(genesis)
        self.store = store
        store.commit_block(genesis.block_commit())
        self.head = genesis.block()

    def run(self, txs: Sequence[VerifiedTx]) -> tuple[Block, ExecutionResult]:
        result = self.executor.execute_block(
            self.store.state,
            number=self.head.number + 1,
            parent_state_root=self.head.header.state_root,
            txs=txs,
        )
        header = result.header(
            parent_hash=self.head.hash,
            timestamp=int(time.time() * 1000),
            sealer=result.number % len(self.genesis.sealers),
            sealer_list=self.genesis.sealers,
        )
        block = Block.build(header, [t.tx for t in txs])
        self.store.commit_block(result.block_commit(block))
        self.head = block
        return block, result


def balances(store: LedgerStore) -> dict[str, int]:
    """Every DagTransfer user's balance, read straight from the committed state."""
    return {
        key[len(TABLE_PREFIX) :].decode(): parse_record(value)[0]
        for key, value in store.state.scan(prefix=TABLE_PREFIX)
    }


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    admin, alice, bob, eve = (KeyPair.generate(rng) for _ in range(4))
    names = {admin.address: "admin", alice.address: "alice", bob.address: "bob",
             eve.address: "eve"}  # fmt: skip
    genesis = GenesisConfig(
        sealers=tuple(KeyPair.generate(rng).public_key for _ in range(4)),
        asset_admins=(admin.address,),
        governors=(admin.address,),
        timestamp=int(time.time() * 1000),
    )
    console.rule("[bold]ledgerlab demo: the ledger core")
    console.print(
        f"genesis [cyan]{genesis.hash.hex()[:16]}…[/]  chain {genesis.chain_id}/"
        f"{genesis.group_id}, {len(genesis.sealers)} sealers, permissioned assets "
        f"(admin {format_address(admin.address)[:12]}…)"
    )

    def tx(kp: KeyPair, method: str, *call_args: Any) -> VerifiedTx:
        """Sign, send as bytes, and admit: decode and recover the sender once."""
        signed = Transaction.build(
            chain_id=genesis.chain_id,
            group_id=genesis.group_id,
            to="0x5002",
            method=method,
            args=call_args,
            block_limit=500,
        ).sign(kp)
        return SignedTransaction.decode(signed.encode()).verified()

    plan = [
        [
            tx(admin, "userAdd", "alice", 1000, alice.address.hex()),
            tx(admin, "userAdd", "bob", 500, bob.address.hex()),
            tx(eve, "userAdd", "eve", 10**6),  # not an admin: refused
        ],
        [
            tx(alice, "userTransfer", "alice", "bob", 300),
            tx(bob, "userTransfer", "bob", "carol", 120),  # carol is created
            tx(eve, "userTransfer", "alice", "eve", 1),  # not alice's owner: refused
            tx(alice, "userDraw", "alice", 5000),  # more than she has
        ],
        [
            tx(bob, "userDraw", "bob", 80),
            tx(admin, "userSave", "alice", 250),
            tx(admin, "userTransfer", "carol", "alice", 20),  # carol is held by the admins
        ],
    ]
    example = plan[1][0].tx
    console.print(
        f"keys: {', '.join(f'{n} {format_address(a)[:10]}…' for a, n in names.items())}\n"
        f"a signed transaction is {len(example.encoded)} bytes of msgpack; its hash "
        f"{example.hash.hex()[:16]}…; the sender recovered from its signature is "
        f"{names[example.recover_sender()]}"
    )
    path = args.dir or tempfile.mkdtemp(prefix="ledgerlab-demo-")
    try:
        try:
            store = LedgerStore(open_store(path, DEFAULT_BACKEND))
        except (StorageError, OSError) as exc:
            raise CommandError(f"cannot open a ledger in {path}: {exc}") from None
        if store.head() is not None:
            raise CommandError(f"{path} already holds a ledger", hint="pass an empty --dir")
        chain = DemoChain(genesis, store)
        minted = drawn = 0
        for txs in plan:
            block, result = chain.run(txs)
            table = Table(
                title=f"block {block.number}  {block.hash.hex()[:16]}…", title_justify="left"
            )
            for column in ("#", "from", "call", "status"):
                table.add_column(column)
            for vtx, receipt in zip(txs, result.receipts, strict=True):
                t = vtx.tx.tx
                args_text = ", ".join(str(a)[:12] for a in t.args)
                style = "green" if receipt.ok else "red"
                table.add_row(
                    str(receipt.index),
                    names[vtx.sender],
                    f"{t.method}({args_text})",
                    f"[{style}]{receipt.status} {status_name(receipt.status)}[/]",
                )
                if receipt.ok and t.method in ("userAdd", "userSave"):
                    minted += int(t.args[1])
                elif receipt.ok and t.method == "userDraw":
                    drawn += int(t.args[1])
            console.print(table)
            console.print(
                f"  state root {result.state_root.hex()[:16]}…  "
                f"{len(result.write_set)} state writes, committed to {DEFAULT_BACKEND}"
            )
        store.kv.close()

        # Reopen the ledger from disk: what a restarted node would see.
        store = LedgerStore(open_store(path, DEFAULT_BACKEND))
        head = store.head()
        assert head is not None
        final = balances(store)
        console.print(f"reopened the ledger from disk: head is block {head.number}")
        table = Table(title="balances", title_justify="left")
        table.add_column("user")
        table.add_column("balance", justify="right")
        for user, balance in sorted(final.items()):
            status, output = chain.executor.call(store.state, "0x5002", "userBalance", [user])
            assert status == 0 and decode_values(output) == (balance,)
            table.add_row(user, f"{balance:,}")
        console.print(table)
        supply = sum(final.values())
        store.kv.close()
    finally:
        if args.dir is None:
            shutil.rmtree(path, ignore_errors=True)
    if supply != minted - drawn:
        raise CommandError(f"total supply {supply} != minted {minted} - drawn {drawn}")
    console.print(
        f"[bold green]ok[/]: total supply {supply:,} = minted {minted:,} - drawn {drawn:,}; "
        f"head {head.number} at {head.block_hash.hex()[:16]}…"
    )
    return 0
