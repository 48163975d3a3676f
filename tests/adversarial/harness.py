"""A live multi-process chain driven the way an outside integrator would drive it.

The chain is made and started with the documented CLI (``ledgerlab init`` / ``up`` /
``down``, run as ``sys.executable -m scripts`` with this checkout first on PYTHONPATH, so
the node processes run the code under test, whatever tree that is). Everything after
that goes through the documented doors only: JSON-RPC over plain ``http.client``
(docs/rpc.md), raw transactions built byte by byte as docs/wire-format.md describes
them, and raw sockets on the P2P port (docs/p2p.md).

:meth:`LiveChain.assert_live` is the check every adversarial case ends with: a fresh
transfer commits on every node within 2 x ``consensus_timeout`` and every node then has
the same head hash and state root. A failure carries the WARNING/ERROR lines of every
node's log, so a report can quote them.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from consensus.crypto import KeyPair
from scripts.launcher import procs
from scripts.launcher.layout import is_chain, load_chain

REPO = Path(__file__).resolve().parents[2]
DAG = bytes(18) + b"\x50\x02"  # 0x5002, left-padded to 20 bytes
GROUP = "group0"
CHAIN = "chain0"
SETTLE = 5.0  # seconds for idle nodes to agree on the head once the probe committed


def _limits() -> tuple[int, int, int, int]:
    """``(string arg bytes, name bytes, args, tx bytes)`` from node/ledger/tx.py.

    The byte-named constants are the contract (docs: UTF-8 bytes); older trees only had
    the character-named ones, with the same numbers.
    """
    import node.ledger.tx as tx

    arg = getattr(tx, "MAX_ARG_BYTES", None) or tx.MAX_ARG_CHARS
    name = getattr(tx, "MAX_NAME_BYTES", None) or tx.MAX_NAME_CHARS
    return int(arg), int(name), int(tx.MAX_ARGS), int(tx.MAX_TX_SIZE)


MAX_ARG_BYTES, MAX_NAME_BYTES, MAX_ARGS, MAX_TX_SIZE = _limits()

# JSON-RPC / txpool codes, docs/rpc.md "Error codes".
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REQUEST_TOO_LARGE = -32000
BATCH_TOO_LARGE = -32001
GROUP_NOT_FOUND = -40001
NONCE_CHECK_FAIL = 10000
BLOCK_LIMIT_CHECK_FAIL = 10001
TXPOOL_IS_FULL = 10002
MALFORMED = 10003
ALREADY_KNOWN = 10004
ALREADY_IN_CHAIN = 10005
INVALID_CHAIN_ID = 10006
INVALID_GROUP_ID = 10007
INVALID_SIGNATURE = 10008
QUARANTINED = 10009  # the node's own execution bug hit this tx (docs/node.md)
TXPOOL_CODES = frozenset(range(10000, 10010))


def hash32(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def u256(value: int) -> bytes:
    """A uint256 argument in its wire form: exactly 32 big-endian bytes."""
    return value.to_bytes(32, "big")


def wire_args(args: Sequence[str | int | bytes]) -> list[Any]:
    return [u256(a) if type(a) is int else a for a in args]


def sign_body(key: KeyPair, fields: list[Any]) -> bytes:
    """Signed transaction bytes for an 8-field body, exactly as docs/wire-format.md says:
    ``0x99`` + the body without its ``0x98`` header + ``c4 41`` + signature."""
    body = msgpack.packb(fields, use_bin_type=True)
    assert body[0] == 0x98, body[:1]
    return b"\x99" + body[1:] + b"\xc4\x41" + key.sign(hash32(body))


@dataclass(frozen=True)
class Sent:
    """A transaction we signed: its raw bytes and ``0x`` hash."""

    raw: bytes
    nonce: str

    @property
    def hash(self) -> str:
        return "0x" + hash32(self.raw).hex()

    @property
    def hex(self) -> str:
        return "0x" + self.raw.hex()


class RpcFailure(AssertionError):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"JSON-RPC error {error}")
        self.error = error
        self.code = error.get("code")


def cli(*args: str, cwd: Path, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """``ledgerlab ARGS`` as a user runs it, with this checkout's code."""
    env = {k: v for k, v in os.environ.items() if k != "LEDGERLAB_DIR"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "scripts", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Http:
    """One keep-alive HTTP connection to a node's JSON-RPC door."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def connect(self) -> None:
        self.conn.connect()

    def post(self, body: bytes | str) -> tuple[int, Any]:
        """``(HTTP status, decoded JSON body or None)``."""
        data = body.encode() if isinstance(body, str) else body
        try:
            self.conn.request("POST", "/", body=data, headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            payload = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
        return resp.status, (json.loads(payload) if payload else None)

    def close(self) -> None:
        self.conn.close()


class LiveChain:
    """A 4-sealer TCP chain in ``root``, started with ``ledgerlab up``."""

    def __init__(self, root: Path, *, nodes: int = 4, txpool_capacity: int | None = None) -> None:
        self.root = root
        self.n = nodes
        self.txpool_capacity = txpool_capacity
        self.key = KeyPair.generate()  # an integrator's own account (open mode)
        self.broken: str | None = None
        self._probe = itertools.count()
        self._timeout: float | None = None
        self.p2p_ports: list[int] = []
        self.rpc_ports: list[int] = []

    # -- lifecycle -----------------------------------------------------------------------

    def create(self) -> None:
        p2p = procs.free_port_base(self.n)
        rpc = procs.free_port_base(self.n, avoid=range(p2p, p2p + self.n))
        self.p2p_ports = [p2p + i for i in range(self.n)]
        self.rpc_ports = [rpc + i for i in range(self.n)]
        self.root.parent.mkdir(parents=True, exist_ok=True)
        res = cli(
            "init", "--nodes", str(self.n), "--dir", str(self.root),
            "--p2p-port", str(p2p), "--rpc-port", str(rpc), cwd=self.root.parent,
        )  # fmt: skip
        assert res.returncode == 0, (res.stdout, res.stderr)
        if self.txpool_capacity is not None:  # docs/node.md: [txpool] capacity
            for i in range(self.n):
                cfg = self.root / f"node{i}" / "config.toml"
                text = cfg.read_text()
                assert "capacity = 150000" in text, text
                cfg.write_text(
                    text.replace("capacity = 150000", f"capacity = {self.txpool_capacity}")
                )

    def up(self) -> None:
        res = cli("up", "--dir", str(self.root), cwd=self.root.parent)
        assert res.returncode == 0, (res.stdout, res.stderr)
        self.wait_peers()

    def down(self) -> None:
        with contextlib.suppress(Exception):
            cli("down", "--dir", str(self.root), cwd=self.root.parent, timeout=60)
        if is_chain(self.root):  # whatever `down` left, by pid file
            procs.stop_nodes(load_chain(self.root).nodes, timeout=10.0)

    def start(self) -> LiveChain:
        self.create()
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def wait_peers(self, timeout: float = 20.0) -> None:
        def connected() -> bool:
            return all(len(self.result(i, "getPeers")) == self.n - 1 for i in range(self.n))

        wait_for(connected, timeout, "every node sees every other node")

    # -- JSON-RPC ------------------------------------------------------------------------

    def post(self, i: int, body: bytes | str, timeout: float = 10.0) -> tuple[int, Any]:
        h = Http(self.rpc_ports[i], timeout)
        try:
            return h.post(body)
        finally:
            h.close()

    def rpc(self, i: int, method: str, *params: Any, group: Any = GROUP) -> dict[str, Any]:
        """The whole JSON-RPC answer object of one call to node ``i``."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": [group, *params]}
        status, answer = self.post(i, json.dumps(body))
        assert status == 200 and isinstance(answer, dict), (status, answer)
        return answer

    def result(self, i: int, method: str, *params: Any) -> Any:
        answer = self.rpc(i, method, *params)
        if "error" in answer:
            raise RpcFailure(answer["error"])
        return answer["result"]

    def height(self, i: int) -> int:
        return int(self.result(i, "getBlockNumber"), 16)

    def head(self, i: int) -> tuple[int, str, str]:
        block = self.result(i, "getBlockByNumber", "latest", False)
        return int(block["number"], 16), block["hash"], block["stateRoot"]

    def consensus_timeout(self) -> float:
        if self._timeout is None:
            self._timeout = float(self.result(0, "getSystemConfigByKey", "consensus_timeout"))
        return self._timeout

    def receipt(self, i: int, tx_hash: str) -> dict[str, Any] | None:
        return self.result(i, "getTransactionReceipt", tx_hash)  # type: ignore[no-any-return]

    def balance(self, i: int, user: str) -> tuple[int, int | None]:
        """``(status, balance or None)`` of DagTransfer ``userBalance`` on node ``i``."""
        out = self.result(i, "call", {"to": "0x5002", "method": "userBalance", "args": [user]})
        status = int(out["status"], 16)
        raw = bytes.fromhex(out["output"][2:])
        if status != 0:
            return status, None
        values = msgpack.unpackb(raw)
        return status, int.from_bytes(values[0], "big")

    def send(self, i: int, tx: Sent | bytes) -> dict[str, Any]:
        raw = tx.raw if isinstance(tx, Sent) else tx
        return self.rpc(i, "sendRawTransaction", "0x" + raw.hex())

    def send_ok(self, i: int, tx: Sent) -> str:
        answer = self.send(i, tx)
        assert answer.get("result") == tx.hash, (answer, self.log_excerpt())
        return tx.hash

    def send_batch(self, i: int, raws: Sequence[bytes], timeout: float = 30.0) -> list[Any]:
        body = [
            {"jsonrpc": "2.0", "id": k, "method": "sendRawTransaction",
             "params": [GROUP, "0x" + raw.hex()]}
            for k, raw in enumerate(raws)
        ]  # fmt: skip
        status, answers = self.post(i, json.dumps(body), timeout=timeout)
        assert status == 200 and isinstance(answers, list), (status, answers)
        by_id = {a["id"]: a for a in answers}
        return [by_id[k] for k in range(len(raws))]

    # -- transactions --------------------------------------------------------------------

    def tx(
        self,
        method: str,
        args: Sequence[str | int | bytes],
        *,
        nonce: str | None = None,
        block_limit: int | None = None,
        chain_id: str = CHAIN,
        group_id: str = GROUP,
        to: bytes = DAG,
        key: KeyPair | None = None,
        head: int | None = None,
    ) -> Sent:
        """A signed DagTransfer call (block limit head + 500, as the SDKs do)."""
        nonce = secrets.token_hex(16) if nonce is None else nonce
        if block_limit is None:
            block_limit = (self.height(0) if head is None else head) + 500
        raw = sign_body(
            key or self.key,
            [0, chain_id, group_id, nonce, block_limit, to, method, wire_args(args)],
        )
        return Sent(raw, nonce)

    # -- the checks every case ends with -------------------------------------------------

    def wait_committed(
        self, hashes: Sequence[str], timeout: float, what: str
    ) -> dict[str, dict[str, Any]]:
        """Until every hash has a receipt on every node; the receipts (node 0's)."""
        found: dict[tuple[int, str], dict[str, Any]] = {}

        def done() -> bool:
            for i in range(self.n):
                for h in hashes:
                    if (i, h) not in found:
                        rc = self.receipt(i, h)
                        if rc is None:
                            return False
                        found[(i, h)] = rc
            return True

        wait_for(done, timeout, what, self)
        return {h: found[(0, h)] for h in hashes}

    def assert_same_head(self, timeout: float = SETTLE) -> tuple[int, str, str]:
        """Every node at the same height, with the same block hash and state root."""
        heads: list[tuple[int, str, str]] = []

        def agree() -> bool:
            heads[:] = [self.head(i) for i in range(self.n)]
            return len(set(heads)) == 1

        wait_for(agree, timeout, "identical heads and state roots", self, lambda: f"{heads}")
        return heads[0]

    def assert_live(self, context: str = "") -> tuple[int, str, str]:
        """A fresh transfer commits on every node within 2 x consensus_timeout, and every
        node then has the same head hash and state root."""
        budget = 2 * self.consensus_timeout()
        n = next(self._probe)
        probe = self.tx("userSave", [f"probe-{secrets.token_hex(4)}", 1 + n])
        start = time.monotonic()
        try:
            answer = self.send(n % self.n, probe)
            if answer.get("result") != probe.hash:
                raise AssertionError(f"the probe transfer was refused: {answer}")
            receipts = self.wait_committed(
                [probe.hash], budget - (time.monotonic() - start),
                f"a fresh transfer to commit on every node within {budget:.0f} s",
            )  # fmt: skip
            assert receipts[probe.hash]["status"] == "0x0", receipts
            return self.assert_same_head()
        except (AssertionError, OSError, http.client.HTTPException) as exc:
            self.broken = f"{context}: {exc}"
            if isinstance(exc, AssertionError) and "node logs" in str(exc):
                raise
            raise AssertionError(f"{context}: {exc}\n{self.log_excerpt()}") from exc

    # -- logs ----------------------------------------------------------------------------

    def log_excerpt(self, per_node: int = 8) -> str:
        """The last WARNING/ERROR lines (and exception lines) of every node's log."""
        out = ["node logs (WARNING/ERROR, newest last):"]
        for i in range(self.n):
            path = self.root / f"node{i}" / "log" / "node.log"
            try:
                lines = path.read_text(errors="replace").splitlines()
            except OSError as exc:
                out.append(f"  node{i}: no log ({exc})")
                continue
            picked = [
                line
                for line in lines
                if " ERROR " in line
                or " WARNING " in line
                or (line[:1] not in (" ", "") and ("Error:" in line or "Exception:" in line))
            ]
            out.append(f"  node{i}: {self._state(i)}; {len(picked)} line(s)")
            out += [f"    {line[:300]}" for line in picked[-per_node:]]
        return "\n".join(out)

    def _state(self, i: int) -> str:
        """Height, view, view changes and pending txs as node ``i`` reports them."""
        try:
            status = self.result(i, "getConsensusStatus")
            pending = int(self.result(i, "getPendingTxSize"), 16)
        except (OSError, http.client.HTTPException, AssertionError) as exc:
            return f"no answer ({exc!r:.80})"
        return (
            f"height {status.get('blockNumber')} view {status.get('currentView')} "
            f"viewChanges {status.get('viewChanges')} pending {pending}"
        )


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    chain: LiveChain | None = None,
    detail: Callable[[], str] | None = None,
) -> None:
    __tracebackhide__ = True
    deadline = time.monotonic() + max(timeout, 0.0)
    last: BaseException | None = None
    while True:
        try:
            if predicate():
                return
        except (OSError, http.client.HTTPException, RpcFailure) as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    msg = f"timed out after {timeout:.1f} s waiting for {what}"
    if detail is not None:
        msg += f" ({detail()})"
    if last is not None:
        msg += f" (last error: {last!r})"
    if chain is not None:
        msg += "\n" + chain.log_excerpt()
    raise AssertionError(msg)


