"""The background settlement loop each replica runs next to its gRPC server
(payments/settlement.py makes concurrent replicas safe)."""

from __future__ import annotations

import asyncio
import logging

from server.payments.settlement import SettlementService

log = logging.getLogger("vipay.settlement")


async def settle_forever(settlement: SettlementService, interval: float) -> None:
    """One pass every `interval` seconds (SETTLE_INTERVAL_SECONDS); off when <= 0."""
    if interval <= 0:
        return
    while True:
        try:
            report = await asyncio.to_thread(settlement.run_once)
            if report.queried or report.closed:
                log.info("settlement pass: %s", report)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("settlement pass failed")
        await asyncio.sleep(interval)
