"""Settings from the environment (and `var/dev.env`, written by `python -m server keys`)."""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=VAR / "dev.env", extra="ignore")

    environment: str = "development"  # development | production
    database_url: str = f"sqlite:///{VAR / 'vipay.db'}"

    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    envoy_admin_port: int = 9901
    grpc_workers: int = 16  # threads running blocking database work

    # Where clients and providers reach the gateway: notify_url is built from it.
    public_base_url: str = "http://127.0.0.1:8080"

    # Bearer tokens: HS256 with a shared secret (generated at set-up).
    jwt_secret: str = ""
    jwt_issuer: str = "vipay"
    jwt_audience: str = "vipay-clients"

    # Signs and verifies sandbox payments and receipts (generated at set-up).
    sandbox_secret: str = ""

    # Seconds a replica serves the catalog from memory before checking its version.
    catalog_refresh_seconds: float = 2.0

    log_level: str = "INFO"

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
