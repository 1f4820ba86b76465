"""Which channels publish daily statements, and fetching one (docs/reconciliation.md).
The channel's `statement()` does the work: official SDK calls, hash / address checks,
exact parsing (payments/statements.py)."""

from __future__ import annotations

from server.payments.channels import ChannelRegistry
from server.payments.statements import Statement

STATEMENT_CHANNELS = {"alipay": "alipay", "wechatpay": "wechat"}  # CLI name -> channel name


class NoStatements(Exception):
    """The channel has no statements (the sandbox, or a provider that is not configured)."""


class StatementSource:
    def __init__(self, channels: ChannelRegistry):
        self._channels = channels

    def channel_names(self) -> list[str]:
        """Channel names that publish statements (real providers, configured)."""
        return [name for name in STATEMENT_CHANNELS.values()
                if getattr(self._channels.by_name(name), "statement", None) is not None]

    def channel(self, name: str):
        """The channel, if it publishes statements; NoStatements otherwise."""
        channel = self._channels.by_name(name)
        if getattr(channel, "statement", None) is None:
            raise NoStatements(name)
        return channel

    @staticmethod
    def fetch(channel, business_date: str) -> Statement:
        """The whole statement, downloaded and parsed (StatementError otherwise)."""
        return channel.statement(business_date)
