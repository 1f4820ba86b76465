"""One HTTP attempt: a timeout, the request id sent and read back, no answer -> NetworkError."""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from vipay_sdk.errors import NetworkError, retry_after_seconds
from vipay_sdk.retry import new_request_id


@dataclass
class Answer:
    status: int
    text: str
    request_id: str
    retry_after: float | None

    def json(self):
        try:
            return json.loads(self.text)
        except ValueError:
            return None


def send(http: httpx.Client, method: str, url: str, headers: dict[str, str], content: bytes | None = None) -> Answer:
    sent = headers.get("x-request-id") or new_request_id()
    try:
        res = http.request(method, url, headers={**headers, "x-request-id": sent}, content=content)
    except httpx.HTTPError as err:
        raise NetworkError(f"{method} {url}: {type(err).__name__}: {err}", sent) from err
    return Answer(res.status_code, res.text, res.headers.get("x-request-id") or sent,
                  retry_after_seconds(res.headers.get("retry-after")))
