"""API keys and JWT checks for the private WebSocket and the exchange REST endpoints.

Tokens follow section 5: ``Authorization: Bearer <jwt>`` with ``access_key`` and a fresh
``nonce``, signed HS256 or HS512 (both accepted, ``none`` refused). REST tokens also carry
``query_hash`` (hex SHA-512 of the unencoded query string or body params) when the request has
parameters. Failures use the 401 names of section 9.7. Secrets never leave this module: reprs
redact them and failures name the problem, never the key.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

import jwt

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "AUTH_MESSAGES",
    "ApiKey",
    "AuthFailure",
    "AuthFailureName",
    "KeyStore",
    "query_hash",
    "unverified_access_key",
    "verify_token",
]

ACCEPTED_ALGORITHMS: Final = ("HS256", "HS512")
_NONCE_MEMORY: Final = 100_000

AuthFailureName = Literal[
    "jwt_verification",
    "invalid_access_key",
    "expired_access_key",
    "nonce_used",
    "invalid_query_payload",
]
#: REST 401 messages (section 9.7; Korean host wording).
AUTH_MESSAGES: Final[dict[str, str]] = {
    "jwt_verification": "JWT 토큰 검증에 실패했습니다.",
    "invalid_access_key": "잘못된 엑세스 키입니다.",
    "expired_access_key": "API 키가 만료되었습니다.",
    "nonce_used": "이미 요청한 nonce값이 다시 사용되었습니다.",
    "invalid_query_payload": "JWT 헤더의 페이로드가 올바르지 않습니다.",
}


@dataclass(slots=True)
class ApiKey:
    """One API key pair; ``expire_at`` is epoch seconds on the simulated clock."""

    access_key: str
    secret_key: str = field(repr=False)
    expire_at: float
    revoked: bool = False
    nonces: set[str] = field(default_factory=set, repr=False)
    nonce_order: deque[str] = field(default_factory=deque, repr=False)

    def remember(self, nonce: str) -> bool:
        """Record ``nonce``; return ``False`` if it was used before (nonce reuse, 9.7)."""
        if nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        self.nonce_order.append(nonce)
        if len(self.nonce_order) > _NONCE_MEMORY:
            self.nonces.discard(self.nonce_order.popleft())
        return True


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a token was refused: a section 9.7 ``name`` and its message."""

    name: AuthFailureName

    @property
    def message(self) -> str:
        """Return Upbit's message for this failure."""
        return AUTH_MESSAGES[self.name]


class KeyStore:
    """The simulator's API keys: add, revoke, restore, expire."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    def add(self, access_key: str, secret_key: str, *, expire_at: float) -> ApiKey:
        """Add (or replace) a key pair valid until ``expire_at``."""
        key = ApiKey(access_key=access_key, secret_key=secret_key, expire_at=expire_at)
        self._keys[access_key] = key
        return key

    def get(self, access_key: str) -> ApiKey | None:
        """Return the key with this access key, if known."""
        return self._keys.get(access_key)

    def all(self) -> list[ApiKey]:
        """Return every key."""
        return list(self._keys.values())

    def set_revoked(self, access_key: str, *, revoked: bool) -> None:
        """Revoke or restore a key; raise ``KeyError`` if unknown."""
        self._keys[access_key].revoked = revoked

    def set_expiry(self, access_key: str, *, expire_at: float) -> None:
        """Move a key's expiry; raise ``KeyError`` if unknown."""
        self._keys[access_key].expire_at = expire_at

    def __repr__(self) -> str:
        return f"KeyStore(keys={len(self._keys)})"


def unverified_access_key(authorization: str | None) -> str | None:
    """Return the ``access_key`` claim of a Bearer token without checking it (for scoping)."""
    if not authorization or not authorization.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(authorization[7:].strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    key = claims.get("access_key")
    return key if isinstance(key, str) else None


def query_hash(query: str) -> str:
    """Return the hex SHA-512 of an unencoded query string (section 5)."""
    return hashlib.sha512(query.encode("utf-8")).hexdigest()


def verify_token(
    authorization: str | None,
    *,
    keys: KeyStore,
    now: float,
    query: str | None = None,
) -> ApiKey | AuthFailure:
    """Check a ``Bearer`` token; return the key, or why it is refused.

    ``query`` is the unencoded query string the token must hash (REST with parameters);
    ``None`` means the request has no parameters (WebSocket handshakes never have any).
    """
    if not authorization or not authorization.startswith("Bearer "):
        return AuthFailure("jwt_verification")
    token = authorization[len("Bearer ") :].strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return AuthFailure("jwt_verification")
    algorithm = header.get("alg")
    # HS256 (SDK, ccxt) and HS512 (docs example) are both accepted; never "none" (section 5).
    if algorithm not in ACCEPTED_ALGORITHMS:
        return AuthFailure("jwt_verification")
    access_key = claims.get("access_key")
    key = keys.get(access_key) if isinstance(access_key, str) else None
    if key is None:
        return AuthFailure("invalid_access_key")
    try:
        with warnings.catch_warnings():
            # Real Upbit secrets are 40 bytes; PyJWT warns about that for HS512. Not our call.
            warnings.simplefilter("ignore")
            jwt.decode(
                token,
                key.secret_key,
                algorithms=[algorithm],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
    except jwt.PyJWTError:
        return AuthFailure("jwt_verification")
    if key.revoked:
        return AuthFailure("invalid_access_key")
    if now >= key.expire_at:
        return AuthFailure("expired_access_key")
    nonce = claims.get("nonce")
    if isinstance(nonce, int) and not isinstance(nonce, bool):
        nonce = str(nonce)  # some clients send a millisecond counter; accept it as text
    if not isinstance(nonce, str) or not nonce:
        return AuthFailure("invalid_query_payload")
    if query is not None:
        wanted = claims.get("query_hash")
        alg = claims.get("query_hash_alg", "SHA512")
        if wanted != query_hash(query) or alg != "SHA512":
            return AuthFailure("invalid_query_payload")
    if not key.remember(nonce):
        return AuthFailure("nonce_used")
    return key
