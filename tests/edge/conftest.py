"""Edge tests also cover the recharge families: their example catalog before each database test."""

import pytest

from server.recharge.rules import demo_catalog


@pytest.fixture(autouse=True)
def _recharge_catalog(request):
    if "app" in request.fixturenames or "gateway" in request.fixturenames:
        request.getfixturevalue("app").recharges.catalog.save(demo_catalog())
    yield
