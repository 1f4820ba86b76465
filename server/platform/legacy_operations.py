"""The legacy HTTP conventions each RPC declares (protos/vipay/legacy/v1/options.proto),
as the server reads them: the success status header a gateway caller gets, and which
envelope renders its errors. The same declaration feeds the OpenAPI generator (sdk/openapi_gen) and the gateway's generated Lua table (legacy_lua.py)."""

from __future__ import annotations

from google.protobuf import descriptor_pool
from vipay.legacy.v1 import options_pb2

Operation = options_pb2.Operation
NOT_DECLARED = options_pb2.Operation()


def declared(method: str) -> options_pb2.Operation:
    """`/package.Service/Method` -> its declaration (empty for gRPC-only or unknown methods)."""
    try:
        descriptor = descriptor_pool.Default().FindMethodByName(method.lstrip("/").replace("/", "."))
    except KeyError:
        return NOT_DECLARED
    return descriptor.GetOptions().Extensions[options_pb2.operation]


def success_headers(operation: options_pb2.Operation) -> dict[str, str]:
    """The response headers the gateway's Lua filter applies to a success (docs/edge.md).
    Not `unwrap`: the gateway reads it from its generated table (legacy_lua.py), so a
    bare-array success needs no initial metadata, a separate send in gRPC's core (a
    quarter of the 001 history page's Python time under load)."""
    headers = {}
    if operation.success_status not in (0, 200):
        headers["x-http-code"] = str(operation.success_status)
    return headers


def envelope_family(operation: options_pb2.Operation) -> int:
    """The family whose envelope renders this operation's errors."""
    return operation.error_envelope or operation.family


def reason_statuses(operation: options_pb2.Operation) -> tuple[tuple[str, int], ...]:
    """(reason prefix, HTTP status) rules the operation declares."""
    return tuple((s.reason_prefix, s.code) for s in operation.statuses if s.reason_prefix)
