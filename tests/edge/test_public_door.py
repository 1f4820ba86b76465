"""The public door (Envoy's HTTP listener) serves the documented HTTP paths only; raw
gRPC and the /package.Service/Method forms are refused there; gRPC/Envoy headers never
reach HTTP clients (docs/edge.md)."""

import json

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.conftest import auth
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc as pb_grpc

INTERNAL_HEADERS = ("grpc-status", "grpc-message", "grpc-accept-encoding", "grpc-status-details-bin",
                    "x-envoy-upstream-service-time")


def _list_services(target: str) -> list[str]:
    with grpc.insecure_channel(target) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                            timeout=5)
        return [s.name for a in answers for s in a.list_services_response.service]


def test_raw_grpc_is_refused_on_the_public_port_and_served_on_the_internal_one(gateway, grpc_server, token):
    public = f"127.0.0.1:{gateway.envoy.http_port}"
    with pytest.raises(grpc.RpcError) as refused:
        _list_services(public)
    assert refused.value.code() != grpc.StatusCode.OK
    with grpc.insecure_channel(public) as ch:
        with pytest.raises(grpc.RpcError):
            pb_grpc.MembershipServiceStub(ch).GetMembershipStatus(
                pb.GetMembershipStatusRequest(user_id=1), metadata=auth(token(0, "service")), timeout=5)
    # The internal door: the gRPC server's own address.
    assert "vipay.recharge.v1.WalletService" in _list_services(f"127.0.0.1:{grpc_server.port}")


@pytest.mark.parametrize("content_type", ["application/grpc", "application/grpc+proto", "application/grpc-web"])
def test_grpc_content_types_answer_415_over_http(gateway, content_type):
    with gateway.client() as c:
        r = c.post("/vipay.membership.v1.MembershipService/GetMembershipStatus", content=b"\x00\x00\x00\x00\x00",
                   headers={"content-type": content_type})
        documented = c.post("/api/v2/vip/orders", content=b"\x00\x00\x00\x00\x00",
                            headers={"content-type": content_type})
    assert r.status_code == 415 and documented.status_code == 415


@pytest.mark.parametrize("path", [
    "/vipay.membership.v1.MembershipService/GetVipConfigs",
    "/vipay.membership.v1.MembershipService/GetMembershipStatus",
    "/vipay.membership.v1.MembershipService/UpdateVipCatalog",
    "/vipay.recharge.v1.WalletService/Credit",
    "/vipay.payments.v1.RefundService/RefundOrder",
    "/vipay.payments.v1.RefundService/HandleRefundNotification",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.health.v1.Health/Check",
    "/yoshop/api/recharge/center",  # only reachable as /index.php?s=...
    "/admin",
])
def test_undocumented_paths_are_404(gateway, token, path):
    with gateway.client(token(0, "admin")) as c:
        post = c.post(path, json={"user_id": 1})
        get = c.get(path)
    assert (post.status_code, get.status_code) == (404, 404)


def test_responses_carry_no_grpc_or_envoy_headers(gateway, token):
    with gateway.client(token(1)) as c:
        answers = [
            c.get("/ping"),
            c.get("/api/v2/vip/configs"),
            c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                               "pay_method": "Alipay_AopApp"}),
            c.post("/api/v2/vip/orders", json={"level": "nope"}),  # 422 from the server
            c.get("/api/v2/vip/orders/999"),  # 404 from the server
            c.get("/api/v2/vip/orders/abc"),  # refused by Envoy
            c.get("/charge/index"),
            c.get("/api/recharge/captcha"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 201, 422, 404, 422, 200, 200]
    for answer in answers:
        assert not set(INTERNAL_HEADERS) & set(answer.headers), (answer.request.url, dict(answer.headers))


def test_every_answer_carries_the_request_id_the_server_logged(gateway, token, caplog):
    # Envoy makes the id, passes it to the server and answers it (always_set_request_id_in_response):
    # the server sends no response headers for a plain answer (issue 11), clients still get the id.
    caplog.set_level("INFO", logger="vipay.rpc")
    with gateway.client(token(1)) as c:
        answers = [c.get("/ping"), c.get("/api/v2/vip/configs"), c.get("/api/v2/vip/orders/999"),
                   c.post("/api/v2/vip/orders", json={"timezone": "Asia/Shanghai", "duration": 3, "level": "middle",
                                                      "pay_method": "Alipay_AopApp"})]
    assert [a.status_code for a in answers] == [200, 200, 404, 201]
    logged = {json.loads(r.getMessage())["request_id"] for r in caplog.records if r.name == "vipay.rpc"}
    for answer in answers:
        ids = answer.headers.get_list("x-request-id")
        assert len(ids) == 1 and ids[0] in logged, (answer.request.url, ids)
