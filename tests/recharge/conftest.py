"""Recharge fixtures: the documents' example catalog before each database test,
and a way to tighten the abuse limits for one test."""

from dataclasses import replace

import pytest

from server.recharge.rules import demo_catalog


@pytest.fixture(autouse=True)
def _recharge_catalog(request):
    if "app" not in request.fixturenames:
        yield
        return
    app = request.getfixturevalue("app")
    app.recharges.catalog.save(demo_catalog())
    limits = app.recharges.captchas.limits
    yield
    app.recharges.captchas.limits = limits


@pytest.fixture
def limits(app):
    """limits(per_user=2, per_ip=100): tighter abuse limits for this test only.
    The window is a day unless given, so a test never straddles a fixed-window
    boundary (with the 60 s default, one did now and then and saw its counter reset)."""

    def set_limits(**changes):
        changes.setdefault("window_seconds", 86400)
        app.recharges.captchas.limits = replace(app.recharges.captchas.limits, **changes)

    return set_limits
