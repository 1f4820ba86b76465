"""grpcurl (the real binary) sees our services through server reflection."""

import json
import subprocess
import sys
from pathlib import Path

GRPCURL = str(Path(sys.executable).with_name("grpcurl"))


def test_grpcurl_lists_and_calls_services(grpc_server):
    target = f"127.0.0.1:{grpc_server.port}"
    listed = subprocess.run([GRPCURL, "-plaintext", target, "list"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"vipay.membership.v1.MembershipService", "grpc.health.v1.Health"} <= services
    called = subprocess.run([GRPCURL, "-plaintext", target, "vipay.membership.v1.MembershipService/GetBootstrappers"],
                            capture_output=True, text=True, timeout=30)
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"vip-switch": True}
