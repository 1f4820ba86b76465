"""A second App configured with the REAL channels (Alipay, WeChat Pay v3, App Store)
pointing at local provider stand-ins, with its own gRPC server and Envoy. It shares
the session database (so the root conftest empties it before each test) but not
the sandbox-configured `app` the other areas' tests use."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from server.app import App, build_app
from server.platform.database import make_engine
from server.platform.envoy import Envoy
from server.platform.settings import Settings
from tests.conftest import Gateway, _Loop, _make_server, free_port

from . import keys
from .providers import FakeAlipay, FakeAppStoreApi, FakeWechatPay

ALIPAY_APP_ID = "2021000000000001"
ALIPAY_SELLER_ID = "2088000000000001"
WECHAT_MCHID = "1900000001"
WECHAT_APPID = "wx_test_app_0001"
WECHAT_JS_APPID = "wx_test_mp_0001"
WECHAT_MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WECHAT_PUBLIC_KEY_ID = "PUB_KEY_ID_0119000000012026112100000000000001"
APPLE_BUNDLE_ID = "com.example.vipay"
APPLE_KEY_ID = "ABCDEF1234"
APPLE_ISSUER_ID = "57246542-96fe-1a63-e053-0824d011072a"


@dataclass
class Providers:
    alipay: FakeAlipay
    wechat: FakeWechatPay
    appstore: FakeAppStoreApi
    alipay_app_key: object
    alipay_key: object
    wechat_merchant_key: object
    wechat_platform_key: object
    wechat_cert_key: object
    wechat_cert_serial: str
    apiv3_key: str
    apple: keys.AppleChain
    apple_api_key: object


@pytest.fixture(scope="session")
def providers(tmp_path_factory) -> Iterator[Providers]:
    from cryptography.hazmat.primitives.asymmetric import ec

    alipay_app_key, alipay_key = keys.rsa_key(), keys.rsa_key()
    merchant_key, platform_key, cert_key = keys.rsa_key(), keys.rsa_key(), keys.rsa_key()
    cert = keys.self_signed_rsa_cert(cert_key, "Tenpay.com Root CA test")
    apiv3_key = secrets.token_hex(16)  # 32 characters
    apple = keys.apple_chain()
    api_key = ec.generate_private_key(ec.SECP256R1())
    p = Providers(
        alipay=FakeAlipay(ALIPAY_APP_ID, ALIPAY_SELLER_ID, alipay_app_key.public_key(), alipay_key),
        wechat=FakeWechatPay(WECHAT_MCHID, WECHAT_MERCHANT_SERIAL, merchant_key.public_key(), platform_key,
                             WECHAT_PUBLIC_KEY_ID, apiv3_key, {WECHAT_APPID, WECHAT_JS_APPID}),
        appstore=FakeAppStoreApi(api_key.public_key(), APPLE_KEY_ID, APPLE_ISSUER_ID, APPLE_BUNDLE_ID),
        alipay_app_key=alipay_app_key, alipay_key=alipay_key, wechat_merchant_key=merchant_key,
        wechat_platform_key=platform_key, wechat_cert_key=cert_key, wechat_cert_serial=format(cert.serial_number, "X"),
        apiv3_key=apiv3_key, apple=apple, apple_api_key=api_key,
    )
    from cryptography.hazmat.primitives import serialization

    secrets_dir = tmp_path_factory.mktemp("channel-keys")
    (secrets_dir / "platform").mkdir()
    (secrets_dir / "platform" / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (secrets_dir / "apple").mkdir()
    (secrets_dir / "apple" / "AppleRootCA-test.cer").write_bytes(apple.root.public_bytes(serialization.Encoding.DER))
    (secrets_dir / "wechat_key.pem").write_text(keys.private_pem(merchant_key))
    p.secrets_dir = secrets_dir
    yield p
    for server in (p.alipay, p.wechat, p.appstore):
        server.close()


@pytest.fixture(scope="session")
def real_settings(settings: Settings, providers: Providers) -> Settings:
    d = providers.secrets_dir
    return settings.model_copy(update=dict(
        alipay_app_id=ALIPAY_APP_ID, alipay_seller_id=ALIPAY_SELLER_ID,
        # Alipay's console shows bare base64 keys: the channel must accept them.
        alipay_app_private_key=keys.bare_base64(keys.private_pem(providers.alipay_app_key)),
        alipay_public_key=keys.bare_base64(keys.public_pem(providers.alipay_key)),
        alipay_gateway_url=providers.alipay.gateway,
        alipay_bill_hosts=providers.alipay.url.removeprefix("http://"),  # its statement links (127.0.0.1:port)
        wechatpay_mchid=WECHAT_MCHID, wechatpay_appid=WECHAT_APPID, wechatpay_js_appid=WECHAT_JS_APPID,
        wechatpay_merchant_serial_no=WECHAT_MERCHANT_SERIAL,
        wechatpay_private_key_file=str(d / "wechat_key.pem"),  # keys can come from files
        wechatpay_apiv3_key=providers.apiv3_key, wechatpay_public_key_id=WECHAT_PUBLIC_KEY_ID,
        wechatpay_public_key=keys.public_pem(providers.wechat_platform_key),
        wechatpay_platform_certs_dir=str(d / "platform"), wechatpay_api_base=providers.wechat.url,
        appstore_bundle_id=APPLE_BUNDLE_ID, appstore_environment="Sandbox",
        appstore_root_certs_dir=str(d / "apple"), appstore_key_id=APPLE_KEY_ID, appstore_issuer_id=APPLE_ISSUER_ID,
        appstore_private_key=keys.private_pem(providers.apple_api_key), appstore_api_base_url=providers.appstore.url,
        settle_interval_seconds=0,  # the tests drive settlement passes themselves
    ))


@pytest.fixture(scope="session")
def real_app(app: App, real_settings: Settings) -> Iterator[App]:
    """Depends on `app` so the root conftest empties the shared database before each test."""
    application = build_app(real_settings, make_engine(real_settings.sqlalchemy_url))
    yield application
    application.engine.dispose()


@pytest.fixture(scope="session")
def real_gateway(real_app, tmp_path_factory) -> Iterator[Gateway]:
    loop = _Loop()
    server = loop.run(_make_server(real_app))
    envoy = Envoy(free_port(), free_port(), server.port, tmp_path_factory.mktemp("envoy-channels"),
                  log_path=tmp_path_factory.getbasetemp() / "envoy-channels.log")
    envoy.start()
    yield Gateway(f"http://127.0.0.1:{envoy.http_port}", envoy)
    envoy.stop()
    loop.run(server.stop(0))
    loop.close()


@pytest.fixture(autouse=True)
def _reset_providers(request):
    if "providers" in request.fixturenames:
        p = request.getfixturevalue("providers")
        p.alipay.trades.clear()
        p.alipay.refunds.clear()
        p.wechat.orders.clear()
        p.wechat.paid.clear()
        p.wechat.closed.clear()
        p.wechat.refunds.clear()
        p.wechat.refund_status = "SUCCESS"
        p.appstore.transactions.clear()
        p.alipay.bills.clear()
        p.alipay.bill_files.clear()
        p.alipay.bill_url_host = ""
        p.wechat.bills.clear()
        p.wechat.bill_files.clear()
        p.wechat.bill_hash = p.wechat.bill_url = ""
        for server in (p.alipay, p.wechat, p.appstore):
            server.rejected.clear()
            server.requests.clear()
            server.down = False
    yield
