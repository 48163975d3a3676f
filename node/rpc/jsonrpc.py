"""JSON-RPC 2.0 dispatch: bytes in, bytes (or nothing) out, never an exception.

Theory of operation. A body is decoded strictly (UTF-8, no NaN/Infinity); a number
Python cannot hold (``1e400``, an integer of more than 4300 digits) decodes to
:class:`~node.rpc.params.OutOfRangeNumber`, which every param validator refuses (-32602
with the request's id, not a -32700 for the whole body);
a batch is processed in order, item by item. Each item is validated as a request object,
its method looked up, its group resolved to a backend and its params validated; read
methods run at once. Transaction submissions (``sendRawTransaction``) are queued, and a
run of consecutive submissions to the same group (and with the same ``force`` option)
reaches the backend in ``submit()`` calls of up to ``SUBMIT_CHUNK`` txs, flushed before
the next read runs -- so a batch of 5,000 transactions costs 20 backend round trips, not
5,000, none of which holds the event loop for long, while a read that follows a
submission still sees it. Notifications (no
``id``) run but get no response; an all-notification batch yields no body at all. Errors
never escape: a backend that raises :class:`RpcError` gets that error rendered, anything
else becomes -32603 and a log line.

The response is bounded in bytes (``max_response``, docs/rpc.md "Limits"): each answer is
encoded to its JSON text as soon as it is produced (the fragments are joined once at the
end, so nothing is encoded twice and no result objects pile up) and its size is charged
to the request's budget. The entry whose answer does not fit gets -32002
(ResponseTooLarge) with its id instead, and the entries after it are not run and get
-32002 too. A notification's result is charged as well (it was built), so notifications
cannot do unbounded work either. Between entries the dispatcher yields to the event loop
whenever it has worked for ``YIELD_AFTER`` seconds, and concurrent requests take turns
(:class:`_Turns`), so heavy batches, however many, share the loop with consensus.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import json.encoder as _json_encoder
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from typing import Any

from node.rpc import fisco as fisco_rpc
from node.rpc.backend import NodeBackend
from node.rpc.errors import ErrorCode, RpcError, txpool_error
from node.rpc.methods import METHODS, Method
from node.rpc.params import HEX_MAX_BYTES, OutOfRangeNumber, json_kind

log = logging.getLogger("ledgerlab.rpc")

DEFAULT_MAX_BATCH = 20_000
DEFAULT_MAX_RESPONSE = 16 * 1024 * 1024  # bytes of JSON answers per HTTP request
YIELD_AFTER = 0.004  # seconds of work between yields to the event loop
SUBMIT_CHUNK = 256  # most raw txs per backend.submit() call (~10 ms of admission)
# What a queued submission's answer may take (a hash answer is 101 bytes + the id, a
# txpool refusal ~150-300): reserved until the flush tells the real size.
_SUBMIT_RESERVE = 320
_NO_ID: Any = object()  # marks a notification (the request had no "id" member)
_SEND_RAW_TX = METHODS["sendRawTransaction"]
_MAX_HEX_RAW = 2 + 2 * HEX_MAX_BYTES  # "0x" and two digits a byte: params.hex_bytes' limit
_unhexlify = binascii.unhexlify


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float | OutOfRangeNumber:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON, but no param takes it (-32602)
        return OutOfRangeNumber(text)
    return value


def _int(text: str) -> int | OutOfRangeNumber:
    if len(text) <= 4300:  # str -> int conversion limit (sys.get_int_max_str_digits)
        return int(text)
    return OutOfRangeNumber(text)


_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_long_int_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_int
)


def decode_body(text: str) -> Any:
    """A JSON text as Python values; ValueError (or RecursionError) if it is not JSON.

    Integers are parsed by the C scanner; only a body holding an integer too long for
    ``int()`` is parsed a second time with a hook that makes it an OutOfRangeNumber (a
    hook on every integer would cost ~0.15 us per request of a batch)."""
    try:
        return _decoder.decode(text)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
    return _long_int_decoder.decode(text)


_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# The C encoder, made once: JSONEncoder.encode makes one per call (~0.8 us per answer).
_c_make_encoder = getattr(_json_encoder, "c_make_encoder", None)  # None only off CPython
_c_encode = (
    None
    if _c_make_encoder is None
    else _c_make_encoder(
        None, _encoder.default, encode_basestring_ascii, None, ":", ",", False, False, False
    )
)


def encode(message: Any) -> bytes:
    """A response (object or list) as compact ASCII JSON."""
    return _encoder.encode(message).encode("ascii")


def dumps(value: Any) -> str:
    """``value`` as compact ASCII JSON text (so its length is its size in bytes)."""
    if _c_encode is None:  # pragma: no cover
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


def _id_json(request_id: Any) -> str:
    """The JSON text of a (valid) request id, as :func:`dumps` would write it."""
    kind = type(request_id)
    if kind is int:
        return int.__repr__(request_id)
    if kind is str:
        return encode_basestring_ascii(request_id)
    if request_id is None:
        return "null"
    return dumps(request_id)


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


class _Turns:
    """A fair (first come, first served) turn among the requests being dispatched.

    The dispatcher does a request's work only while it holds the turn, and at each yield
    point hands it to the next request waiting (or, with none waiting, just lets the
    event loop run). So however many connections send heavy batches at once, the event
    loop runs at most one slice of RPC work (``YIELD_AFTER``, or one heavy read) between
    the node's other tasks, and concurrent batches advance in turn. Futures come from the
    running loop each time, so a dispatcher is not tied to one event loop.
    """

    __slots__ = ("_held", "_waiters")

    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if not self._held:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # handed the turn, then cancelled
                self.release()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the turn passes on: still held
                return
        self._held = False

    async def pause(self) -> None:
        """Let the node's other tasks and the next waiting request run, then go on."""
        if self._waiters:
            self.release()
            await self.acquire()
        else:
            await asyncio.sleep(0)


