"""Bearer tokens: HS256 JWTs with a shared secret, issuer and audience checked.

Roles: `user` (default; the subject is the user id), `service` (internal callers)
and `admin` (operators)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from server.platform.errors import permission_denied, unauthenticated


VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str = "user"


def issue_token(secret: str, issuer: str, audience: str, user_id: int, role: str = "user",
                ttl_seconds: int = 30 * 86400) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    def __init__(self, secret: str, issuer: str, audience: str):
        if not secret:
            raise ValueError("JWT_SECRET is not set (run `python -m server keys`)")
        self._secret, self._issuer, self._audience = secret, issuer, audience
        # token -> (principal, valid until): a client sends the same token on every
        # call, and the HMAC + claim checks were the interceptor's largest cost.
        # Only successfully verified tokens are kept, never past their exp.
        self._verified: dict[str, tuple[Principal, float]] = {}

    def principal(self, metadata: dict[str, str]) -> Principal | None:
        """None when no token was sent; raises when one was sent and is bad."""
        token = metadata.get("authorization", "")
        if token:
            scheme, _, token = token.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise unauthenticated("Unauthenticated.")
        else:
            token = metadata.get("access-token", "")  # YoShop-style header
        if not token:
            return None
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], issuer=self._issuer,
                                audience=self._audience, options={"require": ["sub", "exp"]})
            principal = Principal(int(claims["sub"]), str(claims.get("role", "user")))
        except (jwt.InvalidTokenError, ValueError) as exc:
            raise unauthenticated("Unauthenticated.") from exc
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, min(float(claims["exp"]), now + VERIFIED_CACHE_SECONDS))
        return principal


def require_user(principal: Principal | None) -> int:
    if principal is None:
        raise unauthenticated()
    return principal.user_id


def require_role(principal: Principal | None, role: str) -> Principal:
    if principal is None:
        raise unauthenticated()
    if principal.role != role:
        raise permission_denied(f"Requires role {role}.")
    return principal
