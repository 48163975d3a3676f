"""Commit deterministic blocks forever; test_crash.py kills this process with SIGKILL.

    python tests/storage/crash_writer.py <store dir> <backend>

Block ``n`` is a pure function of ``n`` and the state before it: up to 40 transfers
between 64 accounts (a failed transfer is reverted with mark/revert, an emptied account
is deleted), a transfer counter, a meta record, and block bytes of 1-20 KB. Resuming
after a kill continues from whatever head the store recovered, so the test can replay
blocks ``0..head`` in memory and demand the same bytes.
"""

from __future__ import annotations

import hashlib
import random
import sys

from storage import (
    GENESIS_STATE_ROOT,
    BlockCommit,
    LedgerStore,
    StateOverlay,
    StateReader,
    next_state_root,
    open_store,
)

ACCOUNTS = 64
START_BALANCE = 1_000
COUNTER = b"stats/transfers"
META = "writer/last"


def _h(*parts: object) -> bytes:
    return hashlib.sha3_256(repr(parts).encode()).digest()


def _account(i: int) -> bytes:
    return b"balance/%02d" % i


def _int(raw: bytes | None, default: int) -> int:
    return default if raw is None else int(raw)


def build_block(state: StateReader, number: int, parent_root: bytes) -> BlockCommit:
    rng = random.Random(number)
    overlay = StateOverlay(state)
    tx_hashes, receipts = [], []
    for i in range(rng.randrange(0, 41)):
        mark = overlay.mark()
        src, dst = rng.sample(range(ACCOUNTS), 2)
        amount = rng.randrange(1, 400)
        src_balance = _int(overlay.get(_account(src)), START_BALANCE) - amount
        dst_balance = _int(overlay.get(_account(dst)), START_BALANCE) + amount
        overlay.put(_account(dst), b"%d" % dst_balance)
        if src_balance < 0:
            overlay.revert(mark)  # a failed transaction leaves no writes
            status = b"insufficient"
        else:
            if src_balance == 0:
                overlay.delete(_account(src))
            else:
                overlay.put(_account(src), b"%d" % src_balance)
            overlay.put(COUNTER, b"%d" % (_int(overlay.get(COUNTER), 0) + 1))
            status = b"ok"
        tx_hashes.append(_h("tx", number, i))
        receipts.append(b"%d/%d/%s" % (number, i, status))
    writes = overlay.write_set()
    root = next_state_root(parent_root, writes)
    return BlockCommit(
        number=number,
        block_hash=_h("block", number, root),
        block=rng.randbytes(rng.randrange(1_000, 20_000)),
        tx_hashes=tx_hashes,
        receipts=receipts,
        state_writes=writes,
        state_root=root,
        meta=[(META, b"%d" % number)],
    )


def next_block(ledger: LedgerStore) -> BlockCommit:
    head = ledger.head()
    number, root = (0, GENESIS_STATE_ROOT) if head is None else (head.number + 1, head.state_root)
    return build_block(ledger.state, number, root)


def main() -> None:
    path, backend = sys.argv[1], sys.argv[2]
    ledger = LedgerStore(open_store(path, backend, sync=True))
    print("ready", flush=True)  # recovered: the test times its kill from here
    while True:
        ledger.commit_block(next_block(ledger))


if __name__ == "__main__":
    main()
