"""The interceptor (platform/calls.py) authenticates, logs and maps errors of unary
calls only; any other kind of handler fails closed: its calls are refused with
UNIMPLEMENTED and logged, and the handler never runs (issue 16 §3)."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.platform.auth import TokenKey, TokenVerifier
from server.platform.calls import STREAMING_REFUSED
from server.platform.grpc_server import GrpcServer

SERVICE = "test.streaming.v1.Streams"


def _identity(data: bytes) -> bytes:
    return data


def streaming_service(ran: list[str]):
    """A registration adding a service with one method of each streaming kind (and a
    unary one, which is served): `ran` records every handler that actually ran."""

    async def unary(request, context):
        ran.append("unary")
        return b"unary:" + request

    async def server_stream(request, context):
        ran.append("server_stream")
        yield b"secret-1"
        yield b"secret-2"

    async def client_stream(requests, context):
        ran.append("client_stream")
        return b"".join([r async for r in requests])

    async def bidi(requests, context):
        ran.append("bidi")
        async for r in requests:
            yield r

    kw = {"request_deserializer": _identity, "response_serializer": _identity}
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, **kw),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, **kw),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, **kw),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, **kw),
    }

    def register(server, runner, envelopes) -> str:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        return SERVICE

    return register


async def _scenario(ran: list[str]) -> dict[str, object]:
    verifier = TokenVerifier(TokenKey("streaming-test-secret", "vipay", "vipay-clients"))
    server = GrpcServer([streaming_service(ran)], [], verifier=verifier, workers=1, read_workers=1)
    await server.start()
    outcomes: dict[str, object] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            kw = {"request_serializer": _identity, "response_deserializer": _identity}
            outcomes["Unary"] = await ch.unary_unary(f"/{SERVICE}/Unary", **kw)(b"x", timeout=10)

            # The client-streaming calls are opened without a request iterator and send
            # nothing: the refusal comes before any message is read, and a client still
            # writing when the server aborts races it (grpc core may then answer INTERNAL
            # "Internal error from Core" on the client side instead of the server's status).
            calls = {
                "ServerStream": lambda: _drain(ch.unary_stream(f"/{SERVICE}/ServerStream", **kw)(b"x", timeout=10)),
                "ClientStream": lambda: _status(ch.stream_unary(f"/{SERVICE}/ClientStream", **kw)(timeout=10)),
                "Bidi": lambda: _status(ch.stream_stream(f"/{SERVICE}/Bidi", **kw)(timeout=10)),
            }
            # The server's own streaming services (health Watch, reflection) still stream.
            watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
            outcomes["Watch"] = (await watch.read()).status
            watch.cancel()
            for name, call in calls.items():
                try:
                    outcomes[name] = await call()
                except grpc.aio.AioRpcError as err:
                    outcomes[name] = (err.code(), err.details())
    finally:
        await server.stop(0)
    return outcomes


async def _drain(call) -> list[bytes]:
    return [message async for message in call]


async def _status(call) -> tuple[grpc.StatusCode, str]:
    """The status a call ended with (the server refuses before any message is read)."""
    return await call.code(), await call.details()


def test_a_streaming_handler_is_refused_and_logged(caplog):
    ran: list[str] = []
    with caplog.at_level(logging.WARNING, logger="vipay.rpc"):
        outcomes = asyncio.run(_scenario(ran))
    assert outcomes["Unary"] == b"unary:x"  # unary calls are served (through the interceptor)
    for name in ("ServerStream", "ClientStream", "Bidi"):
        assert outcomes[name] == (grpc.StatusCode.UNIMPLEMENTED, STREAMING_REFUSED), (name, outcomes[name])
    assert outcomes["Watch"] == health_pb2.HealthCheckResponse.SERVING
    assert ran == ["unary"]  # no streaming handler ever ran
    refused = [r.getMessage() for r in caplog.records if "STREAMING_REFUSED" in r.getMessage()]
    assert len(refused) == 3 and all(f"/{SERVICE}/" in m for m in refused)
    assert sum("streaming handler refused" in r.getMessage() for r in caplog.records) == 3


