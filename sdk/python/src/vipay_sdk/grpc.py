"""Internal services over gRPC: a channel whose calls carry a request id and a default
timeout, raise GrpcError (ErrorInfo reason as ErrorReason), and are retried when safe
(reads, and writes with a request_id). The stubs are vipay.<area>.v1.*_pb2_grpc."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from google.rpc import error_details_pb2, status_pb2

from vipay_sdk.errors import GrpcError
from vipay_sdk.retry import DEFAULT_TIMEOUT, RetryPolicy, new_request_id, with_retries


def _typed(err: grpc.RpcError, sent: str) -> GrpcError:
    reason, metadata, violations = "", {}, []
    trailers = dict(err.trailing_metadata() or ())
    raw = trailers.get("grpc-status-details-bin")
    if raw:
        status = status_pb2.Status.FromString(raw)
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                br = error_details_pb2.BadRequest()
                detail.Unpack(br)
                violations = [(v.field, v.description) for v in br.field_violations]
    initial = dict(err.initial_metadata() or ()) if hasattr(err, "initial_metadata") else {}
    request_id = initial.get("x-request-id") or trailers.get("x-request-id") or sent
    return GrpcError(err.code(), err.details() or "", reason, metadata, request_id, violations)


class _Calls(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, token: str, timeout: float, retry: RetryPolicy):
        self.token, self.timeout, self.retry = token, timeout, retry

    def intercept_unary_unary(self, continuation, details, request):
        method = details.method.rsplit("/", 1)[-1]
        sent = new_request_id()
        metadata = list(details.metadata or []) + [("x-request-id", sent)]
        if self.token:
            metadata.append(("authorization", f"Bearer {self.token}"))
        details = details._replace(metadata=metadata, timeout=details.timeout or self.timeout)
        safe = method.startswith(("Get", "List", "Check", "Query")) or bool(getattr(request, "request_id", ""))

        def attempt(_: int):
            outcome = continuation(details, request)
            try:
                outcome.result()
            except grpc.RpcError as err:
                raise _typed(err, sent) from None
            return outcome

        return with_retries(safe, self.retry, attempt)


def channel(address: str, token: str = "", *, timeout: float = DEFAULT_TIMEOUT, retry: RetryPolicy = RetryPolicy(),
            credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """An authenticated channel (plaintext h2c unless `credentials` is given)."""
    base = grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)
    return grpc.intercept_channel(base, _Calls(token, timeout, retry))


def wallet_entries(wallet_stub, user_id: int, *, store_id: int = 0, page_size: int = 20) -> Iterator:
    """Every entry of a wallet, newest first, following next_page_token."""
    from vipay.recharge.v1 import wallet_pb2
    token = ""
    while True:
        page = wallet_stub.GetWallet(wallet_pb2.GetWalletRequest(user_id=user_id, store_id=store_id,
                                                                  page_size=page_size, page_token=token))
        yield from page.entries
        token = page.next_page_token
        if not token:
            return
