"""Console verbs: the DagTransfer asset precompile, blocks, transactions, receipts,
system config and client accounts -- all over JSON-RPC with
:class:`node.rpc.client.RpcClient`, like the FISCO BCOS console.

Transactions are signed with a chain account (``accounts/admin.key`` unless
``--account``/``--key``) and wait for their receipt unless ``--no-wait``. Read verbs
take ``--json`` and then print the node's JSON answer as it is.
"""

from __future__ import annotations

import argparse
import datetime
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from consensus.crypto import KeyPair
from node.ledger.accounts import parse_address
from node.ledger.executor import status_name
from node.ledger.genesis import SYSTEM_CONFIG_BOUNDS
from node.ledger.tx import MAX_ARG_BYTES, UINT256_MAX, decode_values, utf8_fits
from node.rpc.client import RpcClient, RpcError, RpcTransportError
from node.rpc.errors import ErrorCode
from scripts.errors import CommandError
from scripts.launcher import accounts
from scripts.launcher.layout import Chain
from scripts.launcher.options import (
    Verb,
    add_dir,
    add_target,
    add_verbs,
    arg,
    connect,
    console,
    open_chain,
    print_json,
)

DAG_TRANSFER = "0x5002"
SYSTEM_CONFIG = "0x1000"
PRECOMPILE_NAMES = {
    "0x" + "0" * 36 + "5002": "DagTransfer",
    "0x" + "0" * 36 + "1000": "SystemConfig",
    "0x" + "0" * 36 + "1003": "Consensus",
}

STATUS_TEXT: dict[int, str] = {
    0: "ok",
    21: "bad arguments for the precompile method",
    26: "no precompile at that address",
    -50000: "no permission",
    -50100: "the precompile has no such method",
    -51300: "invalid system config key or value",
    -51100: "invalid node id",
    -51101: "the last sealer cannot be removed or made an observer",
    -51103: "the node is neither a sealer nor an observer",
    -51104: "a node must be an observer (synced) before it becomes a sealer",
    -51105: "the node already has that role",
    -51106: "the list would exceed the most sealers a block can name",
    -51400: "invalid user name",
    -51401: "invalid amount (must be more than 0)",
    -51402: "user does not exist",
    -51403: "user already exists",
    -51404: "insufficient balance",
    -51405: "balance would overflow uint256",
}


def status_text(code: int) -> str:
    return STATUS_TEXT.get(code, "failed")


def describe_status(code: int) -> str:
    """``insufficient balance (InsufficientBalance, status -51404)``."""
    return f"{status_text(code)} ({status_name(code)}, status {code})"


def _int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 0)


# ----------------------------------------------------------------------------- argument checks


def parse_amount(text: str, *, allow_zero: bool = False) -> int:
    if not re.fullmatch(r"[0-9][0-9_]*", text):
        raise CommandError(
            f"bad amount {text!r}: expected a whole number such as 100",
            hint="amounts are non-negative integers (uint256); no decimals or signs",
        )
    value = int(text.replace("_", ""))
    if value > UINT256_MAX:
        raise CommandError(f"bad amount {text!r}: larger than uint256")
    if value == 0 and not allow_zero:
        raise CommandError("bad amount 0: must be more than 0")
    return value


def check_user(name: str) -> str:
    if not name:
        raise CommandError("bad user name: must not be empty")
    if not utf8_fits(name, MAX_ARG_BYTES):
        raise CommandError(
            f"bad user name: longer than {MAX_ARG_BYTES} UTF-8 bytes (or not valid UTF-8)",
            hint="a non-ASCII character takes 2-4 bytes: '€' is 3",
        )
    return name


def parse_hash(text: str, what: str = "transaction hash") -> str:
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    if not re.fullmatch(r"[0-9a-fA-F]{64}", digits):
        raise CommandError(f"not a {what}: {text!r} (expected 0x and 64 hex digits)")
    return "0x" + digits.lower()


# ----------------------------------------------------------------------------- plumbing


def _signer(args: argparse.Namespace, chain: Chain | None) -> tuple[KeyPair, str]:
    if args.key:
        return accounts.load_key(Path(args.key)), args.key
    if chain is None:
        raise CommandError(
            "no chain directory to take the account from",
            hint="pass --key PATH (a secp256k1 PEM key) or --dir DIR (a chain from ledgerlab init)",
        )
    name = args.account or accounts.ADMIN
    return accounts.load_key(accounts.key_path(chain.accounts_dir, name)), name


