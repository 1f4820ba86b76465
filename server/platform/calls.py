"""Per-call context (who is calling, through what) and the interceptor that sets it
up, logs every call as one JSON line, and maps errors in one place."""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import grpc
from grpc_status import rpc_status

from server.platform.auth import Principal, TokenVerifier, check_single_credentials
from server.platform.error_mapping import (
    EnvelopeRegistry,
    bounded,
    gateway_error_headers,
    internal_error,
    rich_status,
)
from server.platform import legacy_operations, metrics
from server.platform.admission import Admission, overloaded_error
from server.platform.db_outage import DatabaseWatch, is_unavailable, unavailable_error
from server.platform.errors import DomainError, Kind, invalid

log = logging.getLogger("vipay.rpc")


@dataclass(slots=True)
class Call:
    method: str
    metadata: dict[str, str]
    principal: Principal | None
    request_id: str
    via_gateway: bool  # came through Envoy's transcoder (it adds x-envoy-original-path)
    response_headers: dict[str, str] = field(default_factory=dict)

    def set_http_status(self, status: int) -> None:
        """A legacy HTTP status chosen at run time for gateway callers (a notification's
        reply); gRPC callers ignore it. Fixed ones (201, 204) are declared on the RPC."""
        if self.via_gateway:
            self.response_headers["x-http-code"] = str(status)

    @property
    def client_ip(self) -> str:
        return client_ip(self.metadata)


def client_ip(metadata: dict[str, str]) -> str:
    """The address Envoy saw: it appends the peer to x-forwarded-for
    (use_remote_address), so the last entry is the one a client cannot forge.
    Anything but an IP address (a direct gRPC caller's own header) counts as none."""
    forwarded = metadata.get("x-forwarded-for", "")
    last = forwarded.rsplit(",", 1)[-1].strip() if forwarded else ""
    try:
        return str(ipaddress.ip_address(last)) if last else ""
    except ValueError:
        return ""


current_call: contextvars.ContextVar[Call] = contextvars.ContextVar("current_call")


