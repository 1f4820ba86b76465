"""Delivers merchant status callbacks from the outbox (merchant_callbacks).

Each round claims the due rows in one short transaction — SELECT ... FOR UPDATE
SKIP LOCKED on PostgreSQL (SQLite has one writer at a time) — and moves them out
of reach for a lease while they are sent, recording the attempt number in a
unique (callback, attempt) row. So several replicas never send the same attempt,
and a dispatcher that dies mid-send leaves the row to be retried once the lease
ends. The merchant must answer `SUCCESS`; otherwise the next attempt follows the
backoff schedule, and after the last one the report is marked undelivered."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import httpx
from sqlalchemy import func, select

from server.merchant import rules
from server.merchant.signing import PlatformSigner
from server.merchant.tables import MerchantCallbackAttemptRow, MerchantCallbackRow
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger("vipay.openapi.callbacks")


@dataclass
class DispatchConfig:
    backoff: tuple[float, ...] = rules.DEFAULT_BACKOFF
    interval: float = 1.0  # seconds between polls
    lease: float = 60.0  # a claimed attempt is retried after this if its sender vanished
    timeout: float = 10.0  # HTTP timeout per attempt
    batch: int = 20


@dataclass(frozen=True)
class Claimed:
    id: int
    attempt: int
    url: str
    body: str
    business_id: str


@dataclass(eq=False)
class CallbackDispatcher:
    uow_factory: Callable[[], UnitOfWork]
    signer: Callable[[], PlatformSigner]  # loaded lazily: the key file may appear after start-up
    config: DispatchConfig = field(default_factory=DispatchConfig)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{secrets.token_hex(3)}")
    housekeeping: Callable[[], object] | None = None  # e.g. purging old nonces, once a minute
    _task: asyncio.Task | None = None
    _keyless_logged: bool = False

    running: ClassVar[set] = set()  # the started dispatchers of this process (tests pause them)

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"callbacks-{self.name}")
            CallbackDispatcher.running.add(self)

    async def stop(self) -> None:
        task, self._task = self._task, None
        CallbackDispatcher.running.discard(self)
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        last_housekeeping = 0.0
        async with httpx.AsyncClient(timeout=self.config.timeout) as client:
            while True:
                try:
                    await self.run_once(client)
                    if self.housekeeping and time.monotonic() - last_housekeeping > 60:
                        last_housekeeping = time.monotonic()
                        await asyncio.to_thread(self.housekeeping)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a database hiccup must not end the dispatcher
                    log.exception("callback round failed")
                await asyncio.sleep(self.config.interval)

    # ---- one round -----------------------------------------------------------------

    async def run_once(self, client: httpx.AsyncClient | None = None) -> int:
        try:
            self.signer()
        except (OSError, ValueError) as exc:
            # Our misconfiguration must not spend the merchant's attempts: claim nothing.
            if not self._keyless_logged:  # once, not every round
                log.error("status callbacks wait in the outbox until the platform key is readable: %s "
                          "(run `python -m server keys` or set OPENAPI_PLATFORM_KEY_FILE)", exc)
                self._keyless_logged = True
            return 0
        self._keyless_logged = False
        claimed = await asyncio.to_thread(self.claim)
        if not claimed:
            return 0
        own = client is None
        client = client or httpx.AsyncClient(timeout=self.config.timeout)
        try:
            results = await asyncio.gather(*(self._send(client, c) for c in claimed))
        finally:
            if own:
                await client.aclose()
        for c, (ok, outcome) in zip(claimed, results):
            await asyncio.to_thread(self.record, c, ok, outcome)
        return len(claimed)

    def claim(self) -> list[Claimed]:
        now = naive_now()
        with self.uow_factory() as uow:
            q = (select(MerchantCallbackRow)
                 .where(MerchantCallbackRow.state == "pending", MerchantCallbackRow.next_attempt_at <= now)
                 .order_by(MerchantCallbackRow.next_attempt_at).limit(self.config.batch))
            if uow.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True)
            rows = uow.session.execute(q).scalars().all()
            out = []
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = now + timedelta(seconds=self.config.lease)
                row.updated_at = now
                uow.session.add(MerchantCallbackAttemptRow(callback_pk=row.id, attempt=row.attempts,
                                                           dispatcher=self.name, started_at=now))
                out.append(Claimed(row.id, row.attempts, row.url, row.body, row.business_id))
            uow.commit()
        return out

    async def _send(self, client: httpx.AsyncClient, c: Claimed) -> tuple[bool, str]:
        body = c.body.encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        try:
            sign = self.signer().sign(rules.callback_signing_string(c.business_id, timestamp, nonce, body))
        except (OSError, ValueError) as exc:
            log.error("cannot sign callbacks: %s", exc)
            return False, f"platform key unavailable: {exc}"[:255]
        headers = {"content-type": "application/json; charset=utf-8", "businessId": c.business_id,
                   "nonce": nonce, "timestamp": timestamp, "signType": "SHA256-RSA", "sign": sign}
        try:
            reply = await client.post(c.url, content=body, headers=headers, timeout=self.config.timeout)
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"[:255]
        text = reply.text.strip()
        if reply.status_code == 200 and text.upper() == "SUCCESS":
            return True, "SUCCESS"
        return False, f"HTTP {reply.status_code}: {text[:200]}"

    def record(self, c: Claimed, ok: bool, outcome: str) -> None:
        now = naive_now()
        with self.uow_factory() as uow:
            attempt = uow.session.execute(select(MerchantCallbackAttemptRow).where(
                MerchantCallbackAttemptRow.callback_pk == c.id, MerchantCallbackAttemptRow.attempt == c.attempt,
            )).scalar_one_or_none()
            if attempt is not None:
                attempt.outcome, attempt.finished_at = outcome, now
            row = uow.session.get(MerchantCallbackRow, c.id, with_for_update=True)
            # Only the claim we hold may decide (an operator re-send or a newer claim wins).
            if row is not None and row.attempts == c.attempt and row.state == "pending":
                row.last_error = None if ok else outcome
                row.updated_at = now
                if ok:
                    row.state, row.delivered_at = "delivered", now
                elif c.attempt > len(self.config.backoff):
                    row.state = "undelivered"
                else:
                    row.next_attempt_at = now + timedelta(seconds=self.config.backoff[c.attempt - 1])
            uow.commit()
        log.info("callback %s attempt %s: %s", c.id, c.attempt, outcome)


def platform_signer_loader(path: str | Path) -> Callable[[], PlatformSigner]:
    cache: dict[str, PlatformSigner] = {}

    def load() -> PlatformSigner:
        if "signer" not in cache:
            cache["signer"] = PlatformSigner.from_file(path)
        return cache["signer"]

    return load


def outbox_gauges(uow_factory: Callable[[], UnitOfWork]) -> tuple[int, float]:
    """(pending callbacks, seconds the oldest pending one has waited), for metrics."""
    with uow_factory() as uow:
        depth, oldest = uow.session.execute(
            select(func.count(), func.min(MerchantCallbackRow.created_at)).where(MerchantCallbackRow.state == "pending")
        ).one()
    return depth, max((naive_now() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
