"""The rate-limited actions of this area (server/app.py gives them their limits:
ORDER_LIMIT_*, docs/recharge.md: Limits)."""

VIP_ORDER, CHECK_IAP = "vip_order", "check_iap"
