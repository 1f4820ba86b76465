"""Legacy clients' habits keep working (issue 18 §4): cache-busting and tracking query
parameters are ignored on every family, as the PHP backends did; unknown body fields too."""

import pytest

from tests.edge.test_input_at_the_edge import _stable

EXTRA = "_t=1733380000&_=1733380000123&timestamp=1733380000&lang=zh-CN&utm_source=h5"

GETS = [
    "/ping",
    "/api/v2/bootstrappers",
    "/api/v2/vip/configs",
    "/api/v2/vip/orders?offset=0&limit=15",
    "/api/v2/vip/protocol",
    "/api/v2/vip/membership",
    "/charge/index",
    "/api/recharge",
    "/api/recharge/history?page=1&rows=10",
    "/index.php?s=/api/recharge/center&client=H5",
]


def _with_extra(path: str) -> str:
    return path + ("&" if "?" in path else "?") + EXTRA


@pytest.mark.db
@pytest.mark.parametrize("path", GETS)
def test_unknown_query_parameters_are_ignored(gateway, token, path):
    with gateway.client(token(1), storeId="10001", platform="H5") as c:
        plain, extra = c.get(path), c.get(_with_extra(path))
    assert extra.status_code == plain.status_code == 200, (extra.status_code, extra.text[:200])
    if extra.headers["content-type"].startswith("application/json"):
        assert _stable(extra.json()) == _stable(plain.json())
    else:
        assert extra.content == plain.content


@pytest.mark.db
def test_ping_with_a_query_names_no_proto_type(gateway):
    with gateway.client() as c:
        r = c.get("/ping?x=1")
    assert r.status_code == 200 and r.json() == {"ok": True}


ORDER = {"timezone": "Asia/Shanghai", "duration": 3, "level": "middle", "pay_method": "Alipay_AopApp"}


@pytest.mark.db
@pytest.mark.parametrize("method, path, body", [
    ("POST", "/api/v2/vip/orders", ORDER),
    ("POST", "/charge/pay", {"id": 2, "payType": "ALIPAYCASH"}),
    ("POST", "/api/recharge/order", {"id": 1, "price": "28", "payModeId": 2}),
])
def test_unknown_body_fields_and_query_parameters_are_ignored_on_writes(gateway, token, method, path, body):
    with gateway.client(token(1)) as c:
        plain = c.request(method, path, json=body)
        extra = c.request(method, _with_extra(path), json=dict(body, _t=1733380000, lang="zh-CN", device={"a": 1}))
    assert extra.status_code == plain.status_code < 300, extra.text[:300]
    assert _stable(extra.json()) == _stable(plain.json())
