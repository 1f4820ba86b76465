"""Read models: every order view holds its table's columns in order (a Core row becomes a
view with `_make`), and a plain SQLite statement's text JSON and times are parsed."""

from __future__ import annotations

from datetime import datetime

import pytest

from server.membership.tables import VipOrderRow
from server.membership.views import VipOrderView
from server.merchant.tables import MerchantOrderRow
from server.merchant.views import MerchantOrderView
from server.recharge.tables import RechargeOrderRow, WalletEntryRow
from server.recharge.views import RechargeOrderView, WalletEntryView


@pytest.mark.parametrize("view, row", [(VipOrderView, VipOrderRow), (RechargeOrderView, RechargeOrderRow),
                                       (WalletEntryView, WalletEntryRow), (MerchantOrderView, MerchantOrderRow)])
def test_a_view_holds_its_tables_columns_in_order(view, row):
    assert view._fields == tuple(c.key for c in row.__table__.columns)


def test_vip_order_view_parses_sqlite_text_and_is_immutable():
    view = VipOrderView.from_mapping({"id": 7, "vip_info": '{"name": "黄金会员", "iap": "p1"}',
                                      "created_at": "2026-01-02 03:04:05.000006", "paid_at": None})
    assert view.vip_info == {"name": "黄金会员", "iap": "p1"}
    assert view.created_at == datetime(2026, 1, 2, 3, 4, 5, 6) and view.paid_at is None
    with pytest.raises(AttributeError):
        view.pay_status = 1  # a NamedTuple has no setters


def test_vip_order_view_from_a_plain_statements_values():
    values = [None] * len(VipOrderView._fields)
    fields = VipOrderView._fields
    values[fields.index("id")], values[fields.index("vip_info")] = 9, '{"name": "x"}'
    values[fields.index("created_at")], values[fields.index("closed_at")] = "2026-01-02 03:04:05", None
    view = VipOrderView.from_values(tuple(values))
    assert (view.id, view.vip_info, view.created_at, view.closed_at) == (9, {"name": "x"}, datetime(2026, 1, 2, 3, 4, 5),
                                                                         None)
