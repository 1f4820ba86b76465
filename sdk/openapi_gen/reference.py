"""What makes the reference explain itself (issue 19 §5), added to the generated document:
a signing section with a worked example, the code tables of every family (read from the
one declaration, protos/vipay/legacy/v1/errors.proto, with its comments), the 004 status
callback as an OpenAPI `callbacks` entry, and what `redocly lint` asks of every operation
(a summary, security declared — empty for public paths —, typed nullables, tag texts)."""

from __future__ import annotations

import hashlib
import hmac
import re

ERRORS_FILE = "vipay/legacy/v1/errors.proto"

# The worked example (api-docs/004 MD5 signing). Fixed test values, not any merchant's key:
# tests/platform/test_openapi_reference.py recomputes the signature with the server's code.
EXAMPLE = {
    "secret": "example-secret-not-real",
    "path": "/v1/openapi/order/VIPCharge",
    "businessId": "166",
    "timestamp": "1628757969177",
    "nonce": "5K8264ILTKCH16CQ",
    "body": '{"merchantId":"166","businessId":"166","productCode":"87103","mobile":"15012616978",'
            '"account":"w23b52","bizCode":"87103","callbackUrl":"https://merchant.example.com/vip/notify"}',
    "sign": "448c8a3650402d3f84c26b6fa2534097",
}


def example_signing_string() -> str:
    e = EXAMPLE
    return "\n".join(["POST", e["path"], e["businessId"], e["timestamp"], e["nonce"], e["body"]]) + "\n"


def signing_section() -> str:
    e = EXAMPLE
    text = example_signing_string()
    assert hmac.new(e["secret"].encode(), text.encode(), hashlib.md5).hexdigest() == e["sign"]
    indented = "\n".join("    " + line for line in text.splitlines())
    return f"""## Signing (004 merchant API)

Every 004 request carries the headers `businessId`, `nonce` (8-64 of `[A-Za-z0-9_-]`, new for
every request), `timestamp` (milliseconds, within 5 minutes of our clock), `signType`
(`SHA256-RSA`, the default, or `MD5`) and `sign`, the signature of six lines, each ending in
`\\n`: `POST`, the path, businessId, timestamp, nonce, and the body bytes exactly as sent.

- `SHA256-RSA`: RSASSA-PKCS1-v1_5 / SHA-256 with your private key; `sign` is standard base64.
- `MD5`: HMAC-MD5 with your secret as the key; `sign` is the hex digest.

**Worked example** (MD5, secret `{e["secret"]}` — a fixed test value, not a merchant's key):
headers `businessId: {e["businessId"]}`, `timestamp: {e["timestamp"]}`, `nonce: {e["nonce"]}`,
`signType: MD5`; the signed text (a final `\\n` follows the body):

{indented}

`sign` = HMAC-MD5(secret, that text) = `{e["sign"]}`. A retry needs a new nonce and timestamp
(and so a new signature) but the same body: the charge is idempotent by `bizCode`.

Status callbacks are signed by us (SHA256-RSA, our platform public key) over
`CALLBACK\\n<YOUR merchantId>\\n<businessId>\\n<timestamp>\\n<nonce>\\n<raw body>\\n`; verify with
your own merchantId, check the timestamp window, refuse nonces you have seen, answer `SUCCESS`.
"""


def _enum_docs(image) -> list[tuple[str, str, list[tuple[str, int, str]]]]:
    """(enum name, its comment, [(value name without prefix, number, comment)]) of errors.proto."""
    from .spec import comment

    out = []
    for f in image.files:
        if f.name != ERRORS_FILE:
            continue
        where = {tuple(loc.path): loc.leading_comments for loc in f.source_code_info.location}
        for i, enum in enumerate(f.enum_type):
            prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
            values = [(v.name.removeprefix(prefix), v.number, comment(where.get((5, i, 2, j), "")))
                      for j, v in enumerate(enum.value) if not v.name.endswith("_UNSPECIFIED") or v.number]
            out.append((enum.name, comment(where.get((5, i), "")), values))
    return out


def code_tables(image) -> str:
    parts = ["## Error codes per family\n\nDeclared once in `protos/vipay/legacy/v1/errors.proto`; the SDKs' "
             "typed errors are generated from it and every error carries the `x-request-id` of the call."]
    for name, doc, values in _enum_docs(image):
        rows = "\n".join(f"| {num} | {value} | {text.replace('|', '/').replace(chr(10), ' ')} |"
                         for value, num, text in values)
        parts.append(f"### {name}\n\n{doc}\n\n| code | name | meaning |\n|---|---|---|\n{rows}")
    return "\n\n".join(parts)