def _rpc_failure(exc: Exception, label: str) -> CommandError:
    if isinstance(exc, RpcTransportError):
        return CommandError(
            f"lost the connection to {label}: {exc}",
            hint="is the node still running? ledgerlab status",
        )
    assert isinstance(exc, RpcError)
    hint = None
    if exc.code == ErrorCode.MembershipBreaksQuorum:
        hint = (
            "bring the missing nodes back first (ledgerlab sealers shows who is connected), "
            "or repeat with --force if you know they are coming"
        )
    return CommandError(f"{label} refused: {exc.message} (code {exc.code})", hint=hint)


def with_client(args: argparse.Namespace, fn: Callable[[RpcClient, Chain | None, str], int]) -> int:
    client, chain, label = connect(args)
    try:
        return fn(client, chain, label)
    except (RpcError, RpcTransportError) as exc:
        raise _rpc_failure(exc, label) from None
    finally:
        client.close()


def send(
    args: argparse.Namespace, to: str, method: str, call_args: Sequence[str | int], what: str
) -> int:
    """Sign and send one transaction; by default wait for its receipt and report it."""

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        keypair, who = _signer(args, chain)
        stx = client.build_tx(keypair, to, method, list(call_args))
        tx_hash = client.send_raw(stx.encoded, force=getattr(args, "force", False))
        if args.no_wait:
            if args.json:
                print_json({"transactionHash": tx_hash})
            else:
                console.print(f"sent {what} as {who} via {label}: tx {tx_hash}")
            return 0
        try:
            receipt = client.wait_for_receipt(tx_hash, args.timeout)
        except TimeoutError:
            raise CommandError(
                f"no receipt for {tx_hash} within {args.timeout:.0f} s",
                hint="the chain may be stalled (more than f sealers down?): ledgerlab status; "
                f"it may still commit: ledgerlab receipt {tx_hash}",
            ) from None
        code = _int(receipt.get("status", 0))
        block = _int(receipt.get("blockNumber", 0))
        if args.json:
            print_json(receipt)
            return 0 if code == 0 else 1
        if code != 0:
            hint = None
            if code == -50000:
                hint = "this account lacks the genesis role; see `ledgerlab accounts list`"
            raise CommandError(
                f"{what} failed: {describe_status(code)} in block {block}, tx {tx_hash}",
                hint=hint,
            )
        console.print(f"[green]ok[/] {what}: block {block}, tx {tx_hash}")
        return 0

    return with_client(args, run)


def add_tx_options(p: argparse.ArgumentParser) -> None:
    add_target(p)
    p.add_argument(
        "--account",
        default=None,
        metavar="NAME",
        help="sign with accounts/NAME.key of the chain (default admin)",
    )
    p.add_argument("--key", default=None, metavar="PATH", help="sign with this PEM key file")
    p.add_argument("--no-wait", action="store_true", help="print the tx hash without waiting")
    p.add_argument("--json", action="store_true", help="print the receipt as JSON")


# ----------------------------------------------------------------------------- asset


def cmd_asset_add(args: argparse.Namespace) -> int:
    user, amount = check_user(args.user), parse_amount(args.amount, allow_zero=True)
    call: list[str | int] = [user, amount]
    if args.owner is not None:
        try:
            owner = "0x" + parse_address(args.owner).hex()
        except ValueError:
            raise CommandError(
                f"bad owner {args.owner!r}: expected an account address (0x + 40 hex digits)",
                hint="`ledgerlab accounts new NAME` prints a new account's address",
            ) from None
        call.append(owner)
    return send(args, DAG_TRANSFER, "userAdd", call, f"userAdd {user} {amount}")


def cmd_asset_save(args: argparse.Namespace) -> int:
    user, amount = check_user(args.user), parse_amount(args.amount)
    return send(args, DAG_TRANSFER, "userSave", [user, amount], f"userSave {user} {amount}")


def cmd_asset_draw(args: argparse.Namespace) -> int:
    user, amount = check_user(args.user), parse_amount(args.amount)
    return send(args, DAG_TRANSFER, "userDraw", [user, amount], f"userDraw {user} {amount}")


def cmd_asset_transfer(args: argparse.Namespace) -> int:
    src, dst = check_user(args.src), check_user(args.dst)
    amount = parse_amount(args.amount)
    return send(
        args,
        DAG_TRANSFER,
        "userTransfer",
        [src, dst, amount],
        f"userTransfer {src} -> {dst} {amount}",
    )


