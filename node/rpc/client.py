"""A small JSON-RPC client for ledgerlab nodes (and FISCO BCOS-style 2.x endpoints).

:class:`AsyncRpcClient` keeps one HTTP/1.1 keep-alive connection on asyncio streams and
sends one request at a time over it (open several clients for parallel load).
:class:`RpcClient` is the same API for synchronous code (CLI verbs, scripts): it drives
an :class:`AsyncRpcClient` on a private event loop, so it must not be used from inside a
running event loop -- use the async client there.

Errors: a JSON-RPC error answer raises :class:`RpcError` (``code``, ``message``,
``data``, ``reason``); failing to reach the node or a broken HTTP answer raises
:class:`RpcTransportError`.

Results keep the node's JSON shapes (docs/rpc.md) except where a helper says otherwise:
numbers that the node sends as ``0x`` hex come back as ``int`` from the scalar helpers
(``block_number()``, ``pending_tx_size()``, ...), and tx hashes are ``0x`` strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from consensus.crypto import KeyPair
from node.ledger.accounts import parse_address
from node.ledger.tx import Arg, SignedTransaction, Transaction, decode_values
from node.rpc.calldata import encode_call
from node.rpc.errors import ErrorCode, RpcError

__all__ = [
    "DAG_TRANSFER",
    "AsyncRpcClient",
    "CallOutput",
    "ErrorCode",
    "RpcClient",
    "RpcError",
    "RpcTransportError",
]

T = TypeVar("T")
DAG_TRANSFER = parse_address("0x5002")
DEFAULT_BLOCK_LIMIT_MARGIN = 500  # what FISCO BCOS SDKs add to the head
DEFAULT_BATCH_CHUNK = 2000
MAX_RESPONSE = 256 * 1024 * 1024


class RpcTransportError(ConnectionError):
    """The node could not be reached, or its HTTP answer was not a JSON-RPC answer."""


def _hex(value: bytes | str) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return "0x" + value[2:] if value[:2] in ("0x", "0X") else "0x" + value  # servers read 0x
    raise TypeError(f"expected bytes or a hex string, got {type(value).__name__}")


def _int(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value, 16) if value[:2] in ("0x", "-0") else int(value)
    raise RpcTransportError(f"expected a number in the answer, got {value!r}")


class CallOutput(dict[str, Any]):
    """A ``call`` result: ``status`` (int), ``output`` (bytes), ``block_number`` (int),
    and ``values``: the output decoded as strings/uint256 numbers when it is in that form
    (``None`` otherwise)."""


def _error_from(error: Any) -> RpcError:
    """An :class:`RpcError` from a response's ``error`` member, whatever it holds."""
    if not isinstance(error, dict):
        return RpcError(ErrorCode.InternalError, f"malformed error object {error!r:.200}")
    code = error.get("code")
    message = error.get("message")
    return RpcError(
        code if type(code) is int else ErrorCode.InternalError,
        message if isinstance(message, str) else None,
        error.get("data"),
    )


def _call_output(result: dict[str, Any]) -> CallOutput:
    output = bytes.fromhex(str(result.get("output", "0x"))[2:])
    try:
        values: Any = list(decode_values(output, max_items=64)) if output else []
    except ValueError:
        values = None
    return CallOutput(
        status=_int(result.get("status", 0)),
        output=output,
        block_number=_int(result.get("currentBlockNumber", 0)),
        values=values,
    )


