"""The grpc.aio server: services, health, reflection, interceptors, graceful stop.

It knows no area: server/app.py hands it the services to register, each bound to what it uses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.platform.admission import Admission, Priority, default_limit
from server.platform.auth import TokenVerifier
from server.platform.calls import BlockingRunner, CallInterceptor
from server.platform.error_mapping import EnvelopeRegistry
from server.platform.readiness import LIVENESS, Readiness

log = logging.getLogger("vipay.server")

# Metadata: the public gateway admits 16 KiB of request headers (gateway/envoy.yaml) and
# forwards them with a few of its own (x-envoy-original-path repeats the path). One fixed
# limit well above that, instead of gRPC's 8 KiB soft limit that refused at random
# between 8 and 16 KiB (RESOURCE_EXHAUSTED, 429 through the gateway).
MAX_METADATA_BYTES = 64 * 1024
SERVER_OPTIONS = (("grpc.max_metadata_size", MAX_METADATA_BYTES),
                  ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES))


# One gRPC service's registration: adds its servicer to the server, registers its
# error envelopes and answers the service's full name. The composition root binds
# what each service uses (functools.partial), so the platform never sees the app.
Registration = Callable[[Any, BlockingRunner, EnvelopeRegistry], str]


class Background(Protocol):
    """A job run with the server (e.g. the merchant callback dispatcher)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class GrpcServer:
    """`services`: registrations, in order; `background`: jobs started after the server
    and stopped after it; `readiness`: what health reports (readiness.py), without it
    SERVING while running. In flight (admission.py): `max_in_flight` calls (None: sized
    from the worker threads), `priority_reserve` more for the methods `priority` names HIGH
    (None: as many again); health is never refused."""

    def __init__(self, services: Sequence[Registration], background: Sequence[Background], *,
                 verifier: TokenVerifier, workers: int, read_workers: int, host: str = "127.0.0.1", port: int = 0,
                 readiness: Readiness | None = None, max_in_flight: int | None = None,
                 priority_reserve: int | None = None, priority: Callable[[str], Priority] = lambda _: Priority.DEFAULT):
        self.readiness = readiness
        self._ready = readiness is None
        self._draining = False
        self._watching: asyncio.Task | None = None
        self.runner = BlockingRunner(workers, read_workers)
        envelopes = EnvelopeRegistry()
        # Health (Watch) and reflection stream by design and hold no caller's data: they
        # pass unwrapped, as they did before; any other streaming handler is refused.
        limit = max_in_flight or default_limit(workers, read_workers)
        self.admission = Admission(limit, limit if priority_reserve is None else priority_reserve,
                                   _health_exempt(priority))
        interceptor = CallInterceptor(verifier, envelopes, frozenset({health.SERVICE_NAME, reflection.SERVICE_NAME}),
                                      readiness.watch if readiness else None, self.admission)
        self.server = grpc.aio.server(interceptors=[interceptor], options=SERVER_OPTIONS)
        arrival_order = _ArrivalOrder(self.server)
        self.service_names = tuple(register(arrival_order, self.runner, envelopes) for register in services)
        self.background = list(background)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            self.service_names + (health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(f"{host}:{port}")

    async def start(self) -> None:
        await self.server.start()
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        if self.readiness is not None:
            reason = await asyncio.to_thread(self.readiness.refresh)  # the first answer before Envoy asks
            self._ready = reason is None
            self._watching = asyncio.create_task(self.readiness.watch_forever(self._publish))
        await self._publish(self._ready)
        for job in self.background:
            await job.start()
        log.info("gRPC listening on port %s", self.port)

    async def _publish(self, ready: bool) -> None:
        self._ready = ready
        status = health_pb2.HealthCheckResponse
        serving = status.SERVING if ready and not self._draining else status.NOT_SERVING
        for name in self.service_names + ("",):
            await self.health.set(name, serving)

    async def stop(self, grace: float = 5.0, drain: float = 0.0) -> None:
        """Drain: NOT_SERVING first, keep serving `drain` seconds (at least Envoy's
        health-check interval x unhealthy threshold, so it routes elsewhere first), then
        stop taking calls and give those in flight `grace` seconds to finish."""
        self._draining = True
        if self._watching is not None:
            self._watching.cancel()
        await self._publish(False)
        if drain > 0:
            log.info("draining: NOT_SERVING, still serving for %.1f s", drain)
            await asyncio.sleep(drain)
        await self.server.stop(grace)
        for job in self.background:
            await job.stop()
        self.runner.shutdown()


def _health_exempt(priority: Callable[[str], Priority]) -> Callable[[str], Priority]:
    health_methods = f"/{health.SERVICE_NAME}/"
    return lambda method: Priority.EXEMPT if method.startswith(health_methods) else priority(method)


class _ArrivalOrder:
    """The server as the generated add_*Servicer_to_server functions see it: their
    generic handlers are kept, their "registered method" handlers are not.

    Why: grpc.aio accepts registered methods through one queue per method, taken in
    turn, so under load every busy method got the same number of calls whatever its
    backlog: 16 order creations in flight were served as often as 256 status reads,
    and the reads kept 0.3 of their rate (issue 11). Through the generic path every
    call waits in one queue in arrival order, whatever its method. It is not slower
    (make bench)."""

    def __init__(self, server: grpc.aio.Server):
        self._server = server

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers) -> None:
        """Dropped: the generated code has added the same handlers as a generic handler."""
