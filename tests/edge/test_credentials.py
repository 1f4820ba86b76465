"""Service/admin credentials are not mintable with the user-token key; a bad
Access-Token next to a good bearer token is a bad token (docs/edge.md)."""

import os
import subprocess
import sys
import time

import grpc
import jwt
import pytest

from server.platform.settings import ROOT
from server.platform.auth import TokenKey, issue_token
from tests.conftest import auth
from vipay.membership.v1 import membership_pb2 as pb
from vipay.membership.v1 import membership_pb2_grpc as pb_grpc


def _status(channel, token):
    stub = pb_grpc.MembershipServiceStub(channel)
    try:
        stub.GetMembershipStatus(pb.GetMembershipStatusRequest(user_id=1), metadata=auth(token), timeout=5)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        return err.code()


def _service_claims(settings, **changes):
    now = int(time.time())
    claims = {"sub": "0", "role": "service", "iss": settings.service_jwt_issuer,
              "aud": settings.service_jwt_audience, "iat": now, "exp": now + 300}
    claims.update(changes)
    return claims


@pytest.mark.db
def test_service_role_needs_the_service_key(channel, settings, token):
    assert _status(channel, token(0, "service")) == grpc.StatusCode.OK
    # The user key with role service: the attack the issue describes.
    forged = issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 0, "service")
    assert _status(channel, forged) == grpc.StatusCode.UNAUTHENTICATED
    # The user key with the service issuer/audience: not a valid token of either kind.
    claims = _service_claims(settings)
    assert _status(channel, jwt.encode(claims, settings.jwt_secret, algorithm="HS256")) == \
        grpc.StatusCode.UNAUTHENTICATED
    # The service key, but long-lived, or without iat, or for role user: refused.
    key = settings.service_jwt_secret
    assert _status(channel, jwt.encode(_service_claims(settings, exp=int(time.time()) + 3600), key)) == \
        grpc.StatusCode.UNAUTHENTICATED
    no_iat = _service_claims(settings)
    del no_iat["iat"]
    assert _status(channel, jwt.encode(no_iat, key)) == grpc.StatusCode.UNAUTHENTICATED
    assert _status(channel, jwt.encode(_service_claims(settings, role="user"), key)) == \
        grpc.StatusCode.UNAUTHENTICATED
    # Operators read every user's membership (docs/console.md: support reads everything);
    # a user token does not.
    assert _status(channel, token(0, "support")) == grpc.StatusCode.OK
    assert _status(channel, token(1)) == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.db
def test_user_key_admin_token_cannot_edit_the_catalog(channel, settings):
    forged = issue_token(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, 0, "admin")
    stub = pb_grpc.MembershipServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateVipCatalog(pb.UpdateVipCatalogRequest(), metadata=auth(forged), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_cli_service_token_is_short_lived_and_signed_with_the_service_key(tmp_path):
    env = dict(os.environ, JWT_SECRET="u" * 32, SERVICE_JWT_SECRET="s" * 32)
    out = subprocess.run([sys.executable, "-m", "server", "token", "--user-id", "0", "--role", "service",
                          "--ttl", "86400"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    key = TokenKey("s" * 32, "vipay-internal", "vipay-services")
    claims = jwt.decode(out.stdout.strip(), key.secret, algorithms=["HS256"], issuer=key.issuer,
                        audience=key.audience)
    assert claims["role"] == "service" and claims["exp"] - claims["iat"] == 600
    user = subprocess.run([sys.executable, "-m", "server", "token", "--user-id", "7"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    assert jwt.decode(user.stdout.strip(), "u" * 32, algorithms=["HS256"], audience="vipay-clients")["sub"] == "7"


def test_keys_generates_a_separate_service_secret(tmp_path):
    """`python -m server keys` writes SERVICE_JWT_SECRET (mode 600) next to JWT_SECRET."""
    env_file = ROOT / "var" / "dev.env"
    subprocess.run([sys.executable, "-m", "server", "keys"], cwd=ROOT, check=True, capture_output=True)
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["SERVICE_JWT_SECRET"] and values["SERVICE_JWT_SECRET"] != values["JWT_SECRET"]
    assert env_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.db
def test_bad_access_token_next_to_a_good_bearer_is_401_in_each_family(gateway, token):
    good = token(3)
    with gateway.client(good, **{"Access-Token": "not-a-jwt"}) as c:
        membership = c.get("/api/v2/vip/membership")
        recharge = c.get("/api/recharge")
        center = c.get("/index.php", params={"s": "/api/recharge/center", "client": "H5"},
                       headers={"storeId": "1", "platform": "H5"})
    assert membership.status_code == 401 and membership.json() == {"message": "Unauthenticated.", "errors": {}}
    assert recharge.status_code == 200 and recharge.json()["code"] == 401 and recharge.json()["success"] is False
    assert center.json()["status"] == 401
    # Both good but naming different users: refused too.
    with gateway.client(good, **{"Access-Token": token(4)}) as c:
        assert c.get("/api/v2/vip/membership").status_code == 401
    with gateway.client(good, **{"Access-Token": good}) as c:
        assert c.get("/api/v2/vip/membership").status_code == 200
