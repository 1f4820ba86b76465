"""sdk/openapi.yaml: generated (never hand-edited), valid OpenAPI 3, and it lists
every documented path of api-docs/000-004 with its documented success codes."""

import subprocess
import sys
from pathlib import Path

import yaml
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "sdk/openapi.yaml"

# (method, path) -> statuses the documents (and our additions) promise.
DOCUMENTED = {
    ("get", "/charge/index"): {"200"},
    ("post", "/charge/pay"): {"200"},
    ("get", "/api/v2/bootstrappers"): {"200"},
    ("get", "/api/v2/vip/configs"): {"200"},
    ("post", "/api/v2/vip/orders"): {"201", "401", "422"},
    ("get", "/api/v2/vip/orders"): {"200", "401"},
    ("get", "/api/v2/vip/orders/{order}"): {"200", "404"},
    ("delete", "/api/v2/vip/orders/{order}"): {"204"},
    ("patch", "/api/v2/vip/exchange-vip"): {"201", "403"},
    ("post", "/api/v2/vip/check-iap-result/{orderId}"): {"200", "500"},
    ("get", "/api/v2/vip/protocol"): {"200"},
    ("get", "/api/v2/vip/check-order/{orderId}"): {"200"},
    ("get", "/api/recharge"): {"200"},
    ("post", "/api/recharge/order"): {"200"},
    ("get", "/api/recharge/history"): {"200"},
    ("get", "/index.php"): {"200"},
    ("post", "/v1/openapi/order/VIPCharge"): {"200"},
}


def spec() -> dict:
    return yaml.safe_load(SPEC.read_text())


def test_committed_spec_is_what_the_generator_writes():
    result = subprocess.run([sys.executable, "-m", "sdk.openapi_gen", "gateway/api.binpb", str(SPEC), "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_stale_spec_is_detected(tmp_path):
    stale = tmp_path / "openapi.yaml"
    stale.write_text(SPEC.read_text().replace("operationId: GetVipConfigs", "operationId: GetVipConfig"))
    result = subprocess.run([sys.executable, "-m", "sdk.openapi_gen", "gateway/api.binpb", str(stale), "--check"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "stale" in result.stderr


def test_spec_is_valid_openapi_3():
    document = spec()
    validate(document)
    assert document["openapi"].startswith("3.")


def test_every_documented_path_with_its_codes():
    paths = spec()["paths"]
    for (method, path), codes in DOCUMENTED.items():
        assert method in paths.get(path, {}), (method, path)
        assert codes <= set(paths[path][method]["responses"]), (method, path)


def test_what_the_gateway_adds():
    document = spec()
    paths = document["paths"]
    assert set(document["components"]["securitySchemes"]) == {"bearer", "accessToken"}
    assert document["components"]["securitySchemes"]["accessToken"]["name"] == "Access-Token"
    # Bare array (declared unwrap), text/html, 204 without a body.
    listing = paths["/api/v2/vip/orders"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing == {"type": "array", "items": {"$ref": "#/components/schemas/VipOrder"}}
    assert list(paths["/api/v2/vip/protocol"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    assert "content" not in paths["/api/v2/vip/orders/{order}"]["delete"]["responses"]["204"]
    # 003's route in the query, its headers; 004's signing headers and raw signed body.
    center = paths["/index.php"]["get"]
    route = next(p for p in center["parameters"] if p["name"] == "s")
    assert route["in"] == "query" and route["schema"]["enum"] == ["/api/recharge/center"]
    assert {"storeId", "platform"} <= {p["name"] for p in center["parameters"] if p["in"] == "header"}
    charge = paths["/v1/openapi/order/VIPCharge"]["post"]
    assert {"businessId", "nonce", "timestamp", "sign", "signType"} == {
        p["name"] for p in charge["parameters"] if p["in"] == "header"}
    assert "bizCode" in charge["requestBody"]["content"]["application/json"]["schema"]["properties"]
    # Envelopes: 000 errors come as HTTP 200 {"c","m","d"}; 001 errors in the status.
    pay = paths["/charge/pay"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/ChargeError"} in pay["anyOf"]
    assert paths["/api/v2/vip/orders"]["post"]["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThinksnsError"}
    # gRPC-only RPCs are not HTTP paths.
    operations = {op["operationId"] for item in paths.values() for op in item.values()}
    assert not {"GetMembershipStatus", "UpdateVipCatalog", "DebitWallet"} & operations


def test_request_constraints_are_what_the_server_accepts():
    """The spec is as strict as the API where fuzzers met refusals (GET/POST /api/v2/vip/orders,
    check-iap-result), and never stricter than the server: every listed zone is one it accepts."""
    from server.membership import rules
    from server.membership.history import _history_window

    s = spec()
    zones = s["components"]["schemas"]["TimeZone"]["enum"]
    assert "Asia/Shanghai" in zones and len(zones) > 300
    for name in zones:
        rules.zone(name)  # raises ValueError for a zone the server refuses
    orders = s["paths"]["/api/v2/vip/orders"]
    params = {p["name"]: p["schema"] for p in orders["get"]["parameters"]}
    assert params["timezone"] == {"allOf": [{"$ref": "#/components/schemas/TimeZone"}]}
    assert params["s"]["format"] == params["d"]["format"] == "date"
    limit = params["limit"]
    _history_window(0, limit["maximum"], "", "", zones[0])  # the largest documented page is accepted
    assert limit["maximum"] == 100 and params["page_size"]["maximum"] == 100 and params["offset"]["minimum"] == 0
    body = orders["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert body["timezone"]["allOf"] == [{"$ref": "#/components/schemas/TimeZone"}]
    assert (body["quantity"]["minimum"], body["quantity"]["maximum"]) == (0, rules.MAX_QUANTITY)
    assert body["request_id"]["maxLength"] == rules.MAX_REQUEST_ID
    iap = s["paths"]["/api/v2/vip/check-iap-result/{orderId}"]["post"]["requestBody"]["content"]["application/json"]
    assert iap["schema"]["properties"]["receipt"]["minLength"] == 1
