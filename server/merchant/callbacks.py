"""Delivers merchant status callbacks from the outbox (merchant_callbacks).

Each round claims the due rows in one short transaction — SELECT ... FOR UPDATE
SKIP LOCKED on PostgreSQL (SQLite has one writer at a time) — and moves them out
of reach for a lease while they are sent, recording the attempt number in a
unique (callback, attempt) row. So several replicas never send the same attempt,
and a dispatcher that dies mid-send leaves the row to be retried once the lease
ends. The merchant must answer `SUCCESS`; otherwise the next attempt follows the
backoff schedule, and after the last one the report is marked undelivered.

Every attempt goes to an address the policy allows (addresses.py), checked right
before it and connected to directly; it has one total deadline, reads at most a few
KB of the answer and follows no redirect. Attempts run concurrently (bounded per
dispatcher and per businessId: a slow merchant holds a few slots, never another's
report); the dispatcher claims again as soon as one ends, and records the attempts that
ended together with that claim, so a fast receiver gets its reports at its own speed."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, select

from server.merchant import rules
from server.merchant.addresses import AddressPolicy, AddressRefused
from server.merchant.callback_outcomes import Outcome, record_outcomes
from server.merchant.signing import PlatformSigner
from server.merchant.tables import MerchantCallbackAttemptRow, MerchantCallbackRow
from server.platform.db_outage import is_unavailable
from server.platform.times import naive_now
from server.platform.unit_of_work import UnitOfWork

log = logging.getLogger("vipay.openapi.callbacks")


@dataclass(frozen=True)
class DispatchConfig:
    backoff: tuple[float, ...] = rules.DEFAULT_BACKOFF
    interval: float = 1.0  # seconds between polls
    lease: float = 60.0  # a claimed attempt is retried after this if its sender vanished
    timeout: float = 10.0  # total deadline of one attempt (connect, send, read the answer)
    batch: int = 20  # most reports claimed per poll
    concurrency: int = 32  # most attempts in flight per dispatcher
    per_business: int = 4  # ... and per businessId: one merchant's slow endpoint never fills every slot
    # A businessId whose last attempt succeeded within fast_seconds may have this many in
    # flight: a fast receiver gets its reports at its own speed, a slow or failing one is
    # back to per_business at its next attempt.
    per_business_fast: int = 16
    fast_seconds: float = 1.0
    max_reply_bytes: int = 4096  # of the merchant's answer; the rest is never read


@dataclass(frozen=True)
class Claimed:
    id: int
    attempt: int
    url: str
    body: str
    business_id: str

    @property
    def merchant_id(self) -> str:
        return str(json.loads(self.body).get("merchantId", ""))  # the report names its merchant


@dataclass(eq=False)
class CallbackDispatcher:
    uow_factory: Callable[[], UnitOfWork]
    signer: Callable[[], PlatformSigner]  # loaded lazily: the key file may appear after start-up
    config: DispatchConfig = field(default_factory=DispatchConfig)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{secrets.token_hex(3)}")
    housekeeping: Callable[[], object] | None = None  # e.g. purging old nonces, once a minute
    addresses: AddressPolicy = field(default_factory=AddressPolicy)
    _task: asyncio.Task | None = None
    _keyless_logged: bool = False
    _fast: set[str] = field(default_factory=set)  # businessIds whose last attempt was fast

    # ---- lifecycle -----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"callbacks-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _loop(self) -> None:
        """Claims what is due whenever a slot frees (a delivery ended) and at least every
        `interval` seconds. Waking on a freed slot is what lets a fast receiver get its
        reports at its own speed: polling on the interval alone capped every business at
        per_business reports per interval (4/s)."""
        last_housekeeping = 0.0
        outage_logged = False
        inflight: dict[asyncio.Task, str] = {}  # task -> businessId
        finished_attempts: list[tuple[Claimed, bool, str]] = []  # sent, recorded by the next round
        slot_freed = asyncio.Event()

        def finished(task: asyncio.Task) -> None:
            inflight.pop(task, None)
            slot_freed.set()

        async with new_client() as client:
            try:
                while True:
                    slot_freed.clear()
                    outcomes = finished_attempts.copy()
                    finished_attempts.clear()
                    try:
                        free = self.config.concurrency - len(inflight)
                        try:
                            claimed = await self._round(outcomes, free, Counter(inflight.values()))
                        except BaseException:
                            # Nothing of the round was committed: its outcomes go in the next one.
                            # Dropped, each attempt's report waited for its lease (60 s), not its
                            # backoff, and the attempt's outcome was never written.
                            finished_attempts[:0] = outcomes
                            raise
                        for c in claimed:
                            task = asyncio.create_task(self._deliver(client, c, finished_attempts))
                            inflight[task] = c.business_id
                            task.add_done_callback(finished)
                        if self.housekeeping and time.monotonic() - last_housekeeping > 60:
                            last_housekeeping = time.monotonic()
                            await asyncio.to_thread(self.housekeeping)
                        outage_logged = False
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # a database hiccup must not end the dispatcher
                        if not is_unavailable(exc):
                            log.exception("callback round failed")
                        elif not outage_logged:  # once per outage, not a traceback a second
                            log.warning("callback rounds wait for the database: %s", type(exc).__name__)
                        outage_logged = is_unavailable(exc)
                        await asyncio.sleep(self.config.interval)
                        continue
                    try:
                        await asyncio.wait_for(slot_freed.wait(), self.config.interval)
                    except TimeoutError:
                        pass
            finally:
                for task in inflight:  # their leases run out and another dispatcher retries
                    task.cancel()
                await asyncio.gather(*inflight, return_exceptions=True)
                if finished_attempts:  # sent but not yet recorded: record them, or they go out again
                    try:
                        await asyncio.to_thread(self.record_and_claim, finished_attempts, 0)
                    except Exception:
                        log.exception("could not record %s finished callback attempts", len(finished_attempts))

    # ---- one round -----------------------------------------------------------------

    async def run_once(self, client: httpx.AsyncClient | None = None) -> int:
        """Claims what is due and delivers it (each attempt recorded as soon as it ends);
        returns how many were claimed. The running loop does the same without waiting
        for a round to finish."""
        claimed = await self._claim_ready(self.config.batch)
        if not claimed:
            return 0
        own = client is None
        client = client or new_client()
        try:
            await asyncio.gather(*(self._deliver(client, c) for c in claimed))
        finally:
            if own:
                await client.aclose()
        return len(claimed)

    def _can_sign(self) -> bool:
        try:
            self.signer()
        except (OSError, ValueError) as exc:
            # Our misconfiguration must not spend the merchant's attempts: claim nothing.
            if not self._keyless_logged:  # once, not every round
                log.error("status callbacks wait in the outbox until the platform key is readable: %s "
                          "(run `python -m server keys` or set OPENAPI_PLATFORM_KEY_FILE)", exc)
                self._keyless_logged = True
            return False
        self._keyless_logged = False
        return True

    async def _claim_ready(self, limit: int, busy: Counter[str] | None = None) -> list[Claimed]:
        return await self._round([], limit, busy)

    async def _round(self, outcomes: list[tuple[Claimed, bool, str]], limit: int,
                     busy: Counter[str] | None = None) -> list[Claimed]:
        """Records the attempts that ended and claims what is due, in one transaction (one
        commit per round, however many attempts ended since the last)."""
        limit = min(limit, self.config.batch) if self._can_sign() else 0
        if not outcomes and limit <= 0:
            return []
        return await asyncio.to_thread(self.record_and_claim, outcomes, limit, busy)

    async def _deliver(self, client: httpx.AsyncClient, c: Claimed,
                       finished: list[tuple[Claimed, bool, str]] | None = None) -> None:
        """Sends one attempt; records it now, or leaves it in `finished` for the loop's next round."""
        try:
            started = time.monotonic()
            ok, outcome = await self._send(client, c)
            if ok and time.monotonic() - started < self.config.fast_seconds:
                self._fast.add(c.business_id)
            else:
                self._fast.discard(c.business_id)
            if finished is not None:
                finished.append((c, ok, outcome))
            else:
                await asyncio.to_thread(self.record, c, ok, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the database while recording: the lease ends and the attempt is retried
            log.exception("callback %s attempt %s failed unexpectedly", c.id, c.attempt)

    def claim(self, limit: int | None = None, busy: Counter[str] | None = None) -> list[Claimed]:
        """Leases due reports: at most `limit`, and per businessId at most its cap in flight
        (per_business, or per_business_fast while its receiver answers fast) counting `busy`
        (that business's attempts this dispatcher is sending now)."""
        return self.record_and_claim([], limit or self.config.batch, busy)

    def record(self, c: Claimed, ok: bool, outcome: str) -> None:
        self.record_and_claim([(c, ok, outcome)], 0)

    def record_and_claim(self, outcomes: list[tuple[Claimed, bool, str]], limit: int,
                         busy: Counter[str] | None = None) -> list[Claimed]:
        now = naive_now()
        with self.uow_factory() as uow:
            record_outcomes(uow.session, [Outcome(c.id, c.attempt, ok, text) for c, ok, text in outcomes], now,
                            self.config.backoff)
            claimed = self._claim(uow, limit, busy or Counter(), now) if limit > 0 else []
            if outcomes or claimed:  # an idle poll changes nothing: no commit (no fsync)
                uow.commit()
        for c, _ok, outcome in outcomes:
            log.info("callback %s attempt %s: %s", c.id, c.attempt, outcome)
        return claimed

    def _cap(self, business_id: str, fast: frozenset[str]) -> int:
        return self.config.per_business_fast if business_id in fast else self.config.per_business

    def _claim(self, uow: UnitOfWork, limit: int, busy: Counter[str], now) -> list[Claimed]:
        fast = frozenset(self._fast)
        skip = {b for b, n in busy.items() if n >= self._cap(b, fast)}
        q = (select(MerchantCallbackRow)
             .where(MerchantCallbackRow.state == "pending", MerchantCallbackRow.next_attempt_at <= now)
             .order_by(MerchantCallbackRow.next_attempt_at).limit(limit))
        if skip:
            q = q.where(MerchantCallbackRow.business_id.not_in(sorted(skip)))
        if uow.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = uow.session.execute(q).scalars().all()
        taken: Counter[str] = Counter(busy)
        out = []
        for row in rows:
            taken[row.business_id] += 1
            if taken[row.business_id] > self._cap(row.business_id, fast):
                continue  # left due: the next poll takes it when a slot of this merchant frees
            row.attempts += 1
            row.next_attempt_at = now + timedelta(seconds=self.config.lease)
            row.updated_at = now
            uow.session.add(MerchantCallbackAttemptRow(callback_pk=row.id, attempt=row.attempts,
                                                       dispatcher=self.name, started_at=now))
            out.append(Claimed(row.id, row.attempts, row.url, row.body, row.business_id))
        return out

    async def _send(self, client: httpx.AsyncClient, c: Claimed) -> tuple[bool, str]:
        body = c.body.encode()
        timestamp, nonce = str(int(time.time() * 1000)), secrets.token_hex(16)
        try:
            sign = self.signer().sign(rules.callback_signing_string(c.merchant_id, c.business_id, timestamp, nonce,
                                                                    body))
        except (OSError, ValueError) as exc:
            log.error("cannot sign callbacks: %s", exc)
            return False, f"platform key unavailable: {exc}"[:255]
        headers = {"content-type": "application/json; charset=utf-8", "merchantId": c.merchant_id,
                   "businessId": c.business_id, "nonce": nonce, "timestamp": timestamp, "signType": "SHA256-RSA",
                   "sign": sign, "accept-encoding": "identity"}
        try:
            async with asyncio.timeout(self.config.timeout):
                # Checked again now (DNS may have changed since the charge), then connected
                # to the checked address itself.
                target = await asyncio.to_thread(self.addresses.check, c.url)
                status, text = await post_to(client, target, body, headers, self.config.max_reply_bytes)
        except AddressRefused as exc:
            return False, f"refused: {exc}"[:255]
        except TimeoutError:
            return False, f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"[:255]
        if status == 200 and text.strip().upper() == "SUCCESS":
            return True, "SUCCESS"
        return False, f"HTTP {status}: {text.strip()[:200]}"


def platform_signer_loader(path: str | Path) -> Callable[[], PlatformSigner]:
    cache: dict[str, PlatformSigner] = {}

    def load() -> PlatformSigner:
        if "signer" not in cache:
            cache["signer"] = PlatformSigner.from_file(path)
        return cache["signer"]

    return load


def new_client() -> httpx.AsyncClient:
    # No proxies from the environment (they would connect instead of us, to anything);
    # no redirects (a 3xx could point anywhere): a 3xx is just a failed attempt.
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=None)


