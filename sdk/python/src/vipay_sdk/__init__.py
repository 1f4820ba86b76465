"""vipay SDK for Python (see the package README and sdk/CHANGELOG.md)."""

from vipay_sdk.callback import CallbackError, CallbackHandler, MemoryNonceStore, NonceStore, callback_signing_string
from vipay_sdk.errors import (
    EnvelopeError, ErrorReason, GrpcError, HttpError, MembershipHttpStatus, MerchantError, NetworkError, OpenApiStatus,
    RechargeCode, VipayError, YoshopStatus,
)
from vipay_sdk.grpc import channel, wallet_entries
from vipay_sdk.http import VipayHttp
from vipay_sdk.merchant import MerchantClient, sign_md5, sign_rsa, signing_string
from vipay_sdk.retry import DEFAULT_TIMEOUT, RetryPolicy

__version__ = "0.2.0"
__all__ = [
    "CallbackError", "CallbackHandler", "MemoryNonceStore", "NonceStore", "callback_signing_string",
    "EnvelopeError", "ErrorReason", "GrpcError", "HttpError", "MembershipHttpStatus", "MerchantError", "NetworkError",
    "OpenApiStatus", "RechargeCode", "VipayError", "YoshopStatus", "channel", "wallet_entries", "VipayHttp",
    "MerchantClient", "sign_md5", "sign_rsa", "signing_string", "DEFAULT_TIMEOUT", "RetryPolicy",
]
