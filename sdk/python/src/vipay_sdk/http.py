"""The user-facing HTTP APIs — membership (001), charge (000), recharge (002) and the mall's
recharge center (003): answers parsed into the generated types (unknown fields ignored),
refusals as HttpError / EnvelopeError, retries for what is safe, and iterators over every page."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
from vipay.membership.v1 import membership_pb2 as mp
from vipay.recharge.v1 import recharge_pb2 as rp

from vipay_sdk.errors import EnvelopeError, HttpError
from vipay_sdk.merchant import parse
from vipay_sdk.retry import DEFAULT_TIMEOUT, RetryPolicy, with_retries
from vipay_sdk.transport import Answer, send


def http_error(a: Answer) -> HttpError:
    """001's refusal: the HTTP status and its {"message", "errors"} body."""
    body = a.json()
    return HttpError(a.status, body if isinstance(body, dict) else {"message": a.text[:200]}, a.request_id,
                     a.retry_after)


class VipayHttp:
    def __init__(self, base_url: str, *, token: str = "", access_token: str = "", timeout: float = DEFAULT_TIMEOUT,
                 retry: RetryPolicy = RetryPolicy(), http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self.headers: dict[str, str] = {}
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        if access_token:
            self.headers["access-token"] = access_token
        self.retry = retry
        self.http = http or httpx.Client(timeout=timeout)

    def request(self, method: str, path: str, handle, *, json_body=None, idempotent: bool | None = None,
                headers: dict[str, str] | None = None):
        import json
        headers = {**self.headers, **(headers or {})}
        content = None
        if json_body is not None:
            headers["content-type"] = "application/json"
            content = json.dumps(json_body).encode()
        safe = method == "GET" if idempotent is None else idempotent
        return with_retries(safe, self.retry,
                            lambda _: handle(send(self.http, method, self.base_url + path, headers, content)))

    @staticmethod
    def _membership(message_type, ok: int):
        def handle(a: Answer):
            if a.status != ok:
                raise http_error(a)
            return parse(message_type, a.json())
        return handle

    @staticmethod
    def _enveloped(family: str, message_type):
        """000, 002 and 003 refuse with HTTP 200 and their envelope's code (EnvelopeError)."""
        code_of = {"000": ("c", "m", "d"), "002": ("code", "message", "data"), "003": ("status", "message", "data")}

        def handle(a: Answer):
            body = a.json()
            if a.status != 200 or not isinstance(body, dict):
                raise EnvelopeError(a.status, a.text[:200], body, a.request_id, "http", a.retry_after)
            code, message, data = code_of[family]
            refused = (body.get("success") is not True if family == "002"
                       else body.get(code) != (200 if family == "003" else 0))
            if refused:
                raise EnvelopeError(int(body.get(code) or 0), str(body.get(message)), body.get(data),
                                    a.request_id, family, a.retry_after)
            return parse(message_type, body)
        return handle

    # --- 001 ---
    def get_bootstrappers(self) -> mp.GetBootstrappersResponse:
        """Start-up flags (public): `vip_switch`."""
        return self.request("GET", "/api/v2/bootstrappers", self._membership(mp.GetBootstrappersResponse, 200))

    def get_vip_configs(self) -> mp.GetVipConfigsResponse:
        return self.request("GET", "/api/v2/vip/configs", self._membership(mp.GetVipConfigsResponse, 200))

    def create_vip_order(self, *, timezone: str, duration: int, level: str, pay_method: str,
                         request_id: str = "", **extra) -> mp.CreateVipOrderResponse:
        """201 Created. Retried only with a request_id (the same request_id answers the same order)."""
        body = {"timezone": timezone, "duration": duration, "level": level, "pay_method": pay_method, **extra}
        if request_id:
            body["request_id"] = request_id
        return self.request("POST", "/api/v2/vip/orders", self._membership(mp.CreateVipOrderResponse, 201),
                            json_body=body, idempotent=bool(request_id))

    def list_vip_orders(self, *, offset: int = 0, limit: int = 15, **filters) -> list[mp.VipOrder]:
        """One page (offset/limit), newest first; filters: s, d (YYYY-MM-DD), timezone."""
        def handle(a: Answer):
            if a.status != 200:
                raise http_error(a)
            return [parse(mp.VipOrder, o) for o in a.json()]
        query = urlencode({"offset": offset, "limit": limit, **filters})
        return self.request("GET", f"/api/v2/vip/orders?{query}", handle)

    def vip_orders(self, *, limit: int = 15, **filters) -> Iterator[mp.VipOrder]:
        """Every order, page after page."""
        offset = 0
        while True:
            page = self.list_vip_orders(offset=offset, limit=limit, **filters)
            yield from page
            if len(page) < limit:
                return
            offset += limit

    def get_vip_order(self, order_id: int) -> mp.VipOrder:
        return self.request("GET", f"/api/v2/vip/orders/{int(order_id)}", self._membership(mp.VipOrder, 200))

    def delete_vip_order(self, order_id: int) -> None:
        """204 No Content. Never retried (a second delete answers 404)."""
        def handle(a: Answer) -> None:
            if a.status != 204:
                raise http_error(a)
        self.request("DELETE", f"/api/v2/vip/orders/{int(order_id)}", handle, idempotent=False)

    def exchange_vip(self, level: str) -> mp.ExchangeVipResponse:
        """201 Created, or HttpError 403 when there is nothing to convert. Never retried."""
        return self.request("PATCH", "/api/v2/vip/exchange-vip", self._membership(mp.ExchangeVipResponse, 201),
                            json_body={"level": level}, idempotent=False)

    def check_iap_result(self, order_id: int, receipt: str) -> mp.VipOrder:
        """Verifies an App Store purchase for an `Iap` order and answers the order. Retried: a
        paid order answers itself again. HttpError 500 when the App Store did not confirm it."""
        return self.request("POST", f"/api/v2/vip/check-iap-result/{int(order_id)}",
                            self._membership(mp.VipOrder, 200), json_body={"receipt": receipt}, idempotent=True)

    def check_vip_order(self, order_id: int) -> mp.CheckVipOrderResponse:
        """`status` is true once the payment was notified and the membership granted."""
        return self.request("GET", f"/api/v2/vip/check-order/{int(order_id)}",
                            self._membership(mp.CheckVipOrderResponse, 200))

    def get_my_membership(self) -> mp.MembershipStatus:
        return self.request("GET", "/api/v2/vip/membership", self._membership(mp.MembershipStatus, 200))

    def get_vip_protocol(self) -> str:
        """The membership agreement (text/html)."""
        def handle(a: Answer) -> str:
            if a.status != 200:
                raise http_error(a)
            return a.text
        return self.request("GET", "/api/v2/vip/protocol", handle)

    # --- 000 ---
    def get_charge_index(self) -> rp.GetChargeIndexResponse:
        return self.request("GET", "/charge/index", self._enveloped("000", rp.GetChargeIndexResponse))

    def create_charge_payment(self, *, id: int, pay_type: str) -> rp.CreateChargePaymentResponse:
        """Never retried (creates a payment)."""
        return self.request("POST", "/charge/pay", self._enveloped("000", rp.CreateChargePaymentResponse),
                            json_body={"id": id, "payType": pay_type})

    # --- 002 ---
    def get_recharge(self) -> rp.GetRechargeResponse:
        return self.request("GET", "/api/recharge", self._enveloped("002", rp.GetRechargeResponse))

    def create_recharge_order(self, *, id: int, price: str, pay_mode_id: int, **extra) -> rp.CreateRechargeOrderResponse:
        """Never retried (creates an order)."""
        return self.request("POST", "/api/recharge/order", self._enveloped("002", rp.CreateRechargeOrderResponse),
                            json_body={"id": id, "price": price, "payModeId": pay_mode_id, **extra})

    def get_recharge_history(self, *, page: int = 1, rows: int = 20, **filters) -> rp.GetRechargeHistoryResponse:
        query = urlencode({"page": page, "rows": rows, **filters})
        return self.request("GET", f"/api/recharge/history?{query}", self._enveloped("002", rp.GetRechargeHistoryResponse))

    def recharge_history(self, *, rows: int = 20, **filters) -> Iterator[rp.RechargeRecord]:
        """Every record matching the filters, page after page."""
        page, seen = 1, 0
        while True:
            data = self.get_recharge_history(page=page, rows=rows, **filters).data
            yield from data.rows
            seen += len(data.rows)
            if len(data.rows) < rows or seen >= data.total:
                return
            page += 1

    # --- 003 ---
    def get_recharge_center(self, *, store_id: int, platform: str, client: str = "") -> rp.GetRechargeCenterResponse:
        """The route travels in the query (/index.php?s=...); client defaults to platform."""
        query = urlencode({"s": "/api/recharge/center", "client": client or platform})
        return self.request("GET", f"/index.php?{query}", self._enveloped("003", rp.GetRechargeCenterResponse),
                            headers={"storeId": str(store_id), "platform": platform})
