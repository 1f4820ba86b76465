"""The gateway config is valid for the real Envoy, as checked in and as rendered."""

import subprocess

from server.platform.envoy import envoy_binary, render_config, validate
from server.platform.settings import ROOT


def test_checked_in_envoy_config_validates():
    result = subprocess.run([envoy_binary(), "--mode", "validate", "-c", "gateway/envoy.yaml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OK" in result.stdout + result.stderr


def test_rendered_config_uses_the_given_ports_and_validates(tmp_path):
    text = render_config(18080, 19901, 15051)
    assert "port_value: 18080" in text and "port_value: 19901" in text and "port_value: 15051" in text
    assert str(ROOT / "gateway" / "api.binpb") in text
    result = validate(text, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]


def test_broken_config_is_refused(tmp_path):
    text = render_config(18080, 19901, 15051).replace("vipay.membership.v1.MembershipService",
                                                      "vipay.membership.v1.NoSuchService")
    assert validate(text, tmp_path).returncode != 0
