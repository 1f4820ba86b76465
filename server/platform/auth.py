"""Bearer tokens: HS256 JWTs, issuer and audience checked.

Two keys, two kinds of credential (docs/edge.md):
- user tokens (role `user`, the subject is the user id): JWT_SECRET, JWT_ISSUER/JWT_AUDIENCE;
- service credentials (role `service` for internal callers, `admin` for operators):
  SERVICE_JWT_SECRET, SERVICE_JWT_ISSUER/SERVICE_JWT_AUDIENCE, at most
  SERVICE_TOKEN_MAX_SECONDS (10 min) between `iat` and `exp`.
A token signed with the user key that claims another role is refused: whoever can mint
user tokens (a login service, a leaked user key) cannot mint service credentials."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from server.platform.errors import permission_denied, unauthenticated

USER = "user"
SERVICE_ROLES = ("service", "admin", "finance", "support")  # the last three: operators (docs/console.md)
SERVICE_TOKEN_MAX_SECONDS = 600
MAX_SUBJECT = 2**31 - 1  # user ids are int32 in every contract
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str = USER
    session: str = ""  # an operator credential's console session (its `sid` claim)


@dataclass(frozen=True)
class TokenKey:
    secret: str
    issuer: str
    audience: str


def issue_token(secret: str, issuer: str, audience: str, user_id: int, role: str = USER,
                ttl_seconds: int = 30 * 86400, session: str = "") -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "role": role, "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_seconds}
    if session:
        claims["sid"] = session
    return jwt.encode(claims, secret, algorithm="HS256")


def issue_service_token(key: TokenKey, subject: int, role: str = "service",
                        ttl_seconds: int = SERVICE_TOKEN_MAX_SECONDS, session: str = "") -> str:
    if role not in SERVICE_ROLES:
        raise ValueError(f"service credentials carry one of {SERVICE_ROLES}, not {role}")
    if not key.secret:
        raise ValueError("SERVICE_JWT_SECRET is not set (run `python -m server keys`)")
    return issue_token(key.secret, key.issuer, key.audience, subject, role,
                       min(ttl_seconds, SERVICE_TOKEN_MAX_SECONDS), session)


class TokenVerifier:
    def __init__(self, user: TokenKey, service: TokenKey | None = None,
                 service_max_seconds: int = SERVICE_TOKEN_MAX_SECONDS,
                 session_ended: Callable[[str], bool] | None = None):
        if not user.secret:
            raise ValueError("JWT_SECRET is not set (run `python -m server keys`)")
        if service is not None and (not service.secret or service.secret == user.secret):
            raise ValueError("SERVICE_JWT_SECRET must be set and differ from JWT_SECRET")
        self._user, self._service, self._max = user, service, service_max_seconds
        # A credential naming a session (`sid`) dies with it: asked on every call, cached
        # or not, so a logout revokes the credentials already issued for that session.
        self._session_ended = session_ended
        # token -> (principal, valid until): a client sends the same token on every
        # call, and the HMAC + claim checks were the interceptor's largest cost.
        # Only successfully verified tokens are kept, never past their exp.
        self._verified: dict[str, tuple[Principal, float]] = {}

    def principal(self, metadata: dict[str, str]) -> Principal | None:
        """None when no token was sent; raises when one was sent and is bad. A bad
        `access-token` next to a good bearer token is bad too (README: a bad token is 401)."""
        tokens = []
        header = metadata.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise unauthenticated("Unauthenticated.")
            tokens.append(token)
        if "access-token" in metadata:  # YoShop-style header
            tokens.append(metadata["access-token"])
        principals = {self._verify(token) for token in tokens}
        if len(principals) > 1:
            raise unauthenticated("Unauthenticated.")  # two credentials naming different callers
        return principals.pop() if principals else None

    def _verify(self, token: str) -> Principal:
        if not token:
            raise unauthenticated("Unauthenticated.")
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None and now < hit[1]:
            return self._live(hit[0])
        try:
            claims = self._decode(token, self._user)
            if claims is None and self._service is not None:
                claims = self._decode(token, self._service)
                if claims is not None and not self._valid_service_claims(claims):
                    claims = None
            elif claims is not None and str(claims.get("role", USER)) != USER:
                claims = None  # a forged service credential: a bad token, 401 like any other
            if claims is None:
                raise unauthenticated("Unauthenticated.")
            subject = int(claims["sub"])
            if not 0 <= subject <= MAX_SUBJECT:
                raise ValueError("subject out of range")
            principal = Principal(subject, str(claims.get("role", USER)), str(claims.get("sid") or "")[:64])
            valid_until = min(float(claims["exp"]), now + VERIFIED_CACHE_SECONDS)
        except (ValueError, TypeError, OverflowError) as exc:
            raise unauthenticated("Unauthenticated.") from exc
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, valid_until)
        return self._live(principal)

    def _live(self, principal: Principal) -> Principal:
        if principal.session and (self._session_ended is None or self._session_ended(principal.session)):
            raise unauthenticated("The session has ended; log in again.")
        return principal

    @staticmethod
    def _decode(token: str, key: TokenKey) -> dict | None:
        try:
            return jwt.decode(token, key.secret, algorithms=["HS256"], issuer=key.issuer, audience=key.audience,
                              options={"require": ["sub", "exp"]})
        except jwt.InvalidTokenError:
            return None

    def _valid_service_claims(self, claims: dict) -> bool:
        iat, exp = claims.get("iat"), claims.get("exp")
        return (claims.get("role") in SERVICE_ROLES and isinstance(iat, int) and isinstance(exp, int)
                and 0 < exp - iat <= self._max and iat <= time.time() + 60)


CREDENTIAL_HEADERS = ("authorization", "access-token")


def check_single_credentials(names: list[str]) -> None:
    """Each credential header at most once: with two, only one would be checked (the
    metadata keeps the last), so `Access-Token: garbage` next to a good one passed."""
    sent = [name for name in names if name in CREDENTIAL_HEADERS]
    if len(sent) != len(set(sent)):
        raise unauthenticated("Unauthenticated.")


def require_user(principal: Principal | None) -> int:
    """A user's own paths take a user token only: a service or admin credential names no
    user (its subject 0 would read user 0's data)."""
    if principal is None:
        raise unauthenticated()
    if principal.role != USER:
        raise permission_denied("A user token is required.")
    return principal.user_id


def require_role(principal: Principal | None, role: str) -> Principal:
    if principal is None:
        raise unauthenticated()
    if principal.role != role:
        raise permission_denied(f"Requires role {role}.")
    return principal


def token_keys(settings) -> tuple[TokenKey, TokenKey | None]:
    """(user key, service key or None when SERVICE_JWT_SECRET is unset: then no
    service or admin credential is accepted at all)."""
    user = TokenKey(settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience)
    if not settings.service_jwt_secret:
        return user, None
    return user, TokenKey(settings.service_jwt_secret, settings.service_jwt_issuer, settings.service_jwt_audience)
