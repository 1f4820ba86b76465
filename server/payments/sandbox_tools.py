"""Dev tools around the sandbox payment channel."""


from pathlib import Path

# Written by a running `python -m server run` (removed when it stops): the gateway it serves,
# so dev tools reach the running stack whichever ports it was started with.
GATEWAY_FILE = "gateway.url"


def running_gateway(var: Path) -> str | None:
    try:
        return (var / GATEWAY_FILE).read_text().strip() or None
    except OSError:
        return None


def send_sandbox_notification(app, path: str, reference: str, amount_fen: int, status: str,
                              gateway: str | None = None) -> bool:
    """Posts a signed sandbox notification through the gateway, as the provider would; True
    when the server accepted it (HTTP 200 `success`)."""
    import httpx

    body = app.sandbox.pay(reference, amount_fen, status)  # the sandbox's books say paid, as a provider's would
    url = (gateway or app.settings.public_base_url).rstrip("/") + path
    try:
        reply = httpx.post(url, content=body, headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    except httpx.HTTPError as err:
        print(f"POST {url} -> no answer: {err}")
        return False
    print(f"POST {url} -> {reply.status_code} {reply.text}")
    return reply.status_code == 200 and reply.text.strip().lower() == "success"
