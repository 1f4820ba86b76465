"""The order path's database work (issue 11): an order and the count of its attempt
share one commit, and order-status reads have threads of their own, so they answer
while every write thread waits for the database."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import event, func, select, text
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc

from server.membership.tables import VipOrderRow
from server.platform.rate_limits import RateCounterRow
from tests.conftest import auth

ORDER = dict(timezone="Asia/Shanghai", duration=3, level="middle", pay_method="Alipay_AopApp")


def test_an_order_and_its_attempt_count_share_one_commit(app, channel, token):
    stub = membership_pb2_grpc.MembershipServiceStub(channel)
    commits = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(app.engine, "commit", listener)
    try:
        stub.CreateVipOrder(pb.CreateVipOrderRequest(**ORDER), metadata=auth(token(7)))
    finally:
        event.remove(app.engine, "commit", listener)
    assert len(commits) == 1  # the attempt count no longer takes a transaction (and an fsync) of its own
    with app.uow_factory() as uow:
        counts = dict(uow.session.execute(select(RateCounterRow.key, RateCounterRow.count)).all())
        assert uow.session.scalar(select(func.count()).select_from(VipOrderRow)) == 1
    assert counts == {"vip_order:user:7": 1}  # direct gRPC: no client address to count


@contextmanager
def writes_blocked(app):
    """Another connection holds what an order insert needs until the block ends."""
    if app.engine.dialect.name == "sqlite":
        outside = sqlite3.connect(app.engine.url.database, isolation_level=None)
        outside.execute("BEGIN IMMEDIATE")  # SQLite's one writer lock
        try:
            yield
        finally:
            outside.execute("ROLLBACK")
            outside.close()
        return
    with app.engine.connect() as outside:
        outside.execute(text("LOCK TABLE vip_orders IN EXCLUSIVE MODE"))  # SELECTs still pass
        yield
        outside.rollback()


def test_order_status_answers_while_every_write_thread_waits(app, channel, grpc_server, token):
    stub = membership_pb2_grpc.MembershipServiceStub(channel)
    order_id = stub.CreateVipOrder(pb.CreateVipOrderRequest(**ORDER), metadata=auth(token(1))).id
    writers = app.settings.grpc_workers + 4
    with ThreadPoolExecutor(max_workers=writers) as pool:
        with writes_blocked(app):
            pending = [pool.submit(stub.CreateVipOrder, pb.CreateVipOrderRequest(**ORDER), metadata=auth(token(2)),
                                   timeout=60) for _ in range(writers)]
            time.sleep(1)  # every write thread is now waiting for the database
            assert not any(f.done() for f in pending)
            started = time.monotonic()
            status = stub.CheckVipOrder(pb.CheckVipOrderRequest(order_id=order_id), metadata=auth(token(1)),
                                        timeout=5)
            shown = stub.GetVipOrder(pb.GetVipOrderRequest(order=order_id), metadata=auth(token(1)), timeout=5)
            assert time.monotonic() - started < 2
            assert status.status is False and shown.id == order_id
            assert not any(f.done() for f in pending)  # the writes were still held all along
        created = [f.result(60).id for f in pending]
    assert len(set(created)) == writers