@dataclass
class DispatchStats:
    """Counters for /metrics: calls by (known) method, errors by code, txs submitted."""

    calls: dict[str, int] = field(default_factory=dict)
    errors: dict[int, int] = field(default_factory=dict)
    requests: int = 0
    batches: int = 0
    txs_submitted: int = 0
    txs_rejected: int = 0


class Dispatcher:
    """Routes JSON-RPC requests to the backend of the group named in their first param.

    ``groups`` maps group id -> backend (one entry for a single-group node). Group ids are
    compared as text, so a client may send ``1`` or ``"1"``.
    """

    def __init__(
        self,
        groups: Mapping[str | int, NodeBackend],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_response: int = DEFAULT_MAX_RESPONSE,
        on_internal_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        """``on_internal_error(where, exc)`` hears of every bug of ours a request hit (the
        node's supervisor counts them); the client gets -32603 either way.
        ``max_response`` bounds the JSON answers of one body, in bytes (-32002 past it)."""
        if not groups:
            raise ValueError("a dispatcher needs at least one group")
        self._groups: dict[str, NodeBackend] = {str(k): v for k, v in groups.items()}
        self._default = next(iter(self._groups.values()))
        self._methods: dict[str, Method] = {**METHODS, "getGroupList": self._group_list_method()}
        self.max_batch = max_batch
        self.max_response = max_response
        self.stats = DispatchStats()
        self._on_internal_error = on_internal_error
        self._turns = _Turns()
        # The fast path of _run_items stands for this entry of the table: only when it is it.
        self._plain_submit = self._methods.get("sendRawTransaction") is _SEND_RAW_TX

    def _group_list_method(self) -> Method:
        """``getGroupList`` (FISCO SDKs ask it first): the groups this dispatcher serves."""
        ids = fisco_rpc.group_list(self._groups)

        def handler(backend: NodeBackend, args: list[Any]) -> Any:
            return list(ids)

        return Method("getGroupList", "[]", handler, needs_group=False)

    def internal_error(self, exc: BaseException) -> None:
        """A bug of ours while serving a request: logged, and told to the owner."""
        if self._on_internal_error is None:
            log.error("JSON-RPC internal error", exc_info=exc)
        else:
            self._on_internal_error("rpc", exc)

    @property
    def default_backend(self) -> NodeBackend:
        return self._default

    async def handle_bytes(self, body: bytes) -> bytes | None:
        """One HTTP body in, one HTTP body out (``None`` when only notifications came)."""
        try:
            message = decode_body(body.decode("utf-8"))
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, ...
            self._count_error(ErrorCode.ParseError)
            return encode(error_response(None, RpcError(ErrorCode.ParseError)))
        return await self.respond(message)

    async def respond(self, message: Any) -> bytes | None:
        """A decoded request or batch in; the encoded response, or None."""
        if type(message) is not list:
            fragment = (await self._run([message]))[0]
            return None if fragment is None else fragment.encode("ascii")
        self.stats.batches += 1
        if not message:
            error = RpcError(ErrorCode.InvalidRequest, "empty batch")
            return self._fail(None, error).encode("ascii")
        if len(message) > self.max_batch:
            error = RpcError(ErrorCode.BatchTooLarge, f"batch exceeds {self.max_batch} requests")
            return self._fail(None, error).encode("ascii")
        fragments = [f for f in await self._run(message) if f is not None]
        if not fragments:
            return None
        # The brackets go onto the end fragments: "[" + big + "]" would copy it twice more.
        fragments[0] = "[" + fragments[0]
        fragments[-1] += "]"
        return ",".join(fragments).encode("ascii")

    async def handle(self, message: Any) -> Any:
        """A decoded request or batch in; the response object, list, or None (decoded
        again from :meth:`respond`'s bytes: for tests and tools, not the HTTP path)."""
        out = await self.respond(message)
        return None if out is None else json.loads(out)

    def _fail(self, request_id: Any, error: RpcError) -> str:
        """The encoded error answer (counted in the error stats)."""
        self._count_error(error.code)
        return dumps(error_response(request_id, error))

    def _count_error(self, code: int) -> None:
        errors = self.stats.errors
        errors[code] = errors.get(code, 0) + 1

    def _too_large(self) -> RpcError:
        return RpcError(
            ErrorCode.ResponseTooLarge,
            f"Response too large: past the {self.max_response}-byte response limit "
            "(not answered: send it alone or in a smaller batch)",
        )

    async def _run(self, items: list[Any]) -> list[str | None]:
        """Each item's encoded answer (None: no answer), in order, within the budget."""
        await self._turns.acquire()
        try:
            return await self._run_items(items)
        finally:
            self._turns.release()

    async def _run_items(self, items: list[Any]) -> list[str | None]:
        results: list[str | None] = [None] * len(items)
        queue: list[tuple[int, str | None]] = []  # (slot, id JSON; None: notification)
        queued_raws: list[bytes] = []
        queue_backend: NodeBackend | None = None
        queue_force = False  # one backend.submit() call is all forced or all not
        budget = self.max_response
        used = 2  # bytes of answers so far, with "[]", commas and the queue's reserve
        reserved = 0  # the part of ``used`` reserved for the queued submissions
        spent = False
        stats = self.stats
        calls = stats.calls
        clock = time.perf_counter
        yielded_at = clock()
        groups = self._groups
        plain_submit = self._plain_submit
        for slot, item in enumerate(items):
            stats.requests += 1
            request_id = None
            try:
                # The common submission, {"jsonrpc": "2.0", "id": <int>, "method":
                # "sendRawTransaction", "params": [<group>, "0x<hex>"]}, recognised in one
                # test; the general path gives it the same answer and takes everything
                # else, errors included (tests/rpc/test_submit_fast_path.py).
                fast = False
                if (
                    plain_submit
                    and not spent
                    and type(item) is dict
                    and item.get("method") == "sendRawTransaction"
                    and type(plain_id := item.get("id")) is int
                    and item.get("jsonrpc") == "2.0"
                    and type(params := item.get("params")) is list
                    and len(params) == 2
                    and type(group := params[0]) is str
                    and (plain_backend := groups.get(group)) is not None
                    and type(hex_raw := params[1]) is str
                    and hex_raw.startswith("0x")
                    and len(hex_raw) <= _MAX_HEX_RAW
                ):
                    try:  # unlike bytes.fromhex, refuses whitespace and odd lengths
                        raw = _unhexlify(hex_raw[2:])
                        backend = plain_backend
                        fast = True
                    except ValueError:
                        pass
                id_json: str | None
                if fast:
                    request_id = plain_id
                    calls["sendRawTransaction"] = calls.get("sendRawTransaction", 0) + 1
                    force = False
                    id_json = int.__repr__(plain_id)
                else:
                    request_id = _request_id(item)
                    if spent:
                        raise self._too_large()
                    method, backend, args = self._route(item, calls)
                    if method.prepare is not None:
                        raw, force = method.prepare(args)
                        id_json = None if request_id is _NO_ID else _id_json(request_id)
                if fast or method.prepare is not None:
                    cost = 0 if id_json is None else len(id_json) + _SUBMIT_RESERVE
                    if queue and (
                        queue_backend is not backend
                        or queue_force != force
                        or len(queue) >= SUBMIT_CHUNK
                        or used + cost > budget
                    ):
                        used += await self._flush(
                            queue_backend, queue, queued_raws, results, queue_force
                        )
                        used -= reserved
                        queue, queued_raws, reserved = [], [], 0
                        if clock() - yielded_at >= YIELD_AFTER:
                            await self._turns.pause()
                            yielded_at = clock()
                    if used + cost > budget:
                        spent = True
                        raise self._too_large()
                    queue_backend = backend
                    queue_force = force
                    queue.append((slot, id_json))
                    queued_raws.append(raw)
                    used += cost
                    reserved += cost
                    continue
                if queue:
                    used += await self._flush(
                        queue_backend, queue, queued_raws, results, queue_force
                    )
                    used -= reserved
                    queue, queued_raws, reserved = [], [], 0
                    spent = used >= budget
                    if spent:
                        raise self._too_large()
                assert method.handler is not None
                result = method.handler(backend, args)
                if request_id is _NO_ID:  # no answer, but the work is charged all the same
                    fragment = None
                    size = len(dumps(result))
                else:
                    fragment = (
                        '{"jsonrpc":"2.0","id":' + _id_json(request_id) + ',"result":'
                        + dumps(result) + "}"
                    )  # fmt: skip
                    size = len(fragment) + 1
                if used + size > budget:
                    spent = True
                    raise self._too_large()
                used += size
                results[slot] = fragment
                if clock() - yielded_at >= YIELD_AFTER:
                    await self._turns.pause()
                    yielded_at = clock()
            except RpcError as exc:
                if request_id is not _NO_ID or exc.code == ErrorCode.InvalidRequest:
                    fragment = self._fail(None if request_id is _NO_ID else request_id, exc)
                    results[slot] = fragment
                    if exc.code != ErrorCode.ResponseTooLarge:
                        used += len(fragment) + 1
                        spent = spent or used >= budget
            except Exception as exc:
                self.internal_error(exc)
                if request_id is not _NO_ID:
                    results[slot] = self._fail(request_id, RpcError(ErrorCode.InternalError))
        if queue:
            await self._flush(queue_backend, queue, queued_raws, results, queue_force)
        return results

    def _route(
        self, item: dict[str, Any], calls: dict[str, int]
    ) -> tuple[Method, NodeBackend, list[Any]]:
        """The method, backend and args a request object names (RpcError if it cannot)."""
        if item.get("jsonrpc") != "2.0":
            raise RpcError(ErrorCode.InvalidRequest, 'jsonrpc must be exactly "2.0"')
        name = item.get("method")
        if type(name) is not str:
            raise RpcError(ErrorCode.InvalidRequest, "method must be a string")
        params = item.get("params", [])
        if type(params) is not list:
            if type(params) is dict:
                raise RpcError(
                    ErrorCode.InvalidParams,
                    "Invalid params: named params are not supported; pass an array",
                )
            raise RpcError(ErrorCode.InvalidRequest, "params must be an array")
        method = self._methods.get(name)
        if method is None:
            raise RpcError(ErrorCode.MethodNotFound, f"Method not found: {name[:64]!r}")
        calls[name] = calls.get(name, 0) + 1
        backend, args = self._resolve(method, params)
        return method, backend, args

    def _resolve(self, method: Method, params: list[Any]) -> tuple[NodeBackend, list[Any]]:
        """The backend named by the group param, and the params after it."""
        if not method.needs_group:
            if not params:
                return self._default, params
        elif not params:
            raise RpcError(
                ErrorCode.InvalidParams, f"Invalid params: expected {method.usage}, got none"
            )
        group = params[0]
        if type(group) is str:
            key = group
        elif type(group) is int:
            key = str(group)
        else:
            raise RpcError(
                ErrorCode.InvalidParams, "Invalid params: group id must be an integer or string"
            )
        backend = self._groups.get(key)
        if backend is None:
            raise RpcError(ErrorCode.GroupNotFound, f"GroupID {key[:64]!r} does not exist")
        return backend, params[1:]

    async def _flush(
        self,
        backend: NodeBackend | None,
        queue: list[tuple[int, str | None]],
        raws: list[bytes],
        results: list[str | None],
        force: bool = False,
    ) -> int:
        """Submit the queued raw txs in one backend call and fill in their answers; the
        bytes those answers take (with a comma each). ``force``: through the backend's
        optional ``submit_forced`` (NodeBackend.submit)."""
        assert backend is not None
        added = 0
        submit = getattr(backend, "submit_forced", backend.submit) if force else backend.submit
        try:
            outcomes = await submit(raws)
            if len(outcomes) != len(raws):
                raise TypeError(f"submit returned {len(outcomes)} results for {len(raws)} txs")
        except Exception as exc:
            if isinstance(exc, RpcError):
                failure = exc
            else:
                self.internal_error(exc)
                failure = RpcError(ErrorCode.InternalError)
            failure_json = dumps(failure.to_json())
            for slot, id_json in queue:
                if id_json is not None:
                    self._count_error(failure.code)
                    answer = '{"jsonrpc":"2.0","id":' + id_json + ',"error":' + failure_json + "}"
                    results[slot] = answer
                    added += len(answer) + 1
            return added
        stats = self.stats
        for (slot, id_json), outcome in zip(queue, outcomes, strict=True):
            if type(outcome) is bytes and len(outcome) == 32:
                stats.txs_submitted += 1
                if id_json is not None:
                    answer = '{"jsonrpc":"2.0","id":' + id_json + ',"result":"0x' + outcome.hex()
                    results[slot] = answer + '"}'
                    added += len(answer) + 3
                continue
            stats.txs_rejected += 1
            rejection = _rejection_error(outcome)
            self._count_error(rejection.code)
            if id_json is not None:
                answer = (
                    '{"jsonrpc":"2.0","id":' + id_json + ',"error":' + dumps(rejection.to_json())
                )
                results[slot] = answer + "}"
                added += len(answer) + 2
        return added


def _rejection_error(outcome: Any) -> RpcError:
    """The error for one refused tx: anything with ``reason`` (str, or Enum of str)."""
    reason = getattr(outcome, "reason", None)
    reason = getattr(reason, "value", reason)
    if type(reason) is not str:
        log.error("backend submit returned %s, not a hash or rejection", type(outcome).__name__)
        return RpcError(ErrorCode.InternalError)
    detail = getattr(outcome, "detail", "")
    return txpool_error(reason, detail if type(detail) is str else "")


def _request_id(item: Any) -> Any:
    """A request object's id (``_NO_ID`` for a notification); RpcError if it has none valid."""
    if type(item) is not dict:
        raise RpcError(ErrorCode.InvalidRequest, "request must be an object")
    request_id = item.get("id", _NO_ID)
    if request_id is not _NO_ID and not _valid_id(request_id):
        kind = json_kind(request_id)
        raise RpcError(
            ErrorCode.InvalidRequest, f"id must be a string, number or null, not {kind}"
        )
    return request_id


def _valid_id(value: Any) -> bool:
    return value is None or type(value) in (str, int, float)
