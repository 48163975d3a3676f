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

The plain calls come from the server's method table (``node/rpc/methods.py`` METHODS):
:class:`_Calls` names each with one row (its params and result conversion), a method the
table gains without a row still gets a call (``getFooBar`` -> ``foo_bar()``, raw params
and result), and :class:`RpcClient` runs the same rows synchronously.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import re
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload
from urllib.parse import urlsplit

from consensus.crypto import KeyPair
from node.ledger.accounts import parse_address
from node.ledger.tx import Arg, SignedTransaction, Transaction, decode_values
from node.rpc.calldata import encode_call
from node.rpc.errors import ErrorCode, RpcError
from node.rpc.methods import METHODS, Method

__all__ = [
    "CONSENSUS",
    "DAG_TRANSFER",
    "AsyncRpcClient",
    "CallOutput",
    "ErrorCode",
    "RpcClient",
    "RpcError",
    "RpcTransportError",
]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")
DAG_TRANSFER = parse_address("0x5002")
CONSENSUS = parse_address("0x1003")
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


def _parse_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected http://host:port, got {url!r}")
    return parts.hostname, parts.port or 20200


# -- result conversions (typed, so each call's return type reads off its row) ------------


def _same(result: Any) -> Any:
    return result


def _object(result: Any) -> dict[str, Any]:
    return dict(result)


def _maybe_object(result: Any) -> dict[str, Any] | None:
    return None if result is None else dict(result)


def _labels(result: Any) -> dict[str, str]:
    return dict(result)


def _strings(result: Any) -> list[str]:
    return list(result)


def _objects(result: Any) -> list[dict[str, Any]]:
    return list(result)


def _text(result: Any) -> str:
    return str(result)


def _counts(result: Any) -> dict[str, int]:
    return {k: _int(v) for k, v in dict(result).items()}


# -- params after the group: the Python signature of each call ---------------------------


def _none() -> list[Any]:
    return []


def _as_given(*params: Any) -> list[Any]:
    return list(params)


def _tx_hash(tx_hash: bytes | str) -> list[Any]:
    return [_hex(tx_hash)]


def _node_id(node_id: str | bytes) -> str:
    """A node id as the Consensus precompile takes it: 128 hex digits, no 0x."""
    if isinstance(node_id, (bytes, bytearray)):
        return bytes(node_id).hex()
    return node_id[2:] if node_id[:2] in ("0x", "0X") else node_id


def _raw(raw: bytes, *, force: bool = False) -> list[Any]:
    return [_hex(raw), {"force": True}] if force else [_hex(raw)]


def _number(number: int) -> list[Any]:
    return [number]


def _key(key: str) -> list[Any]:
    return [key]


def _by_number(number: int, full: bool) -> list[Any]:
    return [number, full]


def _by_hash(block_hash: bytes | str, full: bool) -> list[Any]:
    return [_hex(block_hash), full]


def _call_request(
    to: str | bytes | int,
    method: str,
    args: Sequence[Arg] = (),
    *,
    sender: str | bytes | None = None,
) -> list[Any]:
    req: dict[str, Any] = {"to": _hex(parse_address(to)), "data": _hex(encode_call(method, args))}
    if sender is not None:
        req["from"] = _hex(parse_address(sender))
    return [req]


