"""An operator's close (payments/order_actions.py, ConsoleService.CloseOrder) against the
(local) Alipay and WeChat Pay: asked first, a paid trade is settled instead; else the
provider is told to close (alipay.trade.close, WeChat Pay's close) and the order closes."""

from __future__ import annotations

import pytest

from server.payments.order_actions import OrderActions
from server.platform.errors import DomainError

from .providers import AlipayTrade
from .test_alipay import create, state


@pytest.fixture
def actions(real_app) -> OrderActions:
    return OrderActions(real_app.uow_factory, real_app.channels, real_app.settlement.books)


def test_alipay_close_asks_then_closes_at_alipay_then_here(real_gateway, token, providers, real_app, actions):
    with real_gateway.client(token(1)) as c:
        waiting, never_opened, paid = create(c), create(c), create(c)
        providers.alipay.trades[waiting["trade_no"]] = AlipayTrade(waiting["trade_no"], "54.00", "WAIT_BUYER_PAY")
        providers.alipay.trades[paid["trade_no"]] = AlipayTrade(paid["trade_no"], "54.00", "TRADE_SUCCESS")

        result = actions.close(waiting["trade_no"])
        assert (result.state_before, result.state_after, result.provider, result.settled) == (
            "unpaid", "closed", "not_paid", False)
        assert providers.alipay.trades[waiting["trade_no"]].trade_status == "TRADE_CLOSED"  # closed at Alipay
        assert [m for _, m in providers.alipay.requests].count("alipay.trade.close") == 1
        assert actions.close(never_opened["trade_no"]).state_after == "closed"  # nothing to close there
        assert providers.alipay.rejected == []  # signed correctly

        settled = actions.close(paid["trade_no"])  # Alipay saw it paid: settled, not closed
        assert (settled.state_after, settled.provider, settled.settled) == ("paid", "paid", True)
        assert state(c, paid["id"])[0] is True and state(c, waiting["id"])[0] is False
    with pytest.raises(DomainError) as refused:
        actions.close(paid["trade_no"])
    assert refused.value.reason == "ORDER_NOT_OPEN"
    assert real_app.memberships.ledger.count_grants(str(paid["id"])) == 1


def test_wechat_close_closes_at_wechat_pay_and_a_paid_trade_is_settled(real_gateway, token, providers, real_app,
                                                                       actions):
    with real_gateway.client(token(1)) as c:
        unpaid, paid = create(c, pay_method="WechatPay_App"), create(c, pay_method="WechatPay_App")
        providers.wechat.paid[paid["trade_no"]] = "4200000000202612050000000001"
        result = actions.close(unpaid["trade_no"])
        assert (result.state_after, result.provider) == ("closed", "not_paid")
        assert providers.wechat.closed == {unpaid["trade_no"]} and providers.wechat.rejected == []
        assert actions.close(paid["trade_no"]).state_after == "paid"
        assert paid["trade_no"] not in providers.wechat.closed
        assert state(c, paid["id"])[0] is True
