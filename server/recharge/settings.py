"""Settings of the recharge area (docs/recharge.md: Limits), from the environment
(and var/dev.env). Built by the composition root (server/app.py) and handed in;
the variable names are the ones operators' env files already use."""

from pydantic_settings import BaseSettings, SettingsConfigDict

from server.platform.settings import VAR


class RechargeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=VAR / "dev.env", extra="ignore")

    # POST /api/recharge/order attempts per user and per client IP in each fixed
    # window before a captcha is required.
    recharge_order_limit_per_user: int = 10
    recharge_order_limit_per_ip: int = 60
    recharge_rate_window_seconds: int = 60
    recharge_captcha_ttl_seconds: int = 300
    # Captcha images: requests per user and per client IP in each window
    # (RECHARGE_RATE_WINDOW_SECONDS); over it, 429 in 002's envelope.
    captcha_limit_per_user: int = 20
    captcha_limit_per_ip: int = 200
