"""Settings of the merchant OpenAPI (docs/openapi.md), from OPENAPI_* environment
variables (and var/dev.env). Kept apart from config.Settings so the area stays
self-contained."""

from pydantic_settings import BaseSettings, SettingsConfigDict

from server.platform.settings import VAR


class OpenApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=VAR / "dev.env", env_prefix="OPENAPI_", extra="ignore")

    # PEM file of the platform RSA key that signs status callbacks (`python -m server keys`
    # creates a dev one; merchants get the public half from `python -m server merchant platform-key`).
    platform_key_file: str = str(VAR / "openapi_platform_key.pem")
    # Seconds to wait before each retry of a status callback; then it is marked undelivered.
    callback_backoff: str = "15,30,180,600,1200,1800,3600,10800,21600"
    dispatch_interval_seconds: float = 1.0
    callback_lease_seconds: float = 60.0
    callback_timeout_seconds: float = 10.0  # total deadline of one attempt
    callback_concurrency: int = 32  # attempts in flight per dispatcher
    # Also allow loopback and private addresses as callback targets (local development
    # and tests only; docs/openapi.md: Callback address policy). Off in every environment.
    callback_allow_private_networks: bool = False
    dispatcher_enabled: bool = True