class _Rpc(Generic[P, R]):
    """One METHODS entry as a client call; a method on both clients (async on
    :class:`AsyncRpcClient`, blocking on :class:`RpcClient`)."""

    def __init__(
        self,
        method: str,
        params: Callable[P, list[Any]],
        result: Callable[[Any], R],
        doc: str | None = None,
        *,
        needs_group: bool | None = None,
    ) -> None:
        """``method`` must be in METHODS (a KeyError at import otherwise), which also
        says whether the group goes first."""
        self.method = method
        self.needs_group = METHODS[method].needs_group if needs_group is None else needs_group
        self.params = params
        self.result = result
        self.__doc__ = doc

    def wire(
        self, client: AsyncRpcClient, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[str, list[Any]]:
        """``(method, params)`` as :meth:`AsyncRpcClient.batch` takes them."""
        params = self.params(*args, **kwargs)
        return self.method, [client.group, *params] if self.needs_group else params

    async def invoke(self, client: AsyncRpcClient, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.result(await client.request(*self.wire(client, *args, **kwargs)))

    @overload
    def __get__(self, obj: None, owner: type) -> _Rpc[P, R]: ...
    @overload
    def __get__(self, obj: AsyncRpcClient, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: RpcClient, owner: type) -> Callable[P, R]: ...
    def __get__(self, obj: AsyncRpcClient | RpcClient | None, owner: type) -> Any:
        if obj is None:
            return self
        if isinstance(obj, AsyncRpcClient):
            return functools.partial(self.invoke, obj)
        sync = obj

        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return sync._run(self.invoke(sync._client, *args, **kwargs))

        return run


class _Calls:
    """The JSON-RPC calls both clients have: python name = (METHODS name, params after the
    group, result conversion)."""

    client_version = _Rpc("getClientVersion", _none, _labels)
    block_number = _Rpc("getBlockNumber", _none, _int)
    block_hash = _Rpc("getBlockHashByNumber", _number, _text)
    tx = _Rpc("getTransactionByHash", _tx_hash, _maybe_object)
    receipt = _Rpc("getTransactionReceipt", _tx_hash, _maybe_object)
    pbft_view = _Rpc("getPbftView", _none, _int)
    sealers = _Rpc("getSealerList", _none, _strings)
    observers = _Rpc("getObserverList", _none, _strings)
    peers = _Rpc("getPeers", _none, _objects)
    consensus_status = _Rpc("getConsensusStatus", _none, _object)
    sync_status = _Rpc("getSyncStatus", _none, _object)
    pending_tx_size = _Rpc("getPendingTxSize", _none, _int)
    total_transaction_count = _Rpc("getTotalTransactionCount", _none, _counts)
    system_config = _Rpc("getSystemConfigByKey", _key, _text)
    call = _Rpc(
        "call", _call_request, _call_output, "Run a precompile method read-only on the head state."
    )
    send_raw = _Rpc(
        "sendRawTransaction",
        _raw,
        _text,
        "Submit one signed transaction; its hash, or RpcError. ``force=True`` sends "
        '``{"force": true}``: a membership change the node would refuse as '
        "MembershipBreaksQuorum is submitted anyway.",
    )
    _block_by_number = _Rpc("getBlockByNumber", _by_number, _object)
    _block_by_hash = _Rpc("getBlockByHash", _by_hash, _object)


def _derive(cls: type, table: Mapping[str, Method]) -> None:
    """Give ``cls`` a call for each table method no row names, so a new server method is
    reachable before anyone writes its row: ``getFooBar`` -> ``foo_bar(*params)``."""
    named = {a.method for n in dir(cls) if isinstance(a := getattr(cls, n), _Rpc)}
    for method in table.values():
        if method.name in named:
            continue
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", method.name).lower().removeprefix("get_")
        if hasattr(cls, name):
            raise TypeError(f"{method.name} would shadow {cls.__name__}.{name}: give it a row")
        setattr(cls, name, _Rpc(method.name, _as_given, _same, needs_group=method.needs_group))


_derive(_Calls, METHODS)


class AsyncRpcClient(_Calls):
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
        return cls(*_parse_url(url), **kwargs)

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

    # -- helpers with logic beyond one call ------------------------------------------

    async def chain_id(self) -> str:
        """The node's chain id (asked once, then remembered)."""
        if self._chain_id is None:
            self._chain_id = str((await self.client_version())["Chain Id"])
        return self._chain_id

    async def get_block(self, block: int | str | bytes, full: bool = False) -> dict[str, Any]:
        """A block by number (int) or hash (32 bytes or a 0x hex string)."""
        if isinstance(block, int):
            return await self._block_by_number(block, full)
        return await self._block_by_hash(block, full)

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

    async def send_raw_batch(
        self, raws: Sequence[bytes], *, chunk: int = DEFAULT_BATCH_CHUNK
    ) -> list[str | RpcError]:
        """Submit many transactions as JSON-RPC batches of ``chunk`` sendRawTransaction
        calls; per transaction its hash or the :class:`RpcError` that refused it."""
        out: list[str | RpcError] = []
        for start in range(0, len(raws), chunk):
            part = raws[start : start + chunk]
            results = await self.batch([_Calls.send_raw.wire(self, r) for r in part])
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
        force: bool = False,
    ) -> dict[str, Any]:
        """Build, sign and send; with ``wait`` the receipt, else ``{"transactionHash"}``.
        ``force``: see :meth:`send_raw`."""
        stx = await self.build_tx(keypair, to, method, args)
        tx_hash = await self.send_raw(stx.encoded, force=force)
        if not wait:
            return {"transactionHash": tx_hash}
        return await self.wait_for_receipt(tx_hash, timeout)

    async def user_add(self, /, keypair: KeyPair, user: str, balance: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userAdd", [user, balance], **kw)

    async def user_save(self, /, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userSave", [user, amount], **kw)

    async def user_draw(self, /, keypair: KeyPair, user: str, amount: int, **kw: Any) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userDraw", [user, amount], **kw)

    async def user_transfer(
        self, /, keypair: KeyPair, src: str, dst: str, amount: int, **kw: Any
    ) -> Any:
        return await self.send_tx(keypair, DAG_TRANSFER, "userTransfer", [src, dst, amount], **kw)

    async def user_balance(self, user: str) -> CallOutput:
        """``userBalance(user)`` as a call; ``values`` holds the decoded output."""
        return await self.call(DAG_TRANSFER, "userBalance", [user])

    # -- the Consensus precompile (0x1003): membership changes, by a genesis governor --

    async def add_observer(self, /, keypair: KeyPair, node_id: str | bytes, **kw: Any) -> Any:
        """``addObserver(nodeId)``: a free node joins (or a sealer is demoted)."""
        return await self.send_tx(keypair, CONSENSUS, "addObserver", [_node_id(node_id)], **kw)

    async def add_sealer(self, /, keypair: KeyPair, node_id: str | bytes, **kw: Any) -> Any:
        """``addSealer(nodeId)``: an observer becomes the last sealer (-51104 otherwise)."""
        return await self.send_tx(keypair, CONSENSUS, "addSealer", [_node_id(node_id)], **kw)

    async def remove_node(self, /, keypair: KeyPair, node_id: str | bytes, **kw: Any) -> Any:
        """``remove(nodeId)``: a sealer or observer becomes a free node."""
        return await self.send_tx(keypair, CONSENSUS, "remove", [_node_id(node_id)], **kw)


def _sync(
    method: Callable[Concatenate[AsyncRpcClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[RpcClient, P], T]:
    """An :class:`AsyncRpcClient` helper as a blocking :class:`RpcClient` method."""

    @functools.wraps(method)
    def run(self: RpcClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._client, *args, **kwargs))

    return run


class RpcClient(_Calls):
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
        return cls(*_parse_url(url), **kwargs)

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

    # the _Calls rows run here by themselves; the async helpers, one line each
    request = _sync(AsyncRpcClient.request)
    batch = _sync(AsyncRpcClient.batch)
    chain_id = _sync(AsyncRpcClient.chain_id)
    get_block = _sync(AsyncRpcClient.get_block)
    wait_for_receipt = _sync(AsyncRpcClient.wait_for_receipt)
    send_raw_batch = _sync(AsyncRpcClient.send_raw_batch)
    build_tx = _sync(AsyncRpcClient.build_tx)
    send_tx = _sync(AsyncRpcClient.send_tx)
    user_add = _sync(AsyncRpcClient.user_add)
    user_save = _sync(AsyncRpcClient.user_save)
    user_draw = _sync(AsyncRpcClient.user_draw)
    user_transfer = _sync(AsyncRpcClient.user_transfer)
    user_balance = _sync(AsyncRpcClient.user_balance)
    add_observer = _sync(AsyncRpcClient.add_observer)
    add_sealer = _sync(AsyncRpcClient.add_sealer)
    remove_node = _sync(AsyncRpcClient.remove_node)
