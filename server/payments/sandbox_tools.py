"""Dev tools around the sandbox payment channel."""


def send_sandbox_notification(app, path: str, reference: str, amount_fen: int, status: str) -> None:
    """Posts a signed sandbox notification through the gateway, as the provider would."""
    import httpx

    body = app.sandbox.notification_for(reference, amount_fen, status)
    url = app.settings.public_base_url.rstrip("/") + path
    reply = httpx.post(url, content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    print(f"POST {url} -> {reply.status_code} {reply.text}")
