"""Which channel serves each pay method, from the settings.

A provider is used once its required settings are present. A provider that is not
configured leaves its pay methods on the sandbox: in development with one warning
line each, in production only when ALLOW_SANDBOX is set (otherwise start-up fails,
so a misconfigured production server never takes fake payments)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from server.payments.channels import ChannelRegistry, PaymentChannel, RefundStatements
from server.platform.settings import Settings

log = logging.getLogger(__name__)

ALIPAY_METHODS = ("Alipay_AopApp", "Alipay_AopWap", "Alipay_AopPage")
WECHAT_METHODS = ("WechatPay_App", "WechatPay_Js")
APPSTORE = "appstore"  # the channel name of Iap orders (no channel object: see ChannelRegistry.name_for)


class SandboxNotAllowed(RuntimeError):
    pass


@dataclass
class ChannelSetup:
    channels: list[PaymentChannel] = field(default_factory=list)
    routes: dict[str, str] = field(default_factory=dict)
    sandboxed: list[str] = field(default_factory=list)  # providers left on the sandbox

    def registry(self, on_refund: RefundStatements | None = None) -> ChannelRegistry:
        return ChannelRegistry(self.channels, self.routes, on_refund)


def alipay_configured(s: Settings) -> bool:
    return bool(s.alipay_app_id and s.alipay_seller_id and s.secret("alipay_app_private_key") and s.secret("alipay_public_key"))


def wechat_configured(s: Settings) -> bool:
    return bool(s.wechatpay_mchid and s.wechatpay_appid and s.secret("wechatpay_private_key")
                and s.secret("wechatpay_apiv3_key") and s.wechatpay_public_key_id and s.secret("wechatpay_public_key"))


def appstore_configured(s: Settings) -> bool:
    return bool(s.appstore_bundle_id and s.appstore_root_certs_dir)


def sandbox_fallback(s: Settings, setup: ChannelSetup, provider: str, methods: tuple[str, ...], sandbox_name: str,
                     announce: bool = True):
    setup.sandboxed.append(provider)
    for method in methods:
        setup.routes[method] = sandbox_name
    if s.environment == "production" and not s.allow_sandbox:
        raise SandboxNotAllowed(
            f"{provider} is not configured and ENVIRONMENT=production: set its keys (docs/channels.md) "
            "or ALLOW_SANDBOX=true to take sandbox payments on purpose"
        )
    # Commands that never talk to a provider (catalog, merchant, ledger-check ...) stay quiet.
    (log.warning if announce else log.debug)("%s is not configured: %s are served by the SANDBOX channel (no real money)",
                provider, ", ".join(methods))


def build_channels(s: Settings, sandbox: PaymentChannel, announce: bool = True) -> ChannelSetup:
    # Iap orders are paid in the App Store (check-iap-result); the order row still names
    # who collects. Not the sandbox when the App Store is configured: the sandbox channel
    # stays registered, and a sandbox-signed notification must never pay a real order.
    setup = ChannelSetup(channels=[sandbox], routes={"Iap": APPSTORE if appstore_configured(s) else sandbox.name})
    if alipay_configured(s):
        from server.payments.alipay import AlipayChannel

        alipay = AlipayChannel(
            app_id=s.alipay_app_id, seller_id=s.alipay_seller_id,
            app_private_key=s.secret("alipay_app_private_key"), alipay_public_key=s.secret("alipay_public_key"),
            gateway_url=s.alipay_gateway_url, bill_hosts=tuple(s.alipay_bill_hosts.split(",")),
        )
        setup.channels.append(alipay)
        setup.routes.update({m: alipay.name for m in ALIPAY_METHODS})
        log.info("Alipay channel: app_id %s, gateway %s", s.alipay_app_id, s.alipay_gateway_url)
    else:
        sandbox_fallback(s, setup, "Alipay", ALIPAY_METHODS, sandbox.name, announce)
    if wechat_configured(s):
        from server.payments.wechatpay import WechatPayChannel

        wechat = WechatPayChannel.from_settings(s)
        setup.channels.append(wechat)
        setup.routes.update({m: wechat.name for m in WECHAT_METHODS})
        log.info("WeChat Pay channel: mchid %s, api %s", s.wechatpay_mchid, s.wechatpay_api_base)
    else:
        sandbox_fallback(s, setup, "WeChat Pay", WECHAT_METHODS, sandbox.name, announce)
    return setup


def build_iap_verifier(s: Settings, sandbox_verifier, announce: bool = True):
    """The App Store verifier when configured, else the sandbox receipts."""
    if appstore_configured(s):
        from server.payments.appstore import AppStoreVerifier

        log.info("App Store verifier: bundle %s, environment %s", s.appstore_bundle_id, s.appstore_environment)
        return AppStoreVerifier.from_settings(s)
    if s.environment == "production" and not s.allow_sandbox:
        raise SandboxNotAllowed("the App Store is not configured and ENVIRONMENT=production: set APPSTORE_* "
                                "(docs/channels.md) or ALLOW_SANDBOX=true")
    (log.warning if announce else log.debug)("App Store is not configured: Iap receipts are SANDBOX receipts (no real money)")
    return sandbox_verifier
