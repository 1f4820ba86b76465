"""The gateway config is valid for the real Envoy, as checked in and as rendered."""

import json
import subprocess

from server.platform.envoy import envoy_binary, render_config, validate
from server.platform.settings import ROOT


def test_checked_in_envoy_config_validates():
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", "gateway/envoy.yaml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def _ports(config: dict) -> dict:
    listeners = {item["name"]: item["address"]["socket_address"] for item in config["static_resources"]["listeners"]}
    cluster = config["static_resources"]["clusters"][0]
    endpoints = [e["endpoint"]["address"]["socket_address"]["port_value"]
                 for group in cluster["load_assignment"]["endpoints"] for e in group["lb_endpoints"]]
    return {"admin": config["admin"]["address"]["socket_address"]["port_value"],
            "listeners": {name: (a["address"], a["port_value"]) for name, a in listeners.items()},
            "endpoints": endpoints}


def test_rendered_config_uses_the_given_ports_and_validates(tmp_path):
    text = render_config(18080, 19901, 15051)
    assert _ports(json.loads(text)) == {"admin": 19901, "listeners": {"http": ("127.0.0.1", 18080)},
                                        "endpoints": [15051]}
    assert str(ROOT / "gateway" / "api.binpb") in text
    result = validate(text, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_multi_replica_config_balances_replicas_and_adds_the_internal_grpc_door(tmp_path):
    text = render_config(18080, 19901, [15052, 15053, 15054], internal=("127.0.0.1", 15051))
    config = json.loads(text)
    assert _ports(config) == {"admin": 19901, "endpoints": [15052, 15053, 15054],
                              "listeners": {"http": ("127.0.0.1", 18080), "internal_grpc": ("127.0.0.1", 15051)}}
    internal = config["static_resources"]["listeners"][1]["filter_chains"][0]["filters"][0]["typed_config"]
    route = internal["route_config"]["virtual_hosts"][0]["routes"][0]
    assert route["match"] == {"prefix": "/", "grpc": {}}
    # Only retries that cannot repeat work a replica has started.
    assert route["route"]["retry_policy"]["retry_on"] == "connect-failure,refused-stream,reset-before-request"
    assert [f["name"] for f in internal["http_filters"]] == ["envoy.filters.http.router"]  # no transcoder
    result = validate(text, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_broken_config_is_refused(tmp_path):
    text = render_config(18080, 19901, 15051).replace("vipay.membership.v1.MembershipService",
                                                      "vipay.membership.v1.NoSuchService")
    assert validate(text, tmp_path).returncode != 0
