"""The background settlement loop each replica runs next to its gRPC server
(payments/settlement.py makes concurrent replicas safe)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from server.payments.settlement import SettlementService

log = logging.getLogger("vipay.settlement")


async def settle_forever(settlement: SettlementService, interval: float,
                         reconcile_due: Callable[[], list] | None = None) -> None:
    """One pass every `interval` seconds (SETTLE_INTERVAL_SECONDS); off when <= 0.
    `reconcile_due` (ReconciliationService.run_due): yesterday's statements once a day."""
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
        try:
            # One replica runs a date (a lease in reconciliation_runs); a failed run is retried.
            for run in await asyncio.to_thread(reconcile_due) if reconcile_due else []:
                log.info("reconciliation %s %s: %s %s", run.business_date, run.channel, run.status, run.counts())
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciliation pass failed")
        await asyncio.sleep(interval)
