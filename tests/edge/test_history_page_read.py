"""The 001 history page is a hot read (issue 18 bench target: a page under load at least half
of CheckVipOrder): one statement per page, refunded fen included, the exact JSON clients
always got (refund fields, vip_info) for paid, refunded and unpaid orders."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from server.recharge.rules import demo_catalog
from tests.payments.test_refunds_sandbox import paid_vip_order


@pytest.fixture(autouse=True)
def _recharge_catalog(app):
    app.recharges.catalog.save(demo_catalog())


class _Statements:
    """Every statement sent on any engine meanwhile (but the read transaction's BEGIN)."""

    def __enter__(self):
        self.sent = []
        event.listen(Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(Engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        if statement != "BEGIN":
            self.sent.append(statement)


@pytest.mark.db
def test_a_history_page_is_one_statement_with_the_refunds_in_it(app, gateway, token):
    full = paid_vip_order(app, gateway, token, user=5)
    partial = paid_vip_order(app, gateway, token, user=5, level="high")
    with gateway.client(token(5)) as c:
        unpaid = c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "low",
                                                    "pay_method": "Alipay_AopApp"}).json()
    app.refunds.refund(full["trade_no"], amount_fen=None, reason="all")
    app.refunds.refund(partial["trade_no"], amount_fen=100, reason="some")

    with _Statements() as statements:
        rows, more = app.memberships.orders.history_page(5, offset=0, limit=15, start="", end="",
                                                          timezone_name="Asia/Shanghai")
    assert len(statements.sent) == 1, statements.sent
    assert not more
    assert [(order.id, refunded) for order, refunded in rows] == [
        (unpaid["id"], 0), (partial["id"], 100), (full["id"], full["pay_amount"])]

    with gateway.client(token(5)) as c:
        page = c.get("/api/v2/vip/orders?offset=0&limit=15").json()
        one = {o["id"]: c.get(f"/api/v2/vip/orders/{o['id']}").json() for o in page}
    by_id = {o["id"]: o for o in page}
    assert [o["id"] for o in page] == [unpaid["id"], partial["id"], full["id"]]
    assert (by_id[full["id"]]["refund_status"], by_id[full["id"]]["refunded_amount"]) == (2, full["pay_amount"])
    assert (by_id[partial["id"]]["refund_status"], by_id[partial["id"]]["refunded_amount"]) == (1, 100)
    assert (by_id[unpaid["id"]]["refund_status"], by_id[unpaid["id"]]["refunded_amount"]) == (0, 0)
    assert by_id[partial["id"]]["vip_info"]["level"] == "high" and by_id[unpaid["id"]]["vip_info"]["level"] == "low"
    # The page says of each order what the order's own read says (GetVipOrder).
    for order_id, order in by_id.items():
        assert order == one[order_id]
    # Dated pages (the bounds compared as each database holds the times).
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for day, expected in ((today, [o["id"] for o in page]), (today - timedelta(days=1), []),
                          (today + timedelta(days=1), [])):
        dated, _ = app.memberships.orders.list_orders(5, offset=0, limit=15, start=day.isoformat(),
                                                      end=day.isoformat(), timezone_name="Asia/Shanghai")
        assert [o.id for o in dated] == expected, day


@pytest.mark.db
def test_a_history_page_is_read_on_the_kept_connection_without_a_transaction(app):
    """Like CheckVipOrder's row (platform/hot_reads.py): no pool checkout, BEGIN or COMMIT
    per page, which were most of a page's read cost through SQLAlchemy."""
    app.memberships.orders.history_page(5, offset=0, limit=15, start="", end="", timezone_name="Asia/Shanghai")
    transactions, me = [], threading.get_ident()

    def record(conn, *args):
        if threading.get_ident() == me:  # background loops (the callback poller) have their own
            transactions.append(args)

    event.listen(Engine, "begin", record)
    event.listen(Engine, "engine_connect", record)
    try:
        with _Statements() as statements:
            app.memberships.orders.history_page(5, offset=0, limit=15, start="", end="",
                                                timezone_name="Asia/Shanghai")
    finally:
        event.remove(Engine, "begin", record)
        event.remove(Engine, "engine_connect", record)
    assert len(statements.sent) == 1 and "ORDER BY id DESC" in statements.sent[0], statements.sent
    assert transactions == []


def test_order_times_keep_their_format():
    from server.membership.servicer import fmt_time

    assert fmt_time(datetime(2025, 1, 2, 3, 4, 5, 999999)) == "2025-01-02 03:04:05"
    assert fmt_time(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02 03:04:05"


@pytest.mark.db
def test_a_gateway_page_sends_no_initial_metadata_and_stays_a_bare_array(app, gateway, channel, token):
    """The bare array is the gateway's to make from the operation's declared unwrap
    (gateway/legacy_operations.lua): the server sends the page as a plain success, with no
    initial metadata (a separate send in gRPC's core, a quarter of the page's Python time
    under load). The HTTP answer is still the array alone, errors still the 001 envelope."""
    from vipay.membership.v1 import membership_pb2, membership_pb2_grpc

    with gateway.client(token(6)) as c:
        created = [c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": level,
                                                      "pay_method": "Alipay_AopApp"}).json() for level in ("low", "high")]
        answer = c.get("/api/v2/vip/orders?offset=0&limit=15")
        refused = c.get("/api/v2/vip/orders?offset=0&limit=101")
        head = c.head("/api/v2/vip/orders?offset=0&limit=15")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    page = answer.json()
    assert isinstance(page, list) and [o["id"] for o in page] == [created[1]["id"], created[0]["id"]]
    assert answer.text.startswith('[{"') and answer.text.endswith("}]")
    assert "x-json-unwrap" not in answer.headers
    assert refused.status_code == 422 and refused.json()["errors"] == {"limit": ["The limit must be between 1 and 100."]}
    assert head.status_code in (200, 404, 405) and head.content == b""

    stub = membership_pb2_grpc.MembershipServiceStub(channel)
    gateway_call = (("authorization", f"Bearer {token(6)}"), ("x-envoy-original-path", "/api/v2/vip/orders"))
    response, call = stub.ListVipOrders.with_call(membership_pb2.ListVipOrdersRequest(limit=15), metadata=gateway_call)
    assert [o.id for o in response.vip_orders] == [o["id"] for o in page]
    assert call.initial_metadata() == ()
    assert dict(call.trailing_metadata())["x-request-id"]


