"""AIP-158 page tokens for gRPC callers: opaque and URL-safe. A token says where the next
page starts: after an id (keyset, `k:`; what every page now hands out, so a page deep in a
long history costs what the first does) or at an offset (`o:`, tokens handed out before)."""

from __future__ import annotations

import base64

from server.platform.errors import Violations


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def keyset_token(last_id: int) -> str:
    """The next page: the rows after `last_id` in the list's (id descending) order."""
    return base64.urlsafe_b64encode(f"k:{last_id}".encode()).decode()


def position_from_token(token: str) -> tuple[int, int | None]:
    """(offset, before_id) a token stands for: (0, id) for a keyset token, (offset, None)
    for an offset token; 422 on page_token for anything else."""
    try:
        prefix, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "k" and value.isascii() and value.isdigit() and 0 < int(value) < 2**63:
            return 0, int(value)
    except ValueError:
        pass
    return offset_from_token(token), None


MAX_OFFSET = 2**31 - 1  # what the int32 `offset` parameter can say; the database takes int64


def offset_from_token(token: str) -> int:
    try:
        prefix, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix == "o" and value.isascii() and value.isdigit() and int(value) <= MAX_OFFSET:
            return int(value)
    except ValueError:
        pass
    v = Violations()
    v.add("page_token", "The page_token is not valid.")
    v.raise_if_any()
    return 0


def keyset_from_token(token: str) -> int | None:
    """The id a keyset-only list continues after; None for the first page (no token);
    400 on page_token for anything else (such lists never handed out offsets)."""
    if not token:
        return None
    offset, before_id = position_from_token(token)
    if before_id is None:
        v = Violations()
        v.add("page_token", "The page_token is not valid.")
        v.raise_if_any()
    return before_id