class BlockingRunner:
    """Runs synchronous service-layer code (SQLAlchemy) off the event loop, keeping
    the call context.

    `await runner(fn, ...)`: anything (writes, provider calls). `await runner.read(fn, ...)`:
    only reads through `Reads` (read-only, never behind the SQLite writer lock, no
    provider call), on threads of their own. A bulkhead: a write holds its thread
    while it waits for its group commit, so with one pool a write load took every
    thread and order-status reads queued behind it (issue 11)."""

    def __init__(self, workers: int, read_workers: int):
        self._pool = _Threads(workers, "db")
        self._reads = _Threads(read_workers, "db-read")

    def __call__(self, fn, *args, **kwargs) -> asyncio.Future:
        return self._pool.submit(fn, args, kwargs)

    def read(self, fn, *args, **kwargs) -> asyncio.Future:
        return self._reads.submit(fn, args, kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown()
        self._reads.shutdown()


class _Threads:
    """A fixed set of threads answering asyncio futures directly. Lighter than
    run_in_executor, which chains a concurrent.futures.Future to an asyncio one
    (~10 % of a one-row read's CPU)."""

    def __init__(self, size: int, name: str):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(size)]
        for t in self._threads:
            t.start()

    def submit(self, fn, args, kwargs) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, contextvars.copy_context(), fn, args, kwargs))
        return future

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            loop, future, ctx, fn, args, kwargs = job
            try:
                result, error = ctx.run(fn, *args, **kwargs), None
            except BaseException as exc:  # handed to the awaiting call, which maps it
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def shutdown(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join()


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.cancelled():  # the call was cancelled while its work ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# A request the protobuf runtime cannot decode (e.g. a string that is not UTF-8, which
# the gateway's transcoder passes on from a query or JSON escape): answered as bad input
# in the caller's envelope instead of gRPC's bare INTERNAL, which HTTP clients saw as an
# empty 200 (issue 9).
UNDECODABLE = object()


def _tolerant(deserialize):
    if deserialize is None:
        return None

    def decode(data: bytes):
        try:
            return deserialize(data)
        except Exception:
            return UNDECODABLE

    return decode


class CallInterceptor(grpc.aio.ServerInterceptor):
    """`open_streams`: full names of the server's own streaming services (health Watch,
    reflection) that carry no caller's data and so pass unwrapped; any other streaming
    handler is refused (fails closed). `database`: told when a call finds the database
    unavailable (db_outage.py). `admission`: the in-flight bound (admission.py); none: unbounded."""

    def __init__(self, verifier: TokenVerifier, envelopes: EnvelopeRegistry,
                 open_streams: frozenset[str] = frozenset(), database: DatabaseWatch | None = None,
                 admission: Admission | None = None):
        self._verifier = verifier
        self._admission = admission
        self._envelopes = envelopes
        self._open_streams = open_streams
        self._database = database or DatabaseWatch()
        self._handlers: dict[str, grpc.RpcMethodHandler | None] = {}  # method -> wrapped handler

    async def intercept_service(self, continuation, details):
        # Handlers are fixed once the server runs: wrap each method once, not per call.
        method = details.method
        try:
            return self._handlers[method]
        except KeyError:
            handler = await continuation(details)
            if handler is not None:  # unknown methods stay uncached (any client can send any name)
                self._handlers[method] = self._wrap(method, handler)
            return self._handlers.get(method, handler)

    def _wrap(self, method: str, handler):
        if handler.unary_unary is None:
            service = method.lstrip("/").rsplit("/", 1)[0]
            return handler if service in self._open_streams else _refused(method, handler)
        behavior = handler.unary_unary
        # What the RPC declares for a gateway caller's success (201, 204, a bare array).
        declared_headers = legacy_operations.success_headers(legacy_operations.declared(method))
        admission = self._admission
        budget = admission.budget(admission.priority(method)) if admission else None

        async def wrapper(request, context: grpc.aio.ServicerContext):
            pairs = [(k.lower(), v) for k, v in context.invocation_metadata() or () if isinstance(v, str)]
            metadata = dict(pairs)
            call = Call(
                method=method,
                metadata=metadata,
                principal=None,
                request_id=metadata.get("x-request-id") or os.urandom(16).hex(),
                via_gateway="x-envoy-original-path" in metadata,
            )
            if declared_headers and call.via_gateway:
                call.response_headers.update(declared_headers)
            token = current_call.set(call)
            started = time.perf_counter()
            outcome, error = "OK", None
            admitted = admission is None or admission.enter(budget)
            try:
                if not admitted:  # first: a refusal must cost nothing but its answer
                    raise overloaded_error()
                check_single_credentials([k for k, _ in pairs])
                call.principal = self._verifier.principal(metadata)
                if request is UNDECODABLE:
                    raise invalid([], "The request could not be decoded (text must be UTF-8).")
                response = await behavior(request, context)
            except DomainError as err:
                error = err
            except Exception as exc:
                if is_unavailable(exc):  # one log line per outage (db_outage.py), not a traceback per call
                    self._database.failed(exc)
                    error = unavailable_error()
                else:
                    log.exception("unhandled error", extra={"method": method, "request_id": call.request_id})
                    error = internal_error()
            finally:
                current_call.reset(token)
                if admitted and admission is not None:
                    admission.leave()
            headers = {"x-request-id": call.request_id}
            try:
                if error is None:
                    if not call.response_headers:
                        # x-request-id goes with the status (trailing metadata): sending
                        # initial metadata on its own is a separate batch in gRPC's core,
                        # ~15% of a cheap call. Gateway clients get x-request-id from Envoy
                        # (always_set_request_id_in_response); only x-http-code and
                        # an error's envelope must be response headers.
                        context.set_trailing_metadata(tuple(headers.items()))
                        return response
                    headers.update(call.response_headers)
                    await context.send_initial_metadata(tuple(headers.items()))
                    return response
                error = bounded(error)
                outcome = error.reason
                if call.via_gateway:
                    headers.update(gateway_error_headers(error, self._envelopes.for_method(method)))
                await context.send_initial_metadata(tuple(headers.items()))
                status = rpc_status.to_status(rich_status(error))
                await context.abort(status.code, status.details, status.trailing_metadata)
            finally:
                seconds = time.perf_counter() - started
                metrics.observe_rpc(method, outcome, seconds)
                _log_call(call, outcome, error, seconds)

        return grpc.unary_unary_rpc_method_handler(
            wrapper,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


STREAMING_REFUSED = ("Streaming RPCs are not served: authentication, logging and error mapping "
                     "(platform/calls.py) wrap unary calls only.")


def _refused(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """Fails closed: any handler but unary-unary would skip authentication, the call log
    and error mapping, so its calls are refused (UNIMPLEMENTED) and logged instead of run."""
    log.error(json.dumps({"msg": "streaming handler refused", "method": method}))

    async def refuse(request_or_iterator, context: grpc.aio.ServicerContext):
        metrics.observe_rpc(method, "STREAMING_REFUSED", 0.0)
        log.warning(json.dumps({"msg": "rpc", "method": method, "outcome": "STREAMING_REFUSED"}))
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, STREAMING_REFUSED)

    make = (grpc.unary_stream_rpc_method_handler if handler.unary_stream is not None else
            grpc.stream_unary_rpc_method_handler if handler.stream_unary is not None else
            grpc.stream_stream_rpc_method_handler)
    return make(refuse, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


def _log_call(call: Call, outcome: str, error: DomainError | None, seconds: float) -> None:
    if error is not None and error.kind is Kind.INTERNAL:
        level = logging.ERROR
    elif error is not None and error.kind is Kind.UNAVAILABLE:
        level = logging.DEBUG  # the outage itself is logged once (db_outage.py); counted in the metrics
    elif call.method.startswith("/grpc.health."):
        level = logging.DEBUG  # Envoy probes every 2 s
    else:
        level = logging.INFO
    if not log.isEnabledFor(level):
        return  # formatting is most of the cost of a line nobody reads
    log.log(level, json.dumps({
        "msg": "rpc",
        "method": call.method,
        "outcome": outcome,
        "ms": round(seconds * 1000, 2),
        "request_id": call.request_id,
        "user_id": call.principal.user_id if call.principal else None,
        "via_gateway": call.via_gateway,
    }, ensure_ascii=False))
