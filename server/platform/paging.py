"""AIP-158 page tokens for gRPC callers: an opaque, URL-safe encoding of an offset."""

from __future__ import annotations

import base64

from server.platform.errors import Violations


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


MAX_OFFSET = 2**31 - 1  # what the int32 `offset` parameter can say; the database takes int64


def offset_from_token(token: str) -> int:
    try:
        prefix, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "o" and value.isdigit() and int(value) <= MAX_OFFSET:
            return int(value)
    except ValueError:
        pass
    v = Violations()
    v.add("page_token", "The page_token is not valid.")
    v.raise_if_any()
    return 0
