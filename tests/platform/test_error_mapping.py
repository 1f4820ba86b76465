"""Domain errors -> gRPC rich status and the 001 (ThinkSNS) envelope, in one table."""

import pytest
from google.rpc import error_details_pb2

from vipay.legacy.v1 import options_pb2 as legacy
from vipay.membership.v1 import membership_pb2  # noqa: F401 (the declarations the registry reads)

from server.platform.error_mapping import (
    DOMAIN,
    EnvelopeRegistry,
    gateway_error_headers,
    rich_status,
)
from server.membership.thinksns_envelope import thinksns_envelope
from server.platform.errors import DomainError, FieldViolation, Kind, invalid, not_found

CHECK_IAP = "/vipay.membership.v1.MembershipService/CheckIapResult"


def unpack(status):
    infos, bad = [], []
    for d in status.details:
        target = error_details_pb2.ErrorInfo() if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) \
            else error_details_pb2.BadRequest()
        d.Unpack(target)
        (infos if isinstance(target, error_details_pb2.ErrorInfo) else bad).append(target)
    return infos, bad


def test_rich_status_has_one_error_info_and_every_violation():
    err = invalid([FieldViolation("level", "bad"), FieldViolation("duration", "bad too")])
    infos, bad = unpack(rich_status(err))
    assert len(infos) == 1 and infos[0].reason == "INVALID_ARGUMENT" and infos[0].domain == DOMAIN
    assert [v.field for v in bad[0].field_violations] == ["level", "duration"]
    assert rich_status(err).code == 3  # INVALID_ARGUMENT


def test_rich_status_carries_metadata_and_no_bad_request_without_violations():
    infos, bad = unpack(rich_status(not_found("order", 7)))
    assert infos[0].reason == "ORDER_NOT_FOUND" and dict(infos[0].metadata) == {"order": "7"} and bad == []


@pytest.mark.parametrize("kind,status", [
    (Kind.INVALID, 422), (Kind.UNAUTHENTICATED, 401), (Kind.PERMISSION_DENIED, 403), (Kind.NOT_FOUND, 404),
    (Kind.CONFLICT, 409), (Kind.FAILED_PRECONDITION, 422), (Kind.RESOURCE_EXHAUSTED, 429),
    (Kind.UNAVAILABLE, 503), (Kind.INTERNAL, 500),
])
def test_thinksns_status_per_kind(kind, status):
    assert thinksns_envelope(DomainError("X", "msg", kind))[0] == status


def test_thinksns_body_groups_violations_by_field_and_iap_failures_are_500():
    err = invalid([FieldViolation("level", "a"), FieldViolation("level", "b")])
    assert thinksns_envelope(err) == (422, {"message": "The given data was invalid.", "errors": {"level": ["a", "b"]}})
    # check-iap-result declares IAP_ reasons as 500 (membership.proto); the registry applies it.
    registry = EnvelopeRegistry()
    registry.register(legacy.FAMILY_THINKSNS, thinksns_envelope, default=True)
    iap = DomainError("IAP_VERIFICATION_FAILED", "no", Kind.FAILED_PRECONDITION)
    assert registry.for_method(CHECK_IAP)(iap)[0] == 500
    assert registry.for_method(CHECK_IAP)(DomainError("NOT_IAP_ORDER", "no", Kind.FAILED_PRECONDITION))[0] == 422


def test_gateway_headers_are_ascii_json_and_registry_picks_the_declared_family():
    headers = dict(gateway_error_headers(DomainError("X", "订单不存在", Kind.NOT_FOUND), thinksns_envelope))
    assert headers["x-http-code"] == "404" and headers["x-http-body"].isascii()
    registry = EnvelopeRegistry()
    special = lambda err: (200, {})  # noqa: E731
    registry.register(legacy.FAMILY_THINKSNS, thinksns_envelope, default=True)
    registry.register(legacy.FAMILY_NOTIFICATION, special)
    assert registry.for_method("/vipay.membership.v1.MembershipService/GetVipOrder") is thinksns_envelope
    # A notification that declares the ThinkSNS envelope for its errors gets it, not its family's.
    assert registry.for_method("/vipay.membership.v1.MembershipService/HandlePaymentNotification") \
        is thinksns_envelope
    assert registry.for_method("/c.D/X") is thinksns_envelope  # the default: nothing declared


def test_error_details_copied_into_headers_are_bounded():
    """Any input echoed in an error (a 100 KB field name...) must not make a header
    Envoy refuses: that drops the upstream connection other clients share."""
    from server.platform.error_mapping import bounded

    huge = "x" * 100_000
    err = DomainError("OPENAPI_INVALID_PARAMS", "unknown field " + huge, Kind.INVALID, metadata={"f": huge},
                      violations=[FieldViolation(huge, huge)] * 50)
    short = bounded(err)
    headers = dict(gateway_error_headers(short, thinksns_envelope))
    assert len(headers["x-http-body"]) < 20_000 and len(rich_status(short).SerializeToString()) < 20_000
    assert short.message.startswith("unknown field xxx") and short.reason == err.reason and short.kind is err.kind
    ok = invalid([FieldViolation("level", "bad")])
    assert bounded(ok) is ok