def cmd_asset_balance(args: argparse.Namespace) -> int:
    user = check_user(args.user)

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        out = client.call(DAG_TRANSFER, "userBalance", [user])
        code = out["status"]
        if code == -51402:
            raise CommandError(
                f"unknown user {user!r}", hint=f"create it with: ledgerlab asset add {user} 100"
            )
        if code != 0:
            raise CommandError(f"userBalance {user} failed: {describe_status(code)}")
        values = out["values"] or [None]
        balance = values[0]
        if args.json:
            print_json({"user": user, "balance": balance, "blockNumber": out["block_number"]})
        else:
            console.print(f"{user}: {balance:,} (at block {out['block_number']})")
        return 0

    return with_client(args, run)


# ----------------------------------------------------------------------------- chain reads


def _node_label(chain: Chain | None, node_id: str) -> str:
    return (chain.name_of(node_id) if chain else None) or node_id[:16] + "…"


def cmd_block(args: argparse.Namespace) -> int:
    which = args.block

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        try:
            if which == "latest":
                block = client.get_block(client.block_number(), args.txs)
            elif which.isdigit():
                block = client.get_block(int(which), args.txs)
            else:
                block = client.get_block(parse_hash(which, "block number or hash"), args.txs)
        except RpcError as exc:
            if exc.reason in ("BlockNumberNotFound", "BlockHashNotFound"):
                head = client.block_number()
                raise CommandError(f"no block {which} (the head is block {head})") from None
            raise
        if args.json:
            print_json(block)
            return 0
        _render_block(block, chain)
        return 0

    if not (args.block == "latest" or args.block.isdigit()):
        parse_hash(args.block, "block number or hash")
    return with_client(args, run)


def _when(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="milliseconds")


def _render_block(block: dict[str, Any], chain: Chain | None) -> None:
    txs = block.get("transactions", [])
    sealer = _int(block.get("sealer", 0))
    sealer_list = block.get("sealerList", [])
    sealer_name = (
        _node_label(chain, sealer_list[sealer]) if sealer < len(sealer_list) else str(sealer)
    )
    table = Table(show_header=False, title=f"block {_int(block['number'])}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("hash", block["hash"]),
        ("parent", block["parentHash"]),
        ("timestamp", _when(_int(block["timestamp"]))),
        ("sealer", f"{sealer_name} (index {sealer})"),
        ("transactions", str(len(txs))),
        ("state root", block["stateRoot"]),
        ("tx root", block["transactionsRoot"]),
        ("receipt root", block["receiptsRoot"]),
        ("signatures", f"{len(block.get('signatureList', []))} of {len(sealer_list)} sealers"),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    shown = txs[:20]
    for tx in shown:
        if isinstance(tx, dict):
            console.print(f"  {tx['hash']}  {_describe_call(tx)}")
        else:
            console.print(f"  {tx}")
    if len(txs) > len(shown):
        console.print(f"  … and {len(txs) - len(shown)} more (--json for all)")


def _describe_call(tx: dict[str, Any]) -> str:
    to = PRECOMPILE_NAMES.get(str(tx.get("to", "")).lower(), tx.get("to", "?"))
    args = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in tx.get("args", []))
    return f"{to}.{tx.get('method', '?')}({args})"


