"""A bounded number of calls in flight in this server, with priorities (issue 17 §2).

Envoy sheds the public door's overload before it reaches a server; internal gRPC callers
reach the server directly (single process) or at Envoy's HIGH priority (replicas), and
without a bound of its own the server queued them without limit: every call past the
worker threads waited in their queue. Here a call past its priority's budget is refused
at once, before any work: UNAVAILABLE, reason OVERLOADED, `retry_after_seconds` (through
the gateway: the family's envelope with Retry-After, error_mapping.py).

Budgets count every admitted call still running, whatever its priority:
- DEFAULT (reads, order creation, internal calls) is admitted while fewer than `limit`
  calls are in flight;
- HIGH (what the composition root names: payment-provider notifications, merchant
  charges) while fewer than `limit + reserve`: it is refused only after DEFAULT is;
- EXEMPT (health, liveness) is never refused: an overloaded server is alive, and its
  readiness is the database's, not its load.

Counted on the event loop only (the interceptor's wrapper), so plain integers suffice.
Refusals are counted with every call: vipay_rpc_requests{outcome="OVERLOADED"}."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from server.platform.errors import DomainError, Kind

RETRY_AFTER_SECONDS = 1


class Priority(Enum):
    DEFAULT = "default"
    HIGH = "high"
    EXEMPT = "exempt"


def default_limit(workers: int, read_workers: int) -> int:
    """16 calls per worker thread: one running and fifteen queued for it. Order creations
    hold their slot while they wait for their group commit, so 256 writers in flight (make
    bench's gRPC rows: 16 connections x 16 streams) count 256; 4 per thread (96) refused
    134 (SQLite) and 4,063 (PostgreSQL) of them. At ~1,300 writes/s the deepest queue is
    ~0.3 s of work, inside the 1 s p99 an admitted call may take."""
    return 16 * (workers + read_workers)


class Admission:
    def __init__(self, limit: int, reserve: int, priority: Callable[[str], Priority]):
        if limit < 1 or reserve < 0:
            raise ValueError("in-flight limit must be >= 1 and its reserve >= 0")
        self.limit = limit
        self.reserve = reserve
        self.priority = priority
        self.in_flight = 0

    def budget(self, priority: Priority) -> int | None:
        """How many calls may be in flight when one of this priority arrives (None: no bound)."""
        if priority is Priority.EXEMPT:
            return None
        return self.limit + self.reserve if priority is Priority.HIGH else self.limit

    def enter(self, budget: int | None) -> bool:
        """Admits a call (then `leave()` once it ends) or answers False at once."""
        if budget is not None and self.in_flight >= budget:
            return False
        self.in_flight += 1
        return True

    def leave(self) -> None:
        self.in_flight -= 1


def overloaded_error() -> DomainError:
    return DomainError("OVERLOADED", "The service is busy; retry shortly.", Kind.UNAVAILABLE,
                       metadata={"retry_after_seconds": str(RETRY_AFTER_SECONDS)})
