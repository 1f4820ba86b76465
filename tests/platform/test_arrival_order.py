"""Calls are taken in arrival order whatever their method (platform/grpc_server.py
_ArrivalOrder): a backlog of one method does not let another method's later call
jump ahead of it, and no method is served more often for having less backlog
(issue 11: 16 order creations in flight were served as often as 256 status reads)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
import pytest
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.platform.settings import ROOT
from tests.conftest import auth, free_port

BACKLOG = 300


@pytest.fixture
def server_process(settings):
    """The real server in a process of its own (the test's client must not share its GIL)."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=settings.database_url, JWT_SECRET=settings.jwt_secret,
               SERVICE_JWT_SECRET=settings.service_jwt_secret, SANDBOX_SECRET=settings.sandbox_secret,
               GRPC_PORT=str(port), LOG_LEVEL="WARNING", PUBLIC_BASE_URL="http://gateway.invalid",
               # The order calls are taken in, not admission: the whole backlog is admitted
               # (tests/edge/test_server_admission.py tests the in-flight bound).
               GRPC_MAX_IN_FLIGHT=str(4 * BACKLOG))
    env.pop("METRICS_PORT", None)
    process = subprocess.Popen([sys.executable, "-m", "server", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            grpc.channel_ready_future(ch).result(timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(15)


def test_a_later_call_of_another_method_waits_for_the_backlog_before_it(app, server_process, token):
    md = auth(token(1))

    async def scenario() -> tuple[int, int]:
        async with grpc.aio.insecure_channel(server_process) as ch:
            stub = membership_pb2_grpc.MembershipServiceStub(ch)
            order = await stub.CreateVipOrder(pb.CreateVipOrderRequest(
                timezone="Asia/Shanghai", duration=3, level="middle", pay_method="Alipay_AopApp"), metadata=md)
            await stub.GetVipConfigs(pb.GetVipConfigsRequest(), metadata=md)  # warm: the catalog is loaded
            await stub.CheckVipOrder(pb.CheckVipOrderRequest(order_id=order.id), metadata=md)
            finished: list[str] = []

            async def call(name, rpc, request):
                await rpc(request, metadata=md, timeout=60)
                finished.append(name)

            reads = [asyncio.ensure_future(call("read", stub.CheckVipOrder, pb.CheckVipOrderRequest(order_id=order.id)))
                     for _ in range(BACKLOG)]
            await asyncio.sleep(0)  # the reads are on the wire first
            last = asyncio.ensure_future(call("configs", stub.GetVipConfigs, pb.GetVipConfigsRequest()))
            await asyncio.gather(*reads, last)
            return finished.index("configs"), len(finished)

    rank, total = asyncio.run(scenario())
    assert total == BACKLOG + 1
    # Taken in turn per method, the configs call was answered among the first reads
    # (rank 11-14 here); in arrival order it waits for the backlog taken before it
    # (250-295 on a quiet host). The configs answer comes from memory while the reads
    # already taken still wait for a read thread, so a busy host lowers the rank
    # (116 seen in CI at a load of 10): the line sits well above the per-method ranks.
    assert rank >= 50, rank