def cmd_tx(args: argparse.Namespace) -> int:
    tx_hash = parse_hash(args.hash)

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        tx = client.tx(tx_hash)
        if tx is None:
            raise CommandError(
                f"no transaction {tx_hash} on {label} (neither committed nor pending)"
            )
        if args.json:
            print_json(tx)
            return 0
        number = tx.get("blockNumber")
        where = (
            f"block {_int(number)}, index {_int(tx.get('transactionIndex') or 0)}"
            if number is not None
            else "pending in the txpool"
        )
        table = Table(show_header=False, title="transaction", title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for k, v in (
            ("hash", tx["hash"]),
            ("call", _describe_call(tx)),
            ("from", tx["from"]),
            ("to", tx["to"]),
            ("where", where),
            ("nonce", str(tx["nonce"])),
            ("block limit", str(_int(tx["blockLimit"]))),
            ("chain / group", f"{tx['chainId']} / {tx['groupId']}"),
        ):
            table.add_row(k, v)
        console.print(table)
        return 0

    return with_client(args, run)


def cmd_receipt(args: argparse.Namespace) -> int:
    tx_hash = parse_hash(args.hash)

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        receipt = client.receipt(tx_hash)
        if receipt is None:
            pending = client.tx(tx_hash)
            if pending is not None:
                raise CommandError(f"{tx_hash} is still pending: no receipt yet")
            raise CommandError(f"no receipt for {tx_hash} on {label}: unknown transaction")
        if args.json:
            print_json(receipt)
            return 0
        code = _int(receipt["status"])
        output = bytes.fromhex(str(receipt.get("output", "0x"))[2:])
        try:
            decoded = ", ".join(str(v) for v in decode_values(output)) if output else ""
        except ValueError:
            decoded = receipt.get("output", "")
        table = Table(
            show_header=False,
            title=f"receipt of {receipt['transactionHash']}",
            title_justify="left",
        )
        table.add_column(style="bold")
        table.add_column()
        style = "green" if code == 0 else "red"
        for k, v in (
            ("status", f"[{style}]{code} ({status_text(code)})[/]"),
            ("block", f"{_int(receipt['blockNumber'])} ({receipt['blockHash']})"),
            ("index", str(_int(receipt["transactionIndex"]))),
            ("from", receipt["from"]),
            ("to", f"{receipt['to']} ({PRECOMPILE_NAMES.get(receipt['to'].lower(), 'contract')})"),
            ("output", decoded or "-"),
            ("events", str(len(receipt.get("logs", [])))),
        ):
            table.add_row(k, v)
        console.print(table)
        return 0

    return with_client(args, run)


# ----------------------------------------------------------------------------- config


def _check_key(key: str) -> str:
    if key not in SYSTEM_CONFIG_BOUNDS:
        raise CommandError(
            f"unknown system config key {key!r}",
            hint="keys: " + ", ".join(SYSTEM_CONFIG_BOUNDS),
        )
    return key


def cmd_config_get(args: argparse.Namespace) -> int:
    key = _check_key(args.config_key)

    def run(client: RpcClient, chain: Chain | None, label: str) -> int:
        value = client.system_config(key)
        if args.json:
            print_json({key: value})
        else:
            console.print(f"{key} = {value}")
        return 0

    return with_client(args, run)


def cmd_config_set(args: argparse.Namespace) -> int:
    key = _check_key(args.config_key)
    lo, hi = SYSTEM_CONFIG_BOUNDS[key]
    if not args.value.isdigit() or not lo <= int(args.value) <= hi:
        raise CommandError(
            f"bad value {args.value!r} for {key}: expected a whole number in {lo}..{hi}"
        )
    return send(
        args,
        SYSTEM_CONFIG,
        "setValueByKey",
        [key, str(int(args.value))],
        f"setValueByKey {key} {int(args.value)}",
    )


# ----------------------------------------------------------------------------- accounts


def cmd_accounts_new(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    name = args.name
    if name is None:
        existing = {n for n, _ in accounts.list_accounts(chain.accounts_dir)}
        i = 1
        while f"account{i}" in existing:
            i += 1
        name = f"account{i}"
    keypair = accounts.new_account(chain.accounts_dir, name)
    path = accounts.key_path(chain.accounts_dir, name)
    if args.json:
        print_json({"name": name, "address": "0x" + keypair.address.hex(), "key": str(path)})
    else:
        console.print(f"account {name}: address 0x{keypair.address.hex()}  (key {path}, mode 0600)")
        console.print(f"use it with: ledgerlab asset add bob 100 --account {name}")
    return 0


def cmd_accounts_list(args: argparse.Namespace) -> int:
    chain = open_chain(args)
    genesis = chain.genesis()
    rows: list[dict[str, Any]] = []
    for name, kp in accounts.list_accounts(chain.accounts_dir):
        roles = []
        if kp.address in genesis.governors:
            roles.append("governor")
        if kp.address in genesis.asset_admins:
            roles.append("asset admin")
        rows.append({"name": name, "address": "0x" + kp.address.hex(), "roles": roles})
    if args.json:
        print_json(rows)
        return 0
    table = Table(title=f"accounts in {chain.accounts_dir}", title_justify="left")
    table.add_column("name")
    table.add_column("address")
    table.add_column("roles")
    for r in rows:
        table.add_row(r["name"], r["address"], ", ".join(r["roles"]) or "-")
    console.print(table)
    return 0


# ----------------------------------------------------------------------------- register


def _group(sub: Any, name: str, help: str) -> Any:
    p = sub.add_parser(name, help=help, description=help)
    inner = p.add_subparsers(dest=f"{name}_verb", metavar="VERB")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return inner


_JSON = arg("--json", action="store_true", help="print JSON")
_NODE_JSON = arg("--json", action="store_true", help="print the node's JSON")
_USER, _AMOUNT = arg("user"), arg("amount")
_CONFIG_KEY = arg(
    "config_key", metavar="KEY", help="tx_count_limit | consensus_timeout | leader_period"
)

ASSET_VERBS: tuple[Verb, ...] = (
    Verb(
        "add",
        "create a user with an initial balance (userAdd)",
        "ledgerlab asset add alice 1000",
        cmd_asset_add,
        (
            _USER,
            _AMOUNT,
            arg(
                "--owner",
                metavar="ADDRESS",
                help="permissioned chains: the account that may draw and transfer "
                "(default: signer)",
            ),
            add_tx_options,
        ),
    ),
    Verb(
        "save",
        "add to a user's balance, creating the user if missing (userSave)",
        "ledgerlab asset save alice 50",
        cmd_asset_save,
        (_USER, _AMOUNT, add_tx_options),
    ),
    Verb(
        "draw",
        "take from a user's balance (userDraw)",
        "ledgerlab asset draw alice 20",
        cmd_asset_draw,
        (_USER, _AMOUNT, add_tx_options),
    ),
    Verb(
        "transfer",
        "move an amount between users (userTransfer)",
        "ledgerlab asset transfer alice bob 10",
        cmd_asset_transfer,
        (arg("src", metavar="FROM"), arg("dst", metavar="TO"), _AMOUNT, add_tx_options),
    ),
    Verb(
        "balance",
        "a user's balance (userBalance, read-only call)",
        "ledgerlab asset balance alice\nledgerlab asset balance alice --json",
        cmd_asset_balance,
        (_USER, add_target, _JSON),
    ),
)

READ_VERBS: tuple[Verb, ...] = (
    Verb(
        "block",
        "show a block by number, 'latest' or hash",
        "ledgerlab block\nledgerlab block 12 --txs\nledgerlab block latest --json",
        cmd_block,
        (
            arg("block", nargs="?", default="latest", metavar="N|latest|HASH"),
            arg("--txs", action="store_true", help="include full transactions"),
            add_target,
            _NODE_JSON,
        ),
    ),
    Verb(
        "tx",
        "show a transaction (committed or pending)",
        "ledgerlab tx 0x3f…",
        cmd_tx,
        (arg("hash"), add_target, _NODE_JSON),
    ),
    Verb(
        "receipt",
        "show a transaction receipt",
        "ledgerlab receipt 0x3f… --json",
        cmd_receipt,
        (arg("hash"), add_target, _NODE_JSON),
    ),
)

CONFIG_VERBS: tuple[Verb, ...] = (
    Verb(
        "get",
        "read a system config value",
        "ledgerlab config get tx_count_limit",
        cmd_config_get,
        (_CONFIG_KEY, add_target, _JSON),
    ),
    Verb(
        "set",
        "change a system config value (a governor transaction; applies from the next block)",
        "ledgerlab config set tx_count_limit 2000",
        cmd_config_set,
        (_CONFIG_KEY, arg("value"), add_tx_options),
    ),
)

ACCOUNT_VERBS: tuple[Verb, ...] = (
    Verb(
        "new",
        "create an account key (secp256k1, mode 0600)",
        "ledgerlab accounts new\nledgerlab accounts new carol",
        cmd_accounts_new,
        (
            arg("name", nargs="?", default=None, help="account name (default accountN)"),
            add_dir,
            _JSON,
        ),
    ),
    Verb(
        "list",
        "list the chain's accounts and their genesis roles",
        "ledgerlab accounts list",
        cmd_accounts_list,
        (add_dir, _JSON),
    ),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    asset_help = "DagTransfer assets (precompile 0x5002): add, save, draw, transfer, balance"
    add_verbs(_group(sub, "asset", asset_help), ASSET_VERBS)
    add_verbs(sub, READ_VERBS)
    add_verbs(_group(sub, "config", "system config (precompile 0x1000): get, set"), CONFIG_VERBS)
    accounts_help = "client accounts of the chain (keys in <dir>/accounts)"
    add_verbs(_group(sub, "accounts", accounts_help), ACCOUNT_VERBS)
