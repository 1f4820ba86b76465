"""Issue 9: a validly signed 004 body with a ~100 KB unknown field name made the server copy
the name into its error header; Envoy then reset the shared upstream HTTP/2 connection and
unrelated concurrent requests of other clients failed with 502. The gateway must stay
robust whatever the server sends: the answer is a bounded envelope, nobody else fails."""

from __future__ import annotations

import threading

import httpx

from clients.merchant_client import CHARGE_PATH

from .conftest import ACCOUNT


def test_huge_unknown_field_name_is_bounded_and_does_not_fail_other_clients(gateway, merchant, client_for):
    client = client_for(merchant)
    body = client.charge_body("87103", ACCOUNT, "87103", mobile="15012616978")
    body["x" * 100_000] = "1"
    others, stop = [], threading.Event()

    def bystander():
        with httpx.Client(base_url=gateway.url, timeout=10) as c:
            while not stop.is_set():
                others.append(c.get("/api/v2/vip/configs").status_code)

    threads = [threading.Thread(target=bystander) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        answers = [client.post(CHARGE_PATH, body) for _ in range(5)]
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert others and set(others) == {200}, sorted(set(others))
    for answer in answers:
        assert answer.status_code == 200, answer.text[:200]
        assert answer.json()["status"] == 4001 and answer.json()["data"] is None
        assert len(answer.content) < 8192 and sum(len(k) + len(v) for k, v in answer.headers.items()) < 8192
    assert others and set(others) == {200}, sorted(set(others))
