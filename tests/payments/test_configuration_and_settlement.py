"""Channel selection from settings (sandbox fallback, production refusal, keys from
files) and the settlement task's safety with several replicas."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta

import pytest

from server.payments.configure import SandboxNotAllowed, build_channels, build_iap_verifier
from server.payments.iap import SandboxIapVerifier
from server.payments.sandbox import SandboxChannel
from server.payments.settlement import SettlementService
from server.payments.settlement_worker import settle_forever
from server.platform.settings import Settings

from .providers import AlipayTrade
from .test_alipay import _age, create, state


def bare(**values) -> Settings:
    return Settings(_env_file=None, sandbox_secret="s", jwt_secret="j", **values)


def test_no_keys_in_development_is_the_sandbox_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        setup = build_channels(bare(), SandboxChannel("s"))
        verifier = build_iap_verifier(bare(), SandboxIapVerifier("s"))
    assert set(setup.routes.values()) == {"sandbox"} and setup.sandboxed == ["Alipay", "WeChat Pay"]
    assert isinstance(verifier, SandboxIapVerifier)
    text = caplog.text
    assert "Alipay is not configured" in text and "WeChat Pay is not configured" in text
    assert "App Store is not configured" in text


def test_production_refuses_to_start_on_the_sandbox_unless_allowed():
    with pytest.raises(SandboxNotAllowed, match="Alipay"):
        build_channels(bare(environment="production"), SandboxChannel("s"))
    with pytest.raises(SandboxNotAllowed, match="App Store"):
        build_iap_verifier(bare(environment="production"), SandboxIapVerifier("s"))
    allowed = build_channels(bare(environment="production", allow_sandbox=True), SandboxChannel("s"))
    assert set(allowed.routes.values()) == {"sandbox"}


@pytest.mark.parametrize("missing,provider", [("alipay_seller_id", "Alipay"), ("wechatpay_mchid", "WeChat Pay"),
                                              ("appstore_bundle_id", "App Store")])
def test_production_refuses_each_unconfigured_provider(real_settings, missing, provider):
    """One provider missing is enough to refuse (the others being real), and the
    whole App refuses to build; ALLOW_SANDBOX lets it start on purpose."""
    from server.app import build_app

    prod = real_settings.model_copy(update={"environment": "production", "appstore_app_apple_id": 1234567890,
                                            missing: ""})
    with pytest.raises(SandboxNotAllowed, match=provider):
        build_app(prod)
    allowed = build_app(prod.model_copy(update={"allow_sandbox": True}))
    allowed.engine.dispose()


def test_production_with_every_provider_configured_starts(real_settings):
    prod = real_settings.model_copy(update={"environment": "production", "appstore_app_apple_id": 1234567890})
    setup = build_channels(prod, SandboxChannel("s"))
    assert setup.sandboxed == []
    assert {m: setup.routes[m] for m in ("Alipay_AopApp", "WechatPay_Js")} == {
        "Alipay_AopApp": "alipay", "WechatPay_Js": "wechat"}


def test_keys_from_files(real_settings, tmp_path):
    key_file = tmp_path / "alipay_public.pem"
    key_file.write_text(real_settings.alipay_public_key)
    s = real_settings.model_copy(update={"alipay_public_key": "", "alipay_public_key_file": str(key_file)})
    assert s.secret("alipay_public_key") == real_settings.alipay_public_key
    assert "alipay" in {c.name for c in build_channels(s, SandboxChannel("s")).channels}


def test_two_replicas_settle_each_order_once(real_gateway, token, providers, real_app):
    """Two settlement services (as on two replicas) racing over the same orders:
    every order is asked about once and granted once."""
    with real_gateway.client(token(1)) as c:
        orders = [create(c) for _ in range(6)]
    for o in orders:
        _age(real_app, o["id"], 5)
        providers.alipay.trades[o["trade_no"]] = AlipayTrade(o["trade_no"], "54.00", "TRADE_SUCCESS")
    replicas = [
        SettlementService(real_app.uow_factory, real_app.channels, real_app.settlement.books,
                          close_after=timedelta(minutes=30), requery_after=timedelta(seconds=60),
                          requery_every=timedelta(seconds=60), batch_size=3)
        for _ in range(2)
    ]
    reports = []
    threads = [threading.Thread(target=lambda r=r: reports.extend([r.run_once(), r.run_once()])) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.queried for r in reports) == 6 and sum(r.settled_paid for r in reports) == 6
    queries = [m for m, method in providers.alipay.requests if method == "alipay.trade.query"]
    assert len(queries) == 6
    assert [real_app.memberships.ledger.count_grants(str(o["id"])) for o in orders] == [1] * 6


def test_background_loop_settles_without_being_asked(real_gateway, token, providers, real_app):
    with real_gateway.client(token(1)) as c:
        order = create(c)
        _age(real_app, order["id"], 5)
        providers.alipay.trades[order["trade_no"]] = AlipayTrade(order["trade_no"], "54.00", "TRADE_SUCCESS")

        async def run_briefly():
            task = asyncio.create_task(settle_forever(real_app.settlement, interval=0.05))
            for _ in range(100):
                await asyncio.sleep(0.05)
                if real_app.memberships.orders.is_paid(1, order["id"]):
                    break
            task.cancel()

        asyncio.run(run_briefly())
        assert state(c, order["id"])[0] is True