async def post_to(client: httpx.AsyncClient, target, body: bytes, headers: dict[str, str],
                  max_bytes: int) -> tuple[int, str]:
    """POSTs to the checked address (Host and TLS name stay the URL's host); reads at
    most `max_bytes` of the answer."""
    url = httpx.URL(target.url).copy_with(host=target.address)
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    headers = dict(headers, host=host if target.port == default else f"{host}:{target.port}")
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as reply:
        data = b""
        async for chunk in reply.aiter_raw():
            data += chunk
            if len(data) >= max_bytes:
                break
    return reply.status_code, data[:max_bytes].decode("utf-8", "replace")


def outbox_gauges(uow_factory: Callable[[], UnitOfWork]) -> dict[str, tuple[int, float, float]]:
    """Per businessId: (pending callbacks, seconds the oldest pending one has waited since
    its report was made, seconds the most overdue attempt is late), for metrics. A
    business with nothing pending is absent."""
    now = naive_now()
    with uow_factory() as uow:
        rows = uow.session.execute(
            select(MerchantCallbackRow.business_id, func.count(), func.min(MerchantCallbackRow.created_at),
                   func.min(MerchantCallbackRow.next_attempt_at))
            .where(MerchantCallbackRow.state == "pending").group_by(MerchantCallbackRow.business_id)
        ).all()
    return {business: (depth, max((now - oldest).total_seconds(), 0.0), max((now - due).total_seconds(), 0.0))
            for business, depth, oldest, due in rows}
