"""JSON-RPC 2.0 dispatch: bytes in, bytes (or nothing) out, never an exception.

Theory of operation. A body is decoded strictly (UTF-8, no NaN/Infinity); a number
Python cannot hold (``1e400``, an integer of more than 4300 digits) decodes to
:class:`~node.rpc.params.OutOfRangeNumber`, which every param validator refuses (-32602
with the request's id, not a -32700 for the whole body);
a batch is processed in order, item by item. Each item is validated as a request object,
its method looked up, its group resolved to a backend and its params validated; read
methods run at once. Transaction submissions (``sendRawTransaction``) are queued, and a
run of consecutive submissions to the same group reaches the backend as ONE ``submit()``
call, flushed before the next read runs -- so a batch of 5,000 transactions costs one
backend round trip while a read that follows a submission still sees it. Notifications
(no ``id``) run but get no response; an all-notification batch yields no body at all.
Errors never escape: a backend that raises :class:`RpcError` gets that error rendered,
anything else becomes -32603 and a log line.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from node.rpc.backend import NodeBackend
from node.rpc.errors import ErrorCode, RpcError, txpool_error
from node.rpc.methods import METHODS, Method
from node.rpc.params import OutOfRangeNumber, json_kind
from node.rpc.render import hexbytes

log = logging.getLogger("ledgerlab.rpc")

DEFAULT_MAX_BATCH = 20_000
_NO_ID: Any = object()  # marks a notification (the request had no "id" member)


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


def encode(message: Any) -> bytes:
    """A response (object or list) as compact ASCII JSON."""
    return _encoder.encode(message).encode("ascii")


def error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


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
        on_internal_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        """``on_internal_error(where, exc)`` hears of every bug of ours a request hit (the
        node's supervisor counts them); the client gets -32603 either way."""
        if not groups:
            raise ValueError("a dispatcher needs at least one group")
        self._groups: dict[str, NodeBackend] = {str(k): v for k, v in groups.items()}
        self._default = next(iter(self._groups.values()))
        self._methods: dict[str, Method] = METHODS
        self.max_batch = max_batch
        self.stats = DispatchStats()
        self._on_internal_error = on_internal_error

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
        response = await self.handle(message)
        if response is None:
            return None
        try:
            return encode(response)
        except (ValueError, TypeError, RecursionError) as exc:
            self.internal_error(exc)  # a response we cannot encode is our bug
            return encode(error_response(None, RpcError(ErrorCode.InternalError)))

    async def handle(self, message: Any) -> Any:
        """A decoded request or batch in; the response object, list, or None."""
        if type(message) is list:
            self.stats.batches += 1
            if not message:
                return self._fail(None, RpcError(ErrorCode.InvalidRequest, "empty batch"))
            if len(message) > self.max_batch:
                return self._fail(
                    None,
                    RpcError(ErrorCode.BatchTooLarge, f"batch exceeds {self.max_batch} requests"),
                )
            responses = await self._run(message)
            out = [r for r in responses if r is not None]
            return out or None
        return (await self._run([message]))[0]

    def _fail(self, request_id: Any, error: RpcError) -> dict[str, Any]:
        self._count_error(error.code)
        return error_response(request_id, error)

    def _count_error(self, code: int) -> None:
        errors = self.stats.errors
        errors[code] = errors.get(code, 0) + 1

    async def _run(self, items: list[Any]) -> list[Any]:
        results: list[Any] = [None] * len(items)
        queue: list[tuple[int, Any]] = []  # (slot, request id) of queued submissions
        queued_raws: list[bytes] = []
        queue_backend: NodeBackend | None = None
        stats = self.stats
        calls = stats.calls
        for slot, item in enumerate(items):
            stats.requests += 1
            request_id = None
            try:
                if type(item) is not dict:
                    raise RpcError(ErrorCode.InvalidRequest, "request must be an object")
                request_id = item.get("id", _NO_ID)
                if request_id is not _NO_ID and not _valid_id(request_id):
                    kind = json_kind(request_id)
                    request_id = None
                    raise RpcError(
                        ErrorCode.InvalidRequest, f"id must be a string, number or null, not {kind}"
                    )
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
                if method.prepare is not None:
                    raw = method.prepare(args)
                    if queue_backend is not backend and queue:
                        await self._flush(queue_backend, queue, queued_raws, results)
                        queue, queued_raws = [], []
                    queue_backend = backend
                    queue.append((slot, request_id))
                    queued_raws.append(raw)
                    continue
                if queue:
                    await self._flush(queue_backend, queue, queued_raws, results)
                    queue, queued_raws = [], []
                assert method.handler is not None
                result = method.handler(backend, args)
                if request_id is not _NO_ID:
                    results[slot] = {"jsonrpc": "2.0", "id": request_id, "result": result}
            except RpcError as exc:
                if request_id is not _NO_ID or exc.code == ErrorCode.InvalidRequest:
                    results[slot] = self._fail(None if request_id is _NO_ID else request_id, exc)
            except Exception as exc:
                self.internal_error(exc)
                if request_id is not _NO_ID:
                    results[slot] = self._fail(request_id, RpcError(ErrorCode.InternalError))
        if queue:
            await self._flush(queue_backend, queue, queued_raws, results)
        return results

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
        queue: list[tuple[int, Any]],
        raws: list[bytes],
        results: list[Any],
    ) -> None:
        """Submit the queued raw txs in one backend call and fill in their responses."""
        assert backend is not None
        try:
            outcomes = await backend.submit(raws)
            if len(outcomes) != len(raws):
                raise TypeError(f"submit returned {len(outcomes)} results for {len(raws)} txs")
        except Exception as exc:
            if isinstance(exc, RpcError):
                failure = exc
            else:
                self.internal_error(exc)
                failure = RpcError(ErrorCode.InternalError)
            for slot, request_id in queue:
                if request_id is not _NO_ID:
                    results[slot] = self._fail(request_id, failure)
            return
        stats = self.stats
        for (slot, request_id), outcome in zip(queue, outcomes, strict=True):
            if type(outcome) is bytes and len(outcome) == 32:
                stats.txs_submitted += 1
                if request_id is not _NO_ID:
                    results[slot] = {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "result": hexbytes(outcome),
                    }
                continue
            stats.txs_rejected += 1
            error = _rejection_error(outcome)
            if request_id is not _NO_ID:
                results[slot] = self._fail(request_id, error)
            else:
                self._count_error(error.code)


def _rejection_error(outcome: Any) -> RpcError:
    """The error for one refused tx: anything with ``reason`` (str, or Enum of str)."""
    reason = getattr(outcome, "reason", None)
    reason = getattr(reason, "value", reason)
    if type(reason) is not str:
        log.error("backend submit returned %s, not a hash or rejection", type(outcome).__name__)
        return RpcError(ErrorCode.InternalError)
    detail = getattr(outcome, "detail", "")
    return txpool_error(reason, detail if type(detail) is str else "")


def _valid_id(value: Any) -> bool:
    return value is None or type(value) in (str, int, float)
