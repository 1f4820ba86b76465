"""Settings from the environment (and `var/dev.env`, written by `python -m server keys`)."""

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
VAR = ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=VAR / "dev.env", extra="ignore")

    environment: str = "development"  # development | production
    database_url: str = f"sqlite:///{VAR / 'vipay.db'}"

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    envoy_admin_port: int = 9901
    # The operator console's own Envoy listener (docs/console.md): keep it on loopback or
    # a private network, like the internal gRPC door.
    console_host: str = "127.0.0.1"
    console_port: int = 8088
    grpc_workers: int = 16  # threads running blocking database work
    # Threads of their own for the hot reads (order status, history): a write waiting for
    # its commit or a provider call holds a GRPC_WORKERS thread, never one of these.
    read_workers: int = 8
    # Prometheus metrics (server/platform/metrics.py) on 127.0.0.1:METRICS_PORT; unset: off, 0: a free port.
    metrics_port: int | None = None

    # Where clients and providers reach the gateway: notify_url is built from it.
    public_base_url: str = ""  # default: http://127.0.0.1:{HTTP_PORT}

    @model_validator(mode="after")
    def _default_public_base_url(self) -> "Settings":
        if not self.public_base_url:
            self.public_base_url = f"http://127.0.0.1:{self.http_port}"
        return self

    # Bearer tokens: HS256 with a shared secret (generated at set-up).
    jwt_secret: str = ""
    jwt_issuer: str = "vipay"
    jwt_audience: str = "vipay-clients"
    # Service/admin credentials: their own key, issuer and audience, short-lived
    # (server/platform/auth.py, docs/edge.md). Generated at set-up.
    service_jwt_secret: str = ""
    service_jwt_issuer: str = "vipay-internal"
    service_jwt_audience: str = "vipay-services"

    # Signs and verifies sandbox payments and receipts (generated at set-up).
    sandbox_secret: str = ""

    # Readiness and drain (docs/operations.md). The gRPC health check (Envoy's) says
    # SERVING only while the database answers at the schema head; it is re-checked every
    # READINESS_INTERVAL_SECONDS. On SIGTERM the server reports NOT_SERVING, keeps serving
    # DRAIN_SECONDS (Envoy checks every 2 s and needs 2 failures: 4 s), then stops taking
    # calls and gives those in flight STOP_GRACE_SECONDS.
    readiness_interval_seconds: float = 1.0
    # Overload (docs/operations.md): calls in flight to each gRPC server through the public
    # door before Envoy refuses more at once (503 + Retry-After in the family's envelope).
    # Payment notifications and merchant charges have their own, far larger budget.
    gateway_max_requests: int = 64
    # The server's own bound (platform/admission.py), for every door including internal gRPC:
    # calls in flight past GRPC_MAX_IN_FLIGHT are refused at once (UNAVAILABLE, OVERLOADED,
    # retry after 1 s); notifications and merchant charges may use GRPC_PRIORITY_RESERVE more;
    # health never counts. Unset: 4 x (GRPC_WORKERS + READ_WORKERS) = 96, and as many again.
    grpc_max_in_flight: int | None = None
    grpc_priority_reserve: int | None = None
    drain_seconds: float = 5.0
    stop_grace_seconds: float = 10.0

    # Seconds a replica serves the catalog from memory before checking its version.
    catalog_refresh_seconds: float = 2.0

    log_level: str = "INFO"

    # ---- the public door (Envoy; docs/edge.md: Timeouts and limits, CORS).
    edge_request_headers_timeout_seconds: float = 10.0  # all request headers received within
    edge_request_timeout_seconds: float = 30.0  # the whole request (headers and body) received within
    edge_stream_idle_timeout_seconds: float = 20.0  # a request with no bytes either way is reset
    edge_idle_timeout_seconds: float = 60.0  # an idle keep-alive connection is closed
    edge_max_connections: int = 4096  # open client connections, in total
    edge_max_connections_per_ip: int = 256  # open client connections from one address; 0: no limit
    edge_max_heap_mb: int = 256  # Envoy's heap budget for the overload manager's actions
    # Origins whose browser pages may call the API (comma-separated; `http://localhost:*`
    # allows any port). Default: none, no CORS header is sent.
    cors_allowed_origins: str = ""

    # The order-creating paths (001 POST /api/v2/vip/orders and check-iap-result,
    # 000 POST /charge/pay): attempts per user and per client IP in each fixed window,
    # each path counted apart; over it, 429 in the family's envelope (docs/recharge.md:
    # Limits). 002's own limits and captchas: server/recharge/settings.py.
    order_limit_per_user: int = 30
    order_limit_per_ip: int = 300
    order_rate_window_seconds: int = 60

    # ---- real payment channels (docs/channels.md). A channel is real once its
    # required ids and keys are set; otherwise its pay methods fall back to the
    # sandbox (development) or the server refuses to start (production) unless
    # ALLOW_SANDBOX is true. Every key can be given inline or as a *_FILE path.
    allow_sandbox: bool = False

    alipay_app_id: str = ""
    alipay_seller_id: str = ""  # the merchant's PID (2088...), checked on notify
    alipay_app_private_key: str = ""  # PEM (PKCS#1 or PKCS#8)
    alipay_app_private_key_file: str = ""
    alipay_public_key: str = ""  # PEM: Alipay's public key (not the app's)
    alipay_public_key_file: str = ""
    alipay_gateway_url: str = "https://openapi.alipay.com/gateway.do"

    wechatpay_mchid: str = ""
    wechatpay_appid: str = ""  # the mobile app's appid (WechatPay_App)
    wechatpay_js_appid: str = ""  # the official account / mini program appid (WechatPay_Js); default appid
    wechatpay_merchant_serial_no: str = ""  # serial of the merchant API certificate
    wechatpay_private_key: str = ""  # PEM: merchant API private key
    wechatpay_private_key_file: str = ""
    wechatpay_apiv3_key: str = ""  # 32 bytes
    wechatpay_apiv3_key_file: str = ""
    wechatpay_public_key_id: str = ""  # PUB_KEY_ID_...
    wechatpay_public_key: str = ""  # PEM: WeChat Pay public key
    wechatpay_public_key_file: str = ""
    wechatpay_platform_certs_dir: str = ""  # optional *.pem platform certificates (during a switch)
    wechatpay_api_base: str = "https://api.mch.weixin.qq.com"

    appstore_bundle_id: str = ""
    appstore_environment: str = "Production"  # Production | Sandbox
    appstore_app_apple_id: int | None = None  # required in Production
    appstore_root_certs_dir: str = ""  # Apple root CA certificates (*.cer DER or *.pem)
    appstore_key_id: str = ""  # App Store Server API key (for legacy receipts)
    appstore_issuer_id: str = ""
    appstore_private_key: str = ""  # PEM (.p8)
    appstore_private_key_file: str = ""
    appstore_api_base_url: str = ""  # default: Apple's URL for appstore_environment

    # Unpaid orders close after this many minutes (also sent to the provider as the
    # payment deadline); orders without a notification are re-queried after
    # settle_requery_after_seconds, every settle_interval_seconds.
    # Group commit (platform/group_commit.py): how long a batch of order writes
    # waits for more concurrent writers before its COMMIT; 0 commits at once.
    group_commit_delay_ms: float = 1.0
    order_close_minutes: int = 30
    settle_requery_after_seconds: int = 120
    settle_interval_seconds: float = 60.0
    settle_batch_size: int = 50
    # Daily reconciliation (docs/reconciliation.md): from this hour (Asia/Shanghai; -1: off)
    # the settlement loop reconciles yesterday's statements once per channel; a failed run
    # is retried after reconcile_retry_seconds; one replica runs a date (lease).
    reconcile_hour: int = 10
    reconcile_retry_seconds: int = 600
    reconcile_lease_seconds: int = 900
    alipay_bill_hosts: str = "dwbillcenter.alipay.com"  # where Alipay's statement links may point (comma list)

    def secret(self, name: str) -> str:
        """A key given inline (`name`) or as a file (`name`_file)."""
        inline = getattr(self, name)
        path = getattr(self, f"{name}_file", "")
        if inline:
            return inline.replace("\\n", "\n")
        return Path(path).read_text() if path else ""

    @property
    def sqlalchemy_url(self) -> str:
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
