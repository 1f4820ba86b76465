"""The background settlement loop each replica runs next to its gRPC server
(payments/settlement.py makes concurrent replicas safe)."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("vipay.settlement")


async def settle_forever(app, interval: float | None = None) -> None:
    interval = app.settings.settle_interval_seconds if interval is None else interval
    if interval <= 0:
        return
    while True:
        try:
            report = await asyncio.to_thread(app.settlement.run_once)
            if report.queried or report.closed:
                log.info("settlement pass: %s", report)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("settlement pass failed")
        await asyncio.sleep(interval)
