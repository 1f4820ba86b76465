"""Prometheus metrics for operators, served on an internal port (METRICS_PORT,
bound to 127.0.0.1; Envoy's own stats stay on its admin port).

Counters and the latency histogram are updated where things happen (the call
interceptor, receive_notification, the areas' create/pay paths); the outbox and
settlement gauges are read from the database when Prometheus scrapes, through
probes the composition root (server/app.py) hands to `serve`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event

log = logging.getLogger("vipay.metrics")

REGISTRY = CollectorRegistry()

RPC_REQUESTS = Counter("vipay_rpc_requests", "gRPC calls answered, by method and outcome (OK or the error reason)",
                       ["method", "outcome"], registry=REGISTRY)
RPC_SECONDS = Histogram("vipay_rpc_duration_seconds", "Time to answer a gRPC call, by method and outcome",
                        ["method", "outcome"], registry=REGISTRY,
                        buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
NOTIFICATIONS = Counter("vipay_payment_notifications", "Payment provider notifications, by channel and result "
                        "(acked, nacked, rejected = not authentic)", ["channel", "result"], registry=REGISTRY)
ORDERS_CREATED = Counter("vipay_orders_created", "Orders created, by area", ["area"], registry=REGISTRY)
ORDERS_PAID = Counter("vipay_orders_paid", "Orders paid (first payment only), by area", ["area"], registry=REGISTRY)

DATABASE_OUTAGES = Counter("vipay_database_outages", "Times the database became unavailable (calls answered "
                           "UNAVAILABLE until it returned)", registry=REGISTRY)
DATABASE_UP = Gauge("vipay_database_up", "1 while the database answers, 0 during an outage", registry=REGISTRY)
DATABASE_UP.set(1)

_rpc_children: dict[tuple[str, str], tuple] = {}


def observe_rpc(method: str, outcome: str, seconds: float) -> None:
    children = _rpc_children.get((method, outcome))
    if children is None:  # labels() takes a lock and builds a key: once per (method, outcome)
        children = _rpc_children[(method, outcome)] = (RPC_REQUESTS.labels(method, outcome),
                                                       RPC_SECONDS.labels(method, outcome))
    children[0].inc()
    children[1].observe(seconds)


def count_paid_on_commit(session, area: str) -> None:
    """Counts one paid order when `session`'s transaction commits (not if it rolls back)."""
    event.listen(session, "after_commit", lambda _s: ORDERS_PAID.labels(area).inc(), once=True)


# A probe returns the gauge's samples: [(label values, value), ...] (no labels: [((), value)]).
Probe = Callable[[], Iterable[tuple[tuple[str, ...], float]]]


class DatabaseGauges(Collector):
    """Gauges computed at scrape time. A failing probe drops its gauge from that
    scrape (logged) instead of failing the whole scrape."""

    def __init__(self, gauges: list[tuple[str, str, list[str], Probe]]):
        self._gauges = gauges  # (name, help, label names, probe)

    def collect(self):
        for name, help_text, labels, probe in self._gauges:
            try:
                samples = list(probe())
            except Exception:
                log.exception("metrics probe failed", extra={"metric": name})
                continue
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for label_values, value in samples:
                family.add_metric(list(label_values), value)
            yield family


class MetricsEndpoint:
    """The HTTP endpoint; `port` is the bound one (METRICS_PORT=0 picks a free port)."""

    def __init__(self, port: int, gauges: DatabaseGauges | None = None, host: str = "127.0.0.1"):
        self._gauges = gauges
        if gauges is not None:
            REGISTRY.register(gauges)
        self._httpd, self._thread = start_http_server(port, addr=host, registry=REGISTRY)
        self.port = self._httpd.server_address[1]
        log.info("metrics on http://%s:%s/metrics", host, self.port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._gauges is not None:
            REGISTRY.unregister(self._gauges)
