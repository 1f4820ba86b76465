"""Recharge fixtures: the documents' example catalog before each database test,
and a gateway whose server is built with tighter abuse limits for one test."""

import pytest

from server.recharge.rules import demo_catalog


@pytest.fixture(autouse=True)
def _recharge_catalog(request):
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    app.recharges.catalog.save(demo_catalog())
    yield


@pytest.fixture
def limits(own_gateway):
    """limits(per_user=2, per_ip=100) -> a Gateway to a server built with these recharge
    order limits (RechargeSettings). The window is a day unless given, so a test never
    straddles a fixed-window boundary (with the 60 s default, one did now and then and
    saw its counter reset)."""

    def build(per_user: int, per_ip: int, window_seconds: int = 86400):
        return own_gateway(recharge_settings={"recharge_order_limit_per_user": per_user,
                                              "recharge_order_limit_per_ip": per_ip,
                                              "recharge_rate_window_seconds": window_seconds})

    return build
