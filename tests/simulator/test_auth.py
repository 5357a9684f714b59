"""verify_token: the checks of section 5 and the 401 names of section 9.7, without sockets."""

from __future__ import annotations

import hashlib

import jwt
import pytest

from tests.simulator.helpers import token
from upbit_ws.simulator.auth import AuthFailure, KeyStore, verify_token

ACCESS, SECRET = "A" * 40, "S" * 64


@pytest.fixture
def keys() -> KeyStore:
    """Return a store with one key valid until t=1000."""
    store = KeyStore()
    store.add(ACCESS, SECRET, expire_at=1000.0)
    return store


def _check(keys: KeyStore, value: str, *, now: float = 0.0, query: str | None = None) -> object:
    return verify_token(f"Bearer {value}", keys=keys, now=now, query=query)


def _name(result: object) -> str:
    assert isinstance(result, AuthFailure)
    return result.name


def test_valid_tokens_pass(keys: KeyStore) -> None:
    """HS256 and HS512 tokens with a fresh nonce pass; an integer nonce is accepted."""
    assert not isinstance(_check(keys, token(ACCESS, SECRET)), AuthFailure)
    assert not isinstance(_check(keys, token(ACCESS, SECRET, algorithm="HS512")), AuthFailure)
    numeric = jwt.encode({"access_key": ACCESS, "nonce": 1785397200123}, SECRET, algorithm="HS256")
    assert not isinstance(_check(keys, numeric), AuthFailure)


def test_failures_have_upbit_names(keys: KeyStore) -> None:
    """Each refusal carries its section 9.7 name."""
    assert _name(verify_token(None, keys=keys, now=0.0)) == "jwt_verification"
    assert _name(_check(keys, "not-a-jwt")) == "jwt_verification"
    assert _name(_check(keys, token(ACCESS, "x" * 64))) == "jwt_verification"
    assert _name(_check(keys, token("B" * 40, SECRET))) == "invalid_access_key"
    assert _name(_check(keys, token(ACCESS, SECRET), now=2000.0)) == "expired_access_key"
    reused = token(ACCESS, SECRET, nonce="n-1")
    assert not isinstance(_check(keys, reused), AuthFailure)
    assert _name(_check(keys, reused)) == "nonce_used"
    keys.set_revoked(ACCESS, revoked=True)
    assert _name(_check(keys, token(ACCESS, SECRET))) == "invalid_access_key"


def test_query_hash_checked_when_there_are_params(keys: KeyStore) -> None:
    """With parameters, query_hash must be the SHA-512 of the unencoded query string."""
    query = "market=KRW-BTC&states[]=wait&states[]=watch"
    good = hashlib.sha512(query.encode()).hexdigest()
    ok = token(ACCESS, SECRET, query_hash=good, query_hash_alg="SHA512")
    assert not isinstance(_check(keys, ok, query=query), AuthFailure)
    assert _name(_check(keys, token(ACCESS, SECRET), query=query)) == "invalid_query_payload"
    wrong = token(ACCESS, SECRET, query_hash="00", query_hash_alg="SHA512")
    assert _name(_check(keys, wrong, query=query)) == "invalid_query_payload"


def test_secret_never_in_reprs(keys: KeyStore) -> None:
    """Neither the store nor a key shows the secret in its repr."""
    key = keys.get(ACCESS)
    assert SECRET not in repr(keys) and SECRET not in repr(key)