@pytest.mark.db
def test_a_page_read_again_reuses_its_order_messages_and_sees_every_change(app, gateway, token):
    """page_order_message: one message per distinct row (all columns and the fen refunded),
    so a page read again builds none; a refund or a deletion is a different row."""
    from server.membership.servicer import page_order_message

    order = paid_vip_order(app, gateway, token, user=7)
    rows, _ = app.memberships.orders.history_page(7, offset=0, limit=15, start="", end="", timezone_name="Asia/Shanghai")
    again, _ = app.memberships.orders.history_page(7, offset=0, limit=15, start="", end="", timezone_name="Asia/Shanghai")
    assert page_order_message(*rows[0]) is page_order_message(*again[0])

    with gateway.client(token(7)) as c:
        before = c.get("/api/v2/vip/orders").json()
        app.refunds.refund(order["trade_no"], amount_fen=100, reason="some")
        after = c.get("/api/v2/vip/orders").json()
        assert c.delete(f"/api/v2/vip/orders/{order['id']}").status_code == 204
        gone = c.get("/api/v2/vip/orders").json()
    assert (before[0]["refund_status"], before[0]["refunded_amount"]) == (0, 0)
    assert (after[0]["refund_status"], after[0]["refunded_amount"]) == (1, 100)
    assert gone == []
