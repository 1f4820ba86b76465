"""api-docs/002 error envelope: HTTP 200,
`{"message", "success": false, "code", "data": null | {...}}`."""

from __future__ import annotations

from server.platform.errors import DomainError
from server.recharge.envelope_codes import code_for, message_of


def recharge_envelope(err: DomainError) -> tuple[int, dict]:
    """Field errors list every field; captcha codes say where to get the image."""
    data: dict | None = None
    if err.violations:
        errors: dict[str, list[str]] = {}
        for v in err.violations:
            errors.setdefault(v.field, []).append(v.description)
        data = {"errors": errors}
    elif "captcha_url" in err.metadata:
        data = {"captchaUrl": err.metadata["captcha_url"]}
    return 200, {"message": message_of(err), "success": False, "code": code_for(err), "data": data}
