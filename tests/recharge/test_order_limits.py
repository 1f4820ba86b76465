"""Per-user and per-IP limits on every order-creating path and on captcha images,
through the real Envoy, each family answering in its own envelope (issue 9 §1)."""

from __future__ import annotations

import pytest
from sqlalchemy import delete

from server.membership.limits import CHECK_IAP, VIP_ORDER
from server.platform.rate_limits import RateCounterRow, RateLimit
from server.recharge.captchas import CAPTCHA, CHARGE_PAY

ORDER = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}


@pytest.fixture
def rates(own_gateway):
    """rates(action, per_user=..., per_ip=...) -> a Gateway to a server built with a tight
    limit for this action (a day long, so a test never straddles a window boundary).
    The order paths (VIP orders, check-iap, 000 charge) share one configured limit
    (Settings.order_limit_*), each counting its own attempts; captcha images have theirs
    (RechargeSettings.captcha_limit_*)."""

    def build(action: str, per_user: int = 1000, per_ip: int = 1000):
        if action == CAPTCHA:
            return own_gateway(recharge_settings={"captcha_limit_per_user": per_user, "captcha_limit_per_ip": per_ip,
                                                  "recharge_rate_window_seconds": 86400})
        assert action in (VIP_ORDER, CHECK_IAP, CHARGE_PAY)
        return own_gateway(settings={"order_limit_per_user": per_user, "order_limit_per_ip": per_ip,
                                     "order_rate_window_seconds": 86400})

    return build


def vip_order(c):
    return c.post("/api/v2/vip/orders", json=ORDER)


def charge_pay(c):
    return c.post("/charge/pay", json={"id": 1, "payType": "ALIPAYCASH"})


def test_vip_orders_per_user_answer_429_in_the_001_envelope(app, token, rates):
    gateway = rates(VIP_ORDER, per_user=2)
    with gateway.client(token(1)) as c:
        assert [vip_order(c).status_code for _ in range(2)] == [201, 201]
        limited = vip_order(c)
        assert limited.status_code == 429, limited.text
        assert limited.json() == {"message": "Too many requests; please retry later.", "errors": {}}
        assert len(c.get("/api/v2/vip/orders").json()) == 2  # the refused one made nothing
    with gateway.client(token(2)) as other:  # another user has their own budget
        assert vip_order(other).status_code == 201
    with app.uow_factory() as uow:  # the next window starts afresh
        uow.session.execute(delete(RateCounterRow))
        uow.commit()
    with gateway.client(token(1)) as c:
        assert vip_order(c).status_code == 201


def test_vip_orders_per_ip_span_users(token, rates):
    gateway = rates(VIP_ORDER, per_ip=3)
    codes = []
    for user in (11, 12, 13, 14):
        with gateway.client(token(user), **{"X-Forwarded-For": f"10.0.0.{user}"}) as c:  # forged: ignored
            codes.append(vip_order(c).status_code)
    assert codes == [201, 201, 201, 429]


def test_check_iap_is_limited_per_user_in_the_001_envelope(app, token, rates):
    gateway = rates(CHECK_IAP, per_user=2)
    with gateway.client(token(1)) as c:
        order = c.post("/api/v2/vip/orders", json=dict(ORDER, pay_method="Iap")).json()
        codes = [c.post(f"/api/v2/vip/check-iap-result/{order['id']}", json={"receipt": "garbage"}).status_code
                 for _ in range(3)]
        last = c.post(f"/api/v2/vip/check-iap-result/{order['id']}", json={"receipt": "garbage"})
    assert codes[:2] == [500, 500] and codes[2] == 429  # 001 answers a rejected receipt with 500
    assert last.status_code == 429 and set(last.json()) == {"message", "errors"}


def test_charge_pay_is_limited_in_the_000_envelope(token, rates):
    gateway = rates(CHARGE_PAY, per_user=1)
    with gateway.client(token(5)) as c:
        assert charge_pay(c).json()["c"] == 0
        limited = charge_pay(c)
    assert limited.status_code == 200
    assert limited.json() == {"c": 429, "m": "Too many requests; please retry later.", "d": None}


def test_charge_pay_per_ip(token, rates):
    gateway = rates(CHARGE_PAY, per_ip=2)
    codes = []
    for user in (21, 22, 23):
        with gateway.client(token(user)) as c:
            codes.append(charge_pay(c).json()["c"])
    assert codes == [0, 0, 429]