def send_at_once(chain: LiveChain, x: Sent, y: Sent, *others: Sent) -> dict[int, dict[str, Any]]:
    """``x`` to nodes 0 and 2, ``y`` to nodes 1 and 3 (or with ``others``: node i gets the
    i-th of ``x, y, *others``), released by one barrier over connections opened
    beforehand; each node's answer."""
    per_node = [x, y, *others] if others else [x, y, x, y]
    conns = [Http(port) for port in chain.rpc_ports]
    for c in conns:
        c.connect()
    barrier = threading.Barrier(len(conns))
    answers: dict[int, dict[str, Any]] = {}

    def one(i: int) -> None:
        tx = per_node[i]
        body = (
            '{"jsonrpc":"2.0","id":1,"method":"sendRawTransaction",'
            f'"params":["group0","{tx.hex}"]}}'
        )
        barrier.wait()
        answers[i] = conns[i].post(body)[1]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    for c in conns:
        c.close()
    return answers


class ChainKeeper:
    """One chain for a whole module, replaced by a fresh one after a case broke it (so a
    halt is reported by the case that caused it, not by every case after it)."""

    def __init__(self, base: Path, **kw: Any) -> None:
        self.base = base
        self.kw = kw
        self.chain: LiveChain | None = None
        self.generation = 0
        self.retired: list[Path] = []

    def healthy(self) -> LiveChain:
        if self.chain is not None and self.chain.broken is not None:
            self.chain.down()
            self.retired.append(self.chain.root)
            self.chain = None
        if self.chain is None:
            self.generation += 1
            self.chain = LiveChain(self.base / f"chain{self.generation}", **self.kw).start()
        return self.chain

    def close(self) -> None:
        if self.chain is not None:
            self.chain.down()


@contextlib.contextmanager
def background_load(
    chain: LiveChain, *, interval: float = 0.05, users: int = 20
) -> Iterator[list[str]]:
    """Ordinary transfers to every node in turn while the block runs; yields the hashes
    the nodes accepted (so the caller can wait for them)."""
    accepted: list[str] = []
    stop = threading.Event()
    rng = random.Random(7)
    errors: list[BaseException] = []

    def run() -> None:
        k = 0
        try:
            head = chain.height(0)
            while not stop.is_set():
                tx = chain.tx("userSave", [f"bg{rng.randrange(users)}", 1 + k], head=head)
                answer = chain.send(k % chain.n, tx)
                if answer.get("result") == tx.hash:
                    accepted.append(tx.hash)
                k += 1
                if k % 20 == 0:
                    head = chain.height(0)
                stop.wait(interval)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    thread = threading.Thread(target=run, name="background-load", daemon=True)
    thread.start()
    try:
        yield accepted
    finally:
        stop.set()
        thread.join(10)
    if errors:
        raise AssertionError(f"background load failed: {errors[0]!r}")
