"""API credentials and the JWTs Upbit wants, with the secret kept out of every text.

Private WebSocket connections carry ``Authorization: Bearer <JWT>`` in the handshake, the JWT
holding ``access_key`` and a fresh ``nonce`` and signed HS256 with the secret key; REST calls
add ``query_hash`` (hex SHA-512 of the unencoded query string) and ``query_hash_alg`` when the
request has parameters (``docs/protocol.md`` section 5). HS256 is what the official SDK, the
docs' REST samples and ccxt sign with (section 5, algorithm [CONFLICT]). Nonces come from the
caller (the shell passes ``str(uuid.uuid4())``), which keeps this module pure.

The secret key never appears in a repr, a str, a log line or an exception message; the access
key is shown only redacted (first and last four characters).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Final

from upbit_ws.core.errors import InvalidInputError

__all__ = [
    "ACCESS_KEY_ENV",
    "JWT_ALGORITHM",
    "SECRET_KEY_ENV",
    "Credentials",
    "QueryValue",
    "build_rest_token",
    "build_ws_token",
    "query_string",
]

ACCESS_KEY_ENV: Final = "UPBIT_ACCESS_KEY"
SECRET_KEY_ENV: Final = "UPBIT_SECRET_KEY"
JWT_ALGORITHM: Final = "HS256"

# Shorter access keys are shown as a bare ellipsis: four characters each side would be most of
# the key. Upbit's access keys are 40 characters.
_SHOW_FROM_LENGTH: Final = 16
_SHOWN: Final = 4

#: A query parameter value: scalars, or a sequence sent as ``key[]=a&key[]=b`` (section 5).
QueryValue = str | int | float | bool | Sequence[str | int | float | bool] | None


def _redact(access_key: str) -> str:
    if len(access_key) < _SHOW_FROM_LENGTH:
        return "…"
    return f"{access_key[:_SHOWN]}…{access_key[-_SHOWN:]}"


def _check_key(name: str, value: object) -> list[str]:
    # Messages name the field, never the value: a misplaced secret must not leak through them.
    if not isinstance(value, str):
        return [f"{name} must be a string, got {type(value).__name__}"]
    if not value:
        return [f"{name} is empty"]
    if value != value.strip() or any(ch.isspace() for ch in value):
        return [f"{name} contains whitespace (a copy-paste slip?)"]
    return []


class Credentials:
    """An Upbit API key pair: ``access_key`` identifies the key, ``secret_key`` signs tokens.

    Immutable. ``repr`` and ``str`` show ``Credentials(access_key='abcd…wxyz',
    secret_key=<hidden>)``; comparison and hashing use both keys.
    """

    __slots__ = ("_access_key", "_secret_key")

    _access_key: str
    _secret_key: str

    def __init__(self, access_key: str, secret_key: str) -> None:
        problems = _check_key("access_key", access_key) + _check_key("secret_key", secret_key)
        if problems:
            raise InvalidInputError("invalid credentials: " + "; ".join(problems))
        object.__setattr__(self, "_access_key", access_key)
        object.__setattr__(self, "_secret_key", secret_key)

    @property
    def access_key(self) -> str:
        """Return the access key (an identifier; still keep it out of logs)."""
        return self._access_key

    @property
    def secret_key(self) -> str:
        """Return the secret key, for signing only."""
        return self._secret_key

    @property
    def access_key_hint(self) -> str:
        """Return the redacted access key shown in reprs, e.g. ``abcd…wxyz``."""
        return _redact(self._access_key)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Credentials are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Credentials are immutable")

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key_hint!r}, secret_key=<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credentials):
            return NotImplemented
        return (self._access_key, self._secret_key) == (other._access_key, other._secret_key)

    def __hash__(self) -> int:
        return hash((Credentials, self._access_key, self._secret_key))

    def __reduce__(self) -> tuple[type[Credentials], tuple[str, str]]:
        return (Credentials, (self._access_key, self._secret_key))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials | None:
        """Read ``UPBIT_ACCESS_KEY`` and ``UPBIT_SECRET_KEY`` from ``env`` (default: os.environ).

        Returns None when neither is set (or both are empty): the manager then runs public
        connections only. When exactly one is set, raises
        :class:`~upbit_ws.InvalidInputError` naming the missing variable, because a
        half-configured key is a mistake to report, not a reason to quietly go public-only.
        """
        source = os.environ if env is None else env
        access = source.get(ACCESS_KEY_ENV, "").strip()
        secret = source.get(SECRET_KEY_ENV, "").strip()
        if not access and not secret:
            return None
        if not access or not secret:
            missing, present = (
                (ACCESS_KEY_ENV, SECRET_KEY_ENV) if not access else (SECRET_KEY_ENV, ACCESS_KEY_ENV)
            )
            raise InvalidInputError(
                f"{present} is set but {missing} is not; set both for private streams, "
                "or neither for public streams only"
            )
        return cls(access, secret)


def _sign(payload: dict[str, str], secret: str) -> str:
    # Imported here, not at the top: PyJWT's package also loads its JWKS client, which imports
    # urllib and socket, and the core must stay importable without any I/O module.
    import jwt

    with warnings.catch_warnings():
        # PyJWT warns about HMAC keys under 32 bytes; the key length is Upbit's (40 characters)
        # or the simulator's choice, not the caller's to fix on every token.
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm=JWT_ALGORITHM)


def _check_nonce(nonce: object) -> str:
    if not isinstance(nonce, str) or not nonce:
        raise InvalidInputError("nonce must be a non-empty string, e.g. str(uuid.uuid4())")
    return nonce


def build_ws_token(credentials: Credentials, *, nonce: str) -> str:
    """Return the JWT for a private WebSocket handshake (``Authorization: Bearer <token>``).

    The payload is ``{"access_key": ..., "nonce": ...}`` (no query hash: a handshake has no
    parameters, section 5). Use a fresh ``nonce`` per connection.
    """
    payload = {"access_key": credentials.access_key, "nonce": _check_nonce(nonce)}
    return _sign(payload, credentials.secret_key)


def build_rest_token(credentials: Credentials, *, nonce: str, query: str | None = None) -> str:
    """Return the JWT for one authenticated REST request.

    ``query`` is the unencoded query string (or body as a query string) of the request, as
    built by :func:`query_string`; when it is non-empty the token carries ``query_hash`` (hex
    SHA-512 of it) and ``query_hash_alg: "SHA512"`` (section 5).
    """
    payload = {"access_key": credentials.access_key, "nonce": _check_nonce(nonce)}
    if query:
        payload["query_hash"] = hashlib.sha512(query.encode("utf-8")).hexdigest()
        payload["query_hash_alg"] = "SHA512"
    return _sign(payload, credentials.secret_key)


def _text(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidInputError(
        f"query parameter {key!r} has a {type(value).__name__}; use a string, number, bool "
        "or a list of them"
    )


def query_string(params: Mapping[str, QueryValue]) -> str:
    """Return Upbit's unencoded query string for ``params``, in their order.

    Sequences become repeated ``key[]=value`` pairs (``states[]=wait&states[]=watch``); a key
    already ending in ``[]`` is kept as is; None values are left out; booleans are ``true`` /
    ``false``. This exact text is what ``query_hash`` covers (section 5); the HTTP client may
    URL-encode it on the wire.
    """
    parts: list[str] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            name = key if key.endswith("[]") else f"{key}[]"
            parts.extend(f"{name}={_text(key, item)}" for item in value)
        else:
            parts.append(f"{key}={_text(key, value)}")
    return "&".join(parts)
