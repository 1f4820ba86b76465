"""The console's own Envoy listener (docs/console.md): on CONSOLE_HOST:CONSOLE_PORT
(loopback by default), never on the public door. It serves the built console (static
files, each an Envoy direct response read at start-up) and passes the console's
gRPC-Web calls, translated by Envoy's grpc_web filter, to the internal gRPC services
(the cluster of the public door, with its health checks)."""

from __future__ import annotations

import mimetypes
from pathlib import Path

MAX_FILE_BYTES = 8 * 1024 * 1024  # Envoy's direct responses default to 4 KiB
RPC_PREFIX = "/vipay."  # our services only: no reflection, no health
# Mantine sets style attributes, so style-src needs 'unsafe-inline'; scripts come only
# from the console's own files.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".json": "application/json",
         ".woff2": "font/woff2", ".png": "image/png", ".ico": "image/x-icon"}


def _header(name: str, value: str) -> dict:
    return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def _file_route(match: dict, path: Path, cache: str) -> dict:
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return {"match": match,
            "direct_response": {"status": 200, "body": {"filename": str(path)}},
            "response_headers_to_add": [_header("content-type", kind), _header("cache-control", cache)]}


def static_routes(dist: Path) -> list[dict]:
    """One route per built file; every other GET path is the SPA's index.html (its router
    decides). Vite's hashed assets are immutable; index.html is never cached."""
    index = dist / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"{index} is missing: run `make console`")
    routes = []
    for path in sorted(p for p in dist.rglob("*") if p.is_file() and p != index):
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"{path} is larger than {MAX_FILE_BYTES} bytes")
        cache = "public, max-age=31536000, immutable" if "assets" in path.parts else "no-cache"
        routes.append(_file_route({"path": "/" + path.relative_to(dist).as_posix()}, path, cache))
    routes.append(_file_route({"prefix": "/", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
                              index, "no-store"))
    return routes


def console_listener(host: str, port: int, dist: Path, cluster: str) -> dict:
    rpc = {"match": {"prefix": RPC_PREFIX},
           "route": {"cluster": cluster, "timeout": "60s"}}
    return {
        "name": "console",
        "address": {"socket_address": {"address": host, "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                         ".HttpConnectionManager",
                "stat_prefix": "console",
                "codec_type": "AUTO",
                "max_request_headers_kb": 16,
                "route_config": {
                    "name": "console",
                    "max_direct_response_body_size_bytes": MAX_FILE_BYTES,
                    "response_headers_to_add": [_header(k, v) for k, v in SECURITY_HEADERS.items()],
                    "virtual_hosts": [{"name": "console", "domains": ["*"],
                                       "routes": [rpc, *static_routes(dist)]}],
                },
                "http_filters": [
                    {"name": "envoy.filters.http.grpc_web",
                     "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"}},
                    {"name": "envoy.filters.http.router",
                     "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                                      "suppress_envoy_headers": True}},
                ],
            },
        }]}],
    }