def test_captcha_images_are_limited_in_the_002_envelope(token, rates):
    gateway = rates(CAPTCHA, per_user=2)
    with gateway.client(token(7)) as c:
        images = [c.get("/api/recharge/captcha") for _ in range(2)]
        limited = c.get("/api/recharge/captcha")
    assert [i.headers["content-type"] for i in images] == ["image/png"] * 2
    assert limited.status_code == 200
    assert limited.json() == {"message": "Too many requests; please retry later.", "success": False, "code": 429,
                              "data": None}


def test_defaults_limit_every_path(app, settings):
    """Sane defaults are on (tests above only tighten them)."""
    assert set(app.abuse.rates) == {VIP_ORDER, CHECK_IAP, CHARGE_PAY, CAPTCHA}
    assert app.abuse.rates[VIP_ORDER] == RateLimit(settings.order_limit_per_user, settings.order_limit_per_ip,
                                                   settings.order_rate_window_seconds)
    assert 0 < settings.order_limit_per_user <= settings.order_limit_per_ip


@pytest.mark.parametrize("path", ["vip", "charge"])
def test_an_order_counts_its_attempt_in_its_own_commit_and_a_refusal_keeps_the_count(app, token, rates, path):
    """The attempt count runs inside the order's transaction (AbuseGuard.attempt): one
    commit per order; a refused attempt stores no order but its count (issue 11)."""
    from sqlalchemy import event, func, select

    from server.membership.tables import VipOrderRow
    from server.recharge.tables import RechargeOrderRow

    action, send, table = {"vip": (VIP_ORDER, vip_order, VipOrderRow),
                           "charge": (CHARGE_PAY, charge_pay, RechargeOrderRow)}[path]
    gateway = rates(action, per_user=1)
    commits = []
    listener = lambda conn: commits.append(1)  # noqa: E731
    with gateway.client(token(31)) as c:
        event.listen(app.engine, "commit", listener)
        try:
            first = send(c)
        finally:
            event.remove(app.engine, "commit", listener)
        refused = send(c)
    assert first.status_code in (200, 201) and refused.status_code in (200, 429)
    assert len(commits) == 1
    with app.uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(table)) == 1
        counts = dict(uow.session.execute(select(RateCounterRow.key, RateCounterRow.count)
                                          .where(RateCounterRow.key.like(f"{action}:user:%"))).all())
    assert counts == {f"{action}:user:31": 2}


def test_the_area_settings_keep_their_variables_and_are_handed_in_by_the_composition_root(monkeypatch, settings):
    """RECHARGE_* and CAPTCHA_LIMIT_* live in the recharge area now (not the platform's
    Settings), read from the same environment variables operators already set, and
    build_app hands them to the area (issue 16 §4)."""
    from server.app import build_app
    from server.merchant.config import OpenApiSettings
    from server.platform.settings import Settings
    from server.recharge.settings import RechargeSettings

    assert not [f for f in Settings.model_fields if f.startswith(("recharge_", "captcha_"))]
    monkeypatch.setenv("RECHARGE_ORDER_LIMIT_PER_USER", "7")
    monkeypatch.setenv("CAPTCHA_LIMIT_PER_IP", "9")
    assert (RechargeSettings(_env_file=None).recharge_order_limit_per_user,
            RechargeSettings(_env_file=None).captcha_limit_per_ip) == (7, 9)
    built = build_app(settings, openapi_settings=OpenApiSettings(dispatcher_enabled=False, _env_file=None))
    try:
        assert built.recharges.captchas.limits.per_user == 7 and built.abuse.rates[CAPTCHA].per_ip == 9
        given = build_app(settings, recharge_settings=RechargeSettings(recharge_order_limit_per_user=4, _env_file=None),
                          openapi_settings=OpenApiSettings(dispatcher_enabled=False, _env_file=None))
        assert given.recharges.captchas.limits.per_user == 4
        given.engine.dispose()
    finally:
        built.engine.dispose()


def test_limits_are_fixed_when_built(app):
    """No hook to change limits on a built app (issue 16 §3): other limits are another
    app, built with other settings (the `rates` and `limits` fixtures)."""
    with pytest.raises(TypeError):
        app.abuse.rates[VIP_ORDER] = RateLimit(1, 1, 60)
    with pytest.raises(AttributeError):
        app.recharges.captchas.limits = app.recharges.captchas.limits
