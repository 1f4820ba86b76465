"""Fetching a provider-chosen URL (a statement's download link) under an address
policy: only http(s), only the configured provider hosts (exact host or host:port,
no user info), no redirects, a timeout and a size bound."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from server.payments.statements import MAX_FILE_BYTES, StatementError


def allowed(url: str, hosts: tuple[str, ...]) -> bool:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("https", "http") or parts.username or parts.password or not parts.hostname:
        return False
    host = parts.hostname.lower()
    return host in hosts or (port is not None and f"{host}:{port}" in hosts)


def fetch_allowed(url: str, hosts: tuple[str, ...], timeout: float, limit: int = MAX_FILE_BYTES) -> bytes:
    if not allowed(url, hosts):
        raise StatementError(f"download URL host is not an allowed provider host: {urlsplit(url).netloc[:100]!r}")
    try:
        with requests.get(url, timeout=timeout, allow_redirects=False, stream=True) as response:
            if response.status_code != 200:
                raise StatementError(f"download answered {response.status_code}")
            data = bytearray()
            for chunk in response.iter_content(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise StatementError("download larger than the statement limit")
            return bytes(data)
    except requests.RequestException as exc:
        raise StatementError(f"download failed: {exc}") from exc
