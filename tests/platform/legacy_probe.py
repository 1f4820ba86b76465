"""Run inside a copy of the tree (PYTHONPATH=<copy>:<copy>/gen, cwd=<copy>) by
test_legacy_declaration.py: starts that copy's gRPC server and Envoy on free ports,
sends two requests to /charge/pay and prints what came back as JSON.

    python legacy_probe.py <workdir>
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import uuid
from pathlib import Path

import httpx

from server.app import build_app, build_grpc_server
from server.platform.database import make_engine
from server.platform.envoy import Envoy
from server.platform.migrate import upgrade
from server.platform.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(work: Path) -> dict:
    url = f"sqlite:///{work / 'probe.db'}"
    upgrade(url)
    secret = "probe-" + uuid.uuid4().hex
    settings = Settings(database_url=url, jwt_secret=secret, service_jwt_secret=secret + "-service",
                        sandbox_secret=secret, catalog_refresh_seconds=0,
                        public_base_url="http://gateway.invalid", _env_file=None)
    app = build_app(settings, make_engine(settings.sqlalchemy_url), announce_channels=False)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    async def start():
        server = build_grpc_server(app, "127.0.0.1", 0)
        await server.start()
        return server

    server = run(start())
    envoy = Envoy(free_port(), free_port(), server.port, work / "envoy", log_path=work / "envoy.log")
    envoy.start()
    try:
        envoy.wait_healthy(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=10) as client:
            # Refused by Envoy itself (malformed JSON): the Lua filter's envelope.
            gateway = client.post("/charge/pay", content=b"{not json", headers={"content-type": "application/json"})
            # Refused by the server (nobody signed in): the servicer's envelope.
            server_reply = client.post("/charge/pay", json={"id": 1, "payType": "ALIPAYCASH"})
        return {"gateway": [gateway.status_code, gateway.json()],
                "server": [server_reply.status_code, server_reply.json()]}
    finally:
        envoy.stop()
        run(server.stop(0))
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