class AsyncRpcClient:
    """JSON-RPC over one keep-alive HTTP connection. ``async with AsyncRpcClient(...)``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 20200,
        *,
        group: str | int = "group0",
        timeout: float = 10.0,
    ) -> None:
        """``group`` is sent as the first param of every group method."""
        self.host = host
        self.port = port
        self.group = group
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._chain_id: str | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AsyncRpcClient:
        """From ``http://host:port`` (or ``host:port``)."""
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {url!r}")
        return cls(parts.hostname, parts.port or 20200, **kwargs)

    async def __aenter__(self) -> AsyncRpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # -- transport -------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise RpcTransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from None

    async def post(self, body: bytes) -> bytes | None:
        """POST one body to ``/``; the answer body (None for 204 No Content).

        A request on a reused connection that the server had already closed is retried
        once on a fresh connection.
        """
        head = (
            f"POST / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        async with self._lock:
            for attempt in (0, 1):
                fresh = self._writer is None
                if fresh:
                    await self._connect()
                try:
                    async with asyncio.timeout(self.timeout):
                        assert self._writer is not None
                        self._writer.write(head + body)
                        await self._writer.drain()
                        status, keep, payload = await self._read_response()
                except TimeoutError:
                    await self.close()
                    raise RpcTransportError(f"no answer within {self.timeout} s") from None
                except RpcTransportError:
                    await self.close()
                    raise
                except (asyncio.LimitOverrunError, ValueError) as exc:
                    await self.close()
                    raise RpcTransportError(f"malformed HTTP answer: {exc}") from None
                except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
                    await self.close()
                    if fresh or attempt:
                        raise RpcTransportError(f"connection lost: {exc!r}") from None
                    continue
                if not keep:
                    await self.close()
                break
        if status == 204:
            return None
        if status != 200:
            try:
                answer = json.loads(payload)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "error" in answer:
                raise _error_from(answer["error"])
            raise RpcTransportError(f"HTTP {status}: {payload[:200]!r}")
        return payload

    async def _read_response(self) -> tuple[int, bool, bytes]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise RpcTransportError(f"not an HTTP answer: {lines[0][:80]!r}")
        status = int(parts[1])
        keep = parts[0] == b"HTTP/1.1"
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())  # ValueError -> RpcTransportError above
                if not 0 <= length <= MAX_RESPONSE:
                    raise RpcTransportError(f"answer of {length} bytes is too large")
            elif name == b"connection":
                token = value.strip().lower()
                keep = token != b"close" and (keep or token == b"keep-alive")
        if status == 100:
            return await self._read_response()
        body = await self._reader.readexactly(length) if length else b""
        return status, keep, body

    # -- JSON-RPC --------------------------------------------------------------------

    async def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        """Call one method; its ``result``, or :class:`RpcError`."""
        rid = next(self._ids)
        body = json.dumps(
            {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)},
            separators=(",", ":"),
        ).encode()
        payload = await self.post(body)
        if payload is None:
            raise RpcTransportError("the node sent no answer to a request with an id")
        try:
            answer = json.loads(payload)
        except ValueError:
            raise RpcTransportError(f"answer is not JSON: {payload[:200]!r}") from None
        if not isinstance(answer, dict):
            raise RpcTransportError(f"unexpected answer: {payload[:200]!r}")
        if "error" in answer:
            raise _error_from(answer["error"])
        return answer.get("result")

    async def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; per call its result or an :class:`RpcError`."""
        if not calls:
            return []
        first = next(self._ids)
        ids = range(first, first + len(calls))
        self._ids = itertools.count(first + len(calls))
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": rid, "method": m, "params": list(p)}
                for rid, (m, p) in zip(ids, calls, strict=True)
            ],
            separators=(",", ":"),
        ).encode()
        payload = await self.post(body) or b"null"
        try:
            answers = json.loads(payload)
        except ValueError:
            raise RpcTransportError(f"answer is not JSON: {payload[:200]!r}") from None
        if isinstance(answers, dict) and "error" in answers:  # the batch itself failed
            raise _error_from(answers["error"])
        if not isinstance(answers, list):
            raise RpcTransportError("a batch must be answered with a list")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        out: list[Any] = []
        for rid in ids:
            answer = by_id.get(rid)
            if answer is None:
                out.append(RpcTransportError(f"no answer for request {rid}"))
            elif "error" in answer:
                out.append(_error_from(answer["error"]))
            else:
                out.append(answer.get("result"))
        return out

    # -- chain reads -----------------------------------------------------------------

    async def client_version(self) -> dict[str, str]:
        return dict(await self.request("getClientVersion", []))

    async def chain_id(self) -> str:
        """The node's chain id (asked once, then remembered)."""
        if self._chain_id is None:
            self._chain_id = str((await self.client_version())["Chain Id"])
        return self._chain_id

    async def block_number(self) -> int:
        return _int(await self.request("getBlockNumber", [self.group]))

    async def get_block(self, block: int | str | bytes, full: bool = False) -> dict[str, Any]:
        """A block by number (int) or hash (32 bytes or a 0x hex string)."""
        if isinstance(block, int):
            return dict(await self.request("getBlockByNumber", [self.group, block, full]))
        return dict(await self.request("getBlockByHash", [self.group, _hex(block), full]))

    async def block_hash(self, number: int) -> str:
        return str(await self.request("getBlockHashByNumber", [self.group, number]))

    async def tx(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        result = await self.request("getTransactionByHash", [self.group, _hex(tx_hash)])
        return None if result is None else dict(result)

    async def receipt(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        result = await self.request("getTransactionReceipt", [self.group, _hex(tx_hash)])
        return None if result is None else dict(result)

    async def wait_for_receipt(
        self, tx_hash: bytes | str, timeout: float = 30.0, *, poll: float = 0.1
    ) -> dict[str, Any]:
        """Poll until the receipt exists; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = await self.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no receipt for {_hex(tx_hash)} within {timeout} s")
            await asyncio.sleep(poll)

    async def pbft_view(self) -> int:
        return _int(await self.request("getPbftView", [self.group]))

    async def sealers(self) -> list[str]:
        return list(await self.request("getSealerList", [self.group]))

    async def observers(self) -> list[str]:
        return list(await self.request("getObserverList", [self.group]))

    async def peers(self) -> list[dict[str, Any]]:
        return list(await self.request("getPeers", [self.group]))

    async def consensus_status(self) -> dict[str, Any]:
        return dict(await self.request("getConsensusStatus", [self.group]))

    async def sync_status(self) -> dict[str, Any]:
        return dict(await self.request("getSyncStatus", [self.group]))

    async def pending_tx_size(self) -> int:
        return _int(await self.request("getPendingTxSize", [self.group]))

    async def total_transaction_count(self) -> dict[str, int]:
        result = await self.request("getTotalTransactionCount", [self.group])
        return {k: _int(v) for k, v in dict(result).items()}

    async def system_config(self, key: str) -> str:
        return str(await self.request("getSystemConfigByKey", [self.group, key]))

    async def call(
        self,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        sender: str | bytes | None = None,
    ) -> CallOutput:
        """Run a precompile method read-only on the head state."""
        req: dict[str, Any] = {
            "to": _hex(parse_address(to)),
            "data": _hex(encode_call(method, args)),
        }
        if sender is not None:
            req["from"] = _hex(parse_address(sender))
        return _call_output(await self.request("call", [self.group, req]))

    # -- submission ------------------------------------------------------------------

    async def send_raw(self, raw: bytes) -> str:
        """Submit one signed transaction; its hash, or :class:`RpcError` (e.g. 10004)."""
        return str(await self.request("sendRawTransaction", [self.group, _hex(raw)]))

    async def send_raw_batch(
        self, raws: Sequence[bytes], *, chunk: int = DEFAULT_BATCH_CHUNK
    ) -> list[str | RpcError]:
        """Submit many transactions as JSON-RPC batches of ``chunk`` sendRawTransaction
        calls; per transaction its hash or the :class:`RpcError` that refused it."""
        out: list[str | RpcError] = []
        group = self.group
        for start in range(0, len(raws), chunk):
            part = raws[start : start + chunk]
            results = await self.batch(
                [("sendRawTransaction", [group, "0x" + r.hex()]) for r in part]
            )
            for r in results:
                if isinstance(r, Exception) and not isinstance(r, RpcError):
                    raise r
                out.append(r if isinstance(r, RpcError) else str(r))
        return out

    # -- transactions and the DagTransfer asset precompile ---------------------------

    async def build_tx(
        self,
        keypair: KeyPair,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        block_limit: int | None = None,
        nonce: str | None = None,
        group_id: str | None = None,
    ) -> SignedTransaction:
        """A signed transaction with ``block_limit = head + 500`` and a random nonce."""
        if block_limit is None:
            block_limit = await self.block_number() + DEFAULT_BLOCK_LIMIT_MARGIN
        tx = Transaction.build(
            chain_id=await self.chain_id(),
            group_id=str(self.group) if group_id is None else group_id,
            to=to,
            method=method,
            args=args,
            block_limit=block_limit,
            nonce=nonce,
        )
        return tx.sign(keypair)

    async def send_tx(
        self,
        keypair: KeyPair,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Build, sign and send; with ``wait`` the receipt, else ``{"transactionHash"}``."""
        stx = await self.build_tx(keypair, to, method, args)
        tx_hash = await self.send_raw(stx.encoded)
        if not wait:
            return {"transactionHash": tx_hash}
        return await self.wait_for_receipt(tx_hash, timeout)

    async def user_add(self, keypair: KeyPair, user: str, balance: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userAdd", [user, balance], **kw)

    async def user_save(self, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userSave", [user, amount], **kw)

    async def user_draw(self, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userDraw", [user, amount], **kw)

    async def user_transfer(
        self, keypair: KeyPair, src: str, dst: str, amount: int, **kw: Any
    ) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userTransfer", [src, dst, amount], **kw)

    async def user_balance(self, user: str) -> CallOutput:
        """``userBalance(user)`` as a call; ``values`` holds the decoded output."""
        return await self.call(DAG_TRANSFER, "userBalance", [user])


class RpcClient:
    """The synchronous twin of :class:`AsyncRpcClient` (same methods, same results)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 20200,
        *,
        group: str | int = "group0",
        timeout: float = 10.0,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = AsyncRpcClient(host, port, group=group, timeout=timeout)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RpcClient:
        parts = urlsplit(url if "//" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://host:port, got {url!r}")
        return cls(parts.hostname, parts.port or 20200, **kwargs)

    @property
    def group(self) -> str | int:
        return self._client.group

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._client.close())
            self._loop.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def request(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self._run(self._client.request(method, params))

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        return self._run(self._client.batch(calls))

    def client_version(self) -> dict[str, str]:
        return self._run(self._client.client_version())

    def chain_id(self) -> str:
        return self._run(self._client.chain_id())

    def block_number(self) -> int:
        return self._run(self._client.block_number())

    def get_block(self, block: int | str | bytes, full: bool = False) -> dict[str, Any]:
        return self._run(self._client.get_block(block, full))

    def block_hash(self, number: int) -> str:
        return self._run(self._client.block_hash(number))

    def tx(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        return self._run(self._client.tx(tx_hash))

    def receipt(self, tx_hash: bytes | str) -> dict[str, Any] | None:
        return self._run(self._client.receipt(tx_hash))

    def wait_for_receipt(
        self, tx_hash: bytes | str, timeout: float = 30.0, *, poll: float = 0.1
    ) -> dict[str, Any]:
        return self._run(self._client.wait_for_receipt(tx_hash, timeout, poll=poll))

    def pbft_view(self) -> int:
        return self._run(self._client.pbft_view())

    def sealers(self) -> list[str]:
        return self._run(self._client.sealers())

    def observers(self) -> list[str]:
        return self._run(self._client.observers())

    def peers(self) -> list[dict[str, Any]]:
        return self._run(self._client.peers())

    def consensus_status(self) -> dict[str, Any]:
        return self._run(self._client.consensus_status())

    def sync_status(self) -> dict[str, Any]:
        return self._run(self._client.sync_status())

    def pending_tx_size(self) -> int:
        return self._run(self._client.pending_tx_size())

    def total_transaction_count(self) -> dict[str, int]:
        return self._run(self._client.total_transaction_count())

    def system_config(self, key: str) -> str:
        return self._run(self._client.system_config(key))

    def call(
        self,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        sender: str | bytes | None = None,
    ) -> CallOutput:
        return self._run(self._client.call(to, method, args, sender=sender))

    def send_raw(self, raw: bytes) -> str:
        return self._run(self._client.send_raw(raw))

    def send_raw_batch(
        self, raws: Sequence[bytes], *, chunk: int = DEFAULT_BATCH_CHUNK
    ) -> list[str | RpcError]:
        return self._run(self._client.send_raw_batch(raws, chunk=chunk))

    def build_tx(
        self,
        keypair: KeyPair,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        block_limit: int | None = None,
        nonce: str | None = None,
        group_id: str | None = None,
    ) -> SignedTransaction:
        return self._run(
            self._client.build_tx(
                keypair, to, method, args, block_limit=block_limit, nonce=nonce, group_id=group_id
            )
        )

    def send_tx(
        self,
        keypair: KeyPair,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        *,
        wait: bool = True,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return self._run(
            self._client.send_tx(keypair, to, method, args, wait=wait, timeout=timeout)
        )

    def user_add(self, keypair: KeyPair, user: str, balance: int, **kw: Any) -> Any:
        return self._run(self._client.user_add(keypair, user, balance, **kw))

    def user_save(self, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return self._run(self._client.user_save(keypair, user, amount, **kw))

    def user_draw(self, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return self._run(self._client.user_draw(keypair, user, amount, **kw))

    def user_transfer(self, keypair: KeyPair, src: str, dst: str, amount: int, **kw: Any) -> Any:
        return self._run(self._client.user_transfer(keypair, src, dst, amount, **kw))

    def user_balance(self, user: str) -> CallOutput:
        return self._run(self._client.user_balance(user))