def summary(operation: dict, name: str) -> str:
    doc = re.sub(r"^\d{3}: ", "", operation.get("description", ""))  # "002: creates ..." -> "creates ..."
    first = re.split(r"(?<=[.:])\s", doc, maxsplit=1)[0].rstrip(".:") if doc else ""
    if not first or len(first) > 80:
        first = re.sub(r"(?<!^)(?=[A-Z])", " ", name).capitalize()
    return first[:1].upper() + first[1:]


def typed_nullables(node):
    """OpenAPI 3.0: `nullable` needs a `type`; a value that is always null is an object that is null."""
    if isinstance(node, dict):
        if node.get("nullable") and "type" not in node and not any(k in node for k in ("$ref", "allOf", "anyOf", "oneOf")):
            node["type"] = "object"
            if node.get("enum") == [None]:  # "always null": generators choke on an enum of null alone
                del node["enum"]
        for v in node.values():
            typed_nullables(v)
    elif isinstance(node, list):
        for v in node:
            typed_nullables(v)


TAGS = {
    "diagnostics": "Liveness through the gateway.",
    "001 membership": "api-docs/001: memberships. Bare resources; refusals are the HTTP status with "
                      "`{\"message\", \"errors\"}` (MembershipHttpStatus).",
    "notifications": "Payment providers' notifications (signed by the provider).",
    "000 charge": "api-docs/000: `{\"c\",\"m\",\"d\"}`, refusals with HTTP 200 and `c` (RechargeCode).",
    "002 recharge": "api-docs/002: `{\"message\",\"success\",\"code\",\"data\"}`, refusals with HTTP 200 and "
                    "`code` (RechargeCode).",
    "003 mall recharge": "api-docs/003: `{\"status\",\"message\",\"data\"}` (YoshopStatus), HTTP 200.",
    "004 merchant": "api-docs/004: signed merchant calls (see Signing); `{\"status\",\"message\",\"data\"}` "
                    "with HTTP 200 (OpenApiStatus); status callbacks to the merchant's callbackUrl.",
}


def status_callback(b, signing_headers) -> dict:
    """The 004 status callback, as an OpenAPI `callbacks` entry of VIPCharge."""
    headers = [dict(h, description=h.get("description", "")) for h in signing_headers]
    headers.append({"name": "merchantId", "in": "header", "required": True, "schema": {"type": "string"},
                    "description": "The merchant the report is for (verify with YOUR merchantId, not this header)."})
    return {"statusCallback": {"{$request.body#/callbackUrl}": {"post": {
        "summary": "Status callback: the order reached a final state",
        "description": "POSTed for each final state (success, failed, refunded), signed by the platform "
                       "(see Signing). Answer HTTP 200 `SUCCESS`; anything else is retried after 15 s, 30 s, "
                       "3 min, ... (10 attempts). The same report may arrive twice: process it by orderCode.",
        "parameters": headers,
        "security": [],  # signed by the platform (headers), no security scheme
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": b.ref(".vipay.openapi.v1.StatusCallback", True)}}},
        "responses": {"200": {"description": "Accepted", "content": {"text/plain": {
            "schema": {"type": "string", "enum": ["SUCCESS"]}}}},
                      "400": {"description": "Refused by your handler (bad signature, stale, replayed): "
                                             "the report is sent again later with a new nonce."}},
    }}}}


def polish(doc: dict, b, signing_headers) -> dict:
    """Adds the reference sections and what redocly lint asks for (no change to what the API does)."""
    doc["info"]["description"] += "\n\n" + signing_section() + "\n" + code_tables(b.image)
    doc["info"]["license"] = {"name": "Proprietary", "url": "https://vipay.example.com/terms"}
    # Tag names become module/class names in generated clients ("001 membership" is no Python
    # identifier): an identifier-safe name, shown as the document's name (x-displayName).
    safe = {t["name"]: re.sub(r"^(\d{3}) (.+)$", r"\2_\1", t["name"]).replace(" ", "_") for t in doc["tags"]}
    doc["tags"] = [{"name": safe[t["name"]], "x-displayName": t["name"], "description": TAGS.get(t["name"], t["name"])}
                   for t in doc["tags"]]
    for path, ops in doc["paths"].items():
        for verb, op in ops.items():
            op["tags"] = [safe.get(t, t) for t in op.get("tags", [])]
            op.setdefault("summary", summary(op, op["operationId"]))
            op.setdefault("security", [])  # public, or signed with headers (004): no security scheme
            if op["operationId"] == "VipCharge":
                op["callbacks"] = status_callback(b, signing_headers)
    typed_nullables(doc)
    return doc
