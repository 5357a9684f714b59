"""Credentials and JWTs: tokens Upbit accepts, and a secret that never shows up in any text."""

from __future__ import annotations

import copy
import hashlib
import pickle
import string
from urllib.parse import unquote, urlencode

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from upbit_ws import InvalidInputError
from upbit_ws.core.auth import (
    ACCESS_KEY_ENV,
    SECRET_KEY_ENV,
    Credentials,
    build_rest_token,
    build_ws_token,
    query_string,
)

ACCESS = "AccEss0123456789abcdefghijklmnopqrstuvWX"  # 40 characters, like Upbit's
SECRET = "SeCrEt0123456789abcdefghijklmnopqrstuvYZ"
NONCE = "9b4c5d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e"

keys = st.text(alphabet=string.ascii_letters + string.digits, min_size=16)


def _decode(token: str, secret: str = SECRET) -> dict[str, object]:
    payload: dict[str, object] = jwt.decode(token, secret, algorithms=["HS256"])
    return payload


def test_repr_hides_the_secret_and_redacts_the_access_key() -> None:
    """The repr shows four characters each side of the access key and no secret."""
    creds = Credentials(ACCESS, SECRET)
    assert repr(creds) == "Credentials(access_key='AccE…uvWX', secret_key=<hidden>)"
    assert str(creds) == repr(creds)
    assert f"{creds}" == repr(creds)


@given(keys, keys)
def test_secret_never_appears_in_any_text(access: str, secret: str) -> None:
    """For any key pair, neither repr, str nor format reveals the secret or the full access key."""
    creds = Credentials(access, secret)
    for text in (repr(creds), str(creds), f"{creds!r}", f"{[creds]}"):
        assert secret not in text
        assert access not in text


def test_short_access_key_is_fully_hidden() -> None:
    """A short access key is shown as a bare ellipsis, since four each side would be most of it."""
    assert "shortkey" not in repr(Credentials("shortkey", SECRET))


def test_invalid_credentials_do_not_echo_values() -> None:
    """Errors about bad keys name the field, never the value."""
    bad_secret = "my secret with spaces"
    with pytest.raises(InvalidInputError) as info:
        Credentials("", bad_secret)
    text = str(info.value)
    assert "access_key is empty" in text
    assert "secret_key contains whitespace" in text
    assert bad_secret not in text
    assert "secret with" not in repr(info.value)


def test_non_string_keys_are_refused() -> None:
    """A key of the wrong type is an input error naming its type only."""
    with pytest.raises(InvalidInputError, match="secret_key must be a string, got bytes"):
        Credentials(ACCESS, b"bytes-secret")  # type: ignore[arg-type]


def test_credentials_are_immutable() -> None:
    """Keys cannot be swapped on an existing Credentials."""
    creds = Credentials(ACCESS, SECRET)
    with pytest.raises(AttributeError):
        creds.secret_key = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del creds._access_key


def test_equality_hash_copy_and_pickle() -> None:
    """Credentials compare by value, hash, copy and pickle without losing the keys."""
    creds = Credentials(ACCESS, SECRET)
    assert creds == Credentials(ACCESS, SECRET)
    assert creds != Credentials(ACCESS, SECRET + "x")
    assert len({creds, Credentials(ACCESS, SECRET)}) == 1
    assert copy.copy(creds) == creds
    restored = pickle.loads(pickle.dumps(creds))
    assert (restored.access_key, restored.secret_key) == (ACCESS, SECRET)


def test_from_env_reads_both_variables() -> None:
    """Both variables set gives Credentials with those keys."""
    creds = Credentials.from_env({ACCESS_KEY_ENV: ACCESS, SECRET_KEY_ENV: SECRET})
    assert creds == Credentials(ACCESS, SECRET)


@pytest.mark.parametrize("env", [{}, {ACCESS_KEY_ENV: "", SECRET_KEY_ENV: "  "}])
def test_from_env_without_keys_means_public_only(env: dict[str, str]) -> None:
    """No (or empty) variables gives None: the manager runs public connections only."""
    assert Credentials.from_env(env) is None


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({ACCESS_KEY_ENV: ACCESS}, SECRET_KEY_ENV),
        ({SECRET_KEY_ENV: SECRET}, ACCESS_KEY_ENV),
    ],
)
def test_from_env_half_set_is_an_error_naming_the_missing_variable(
    env: dict[str, str], missing: str
) -> None:
    """Exactly one variable set is reported, by name, without any key value."""
    with pytest.raises(InvalidInputError, match=f"but {missing} is not") as info:
        Credentials.from_env(env)
    assert ACCESS not in str(info.value)
    assert SECRET not in str(info.value)


def test_from_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping the process environment is read."""
    monkeypatch.setenv(ACCESS_KEY_ENV, ACCESS)
    monkeypatch.setenv(SECRET_KEY_ENV, SECRET)
    assert Credentials.from_env() == Credentials(ACCESS, SECRET)


def test_ws_token_verifies_with_the_secret() -> None:
    """The handshake JWT is HS256 over exactly access_key and nonce."""
    token = build_ws_token(Credentials(ACCESS, SECRET), nonce=NONCE)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert _decode(token) == {"access_key": ACCESS, "nonce": NONCE}


def test_ws_token_fails_verification_with_another_secret() -> None:
    """A token signed with one secret does not verify with another."""
    token = build_ws_token(Credentials(ACCESS, SECRET), nonce=NONCE)
    with pytest.raises(jwt.InvalidSignatureError):
        _decode(token, secret="another-secret-of-at-least-32-bytes!!")


def test_token_does_not_contain_the_secret() -> None:
    """The secret signs the token but is not inside it."""
    token = build_ws_token(Credentials(ACCESS, SECRET), nonce=NONCE)
    assert SECRET not in token


def test_rest_token_hashes_the_query() -> None:
    """A REST token with parameters carries the SHA-512 of the unencoded query string."""
    query = query_string({"market": "KRW-BTC", "states": ["wait", "watch"]})
    token = build_rest_token(Credentials(ACCESS, SECRET), nonce=NONCE, query=query)
    assert _decode(token) == {
        "access_key": ACCESS,
        "nonce": NONCE,
        "query_hash": hashlib.sha512(query.encode()).hexdigest(),
        "query_hash_alg": "SHA512",
    }


@pytest.mark.parametrize("query", [None, ""])
def test_rest_token_without_parameters_has_no_hash(query: str | None) -> None:
    """A REST token without parameters carries no query hash at all."""
    token = build_rest_token(Credentials(ACCESS, SECRET), nonce=NONCE, query=query)
    assert _decode(token) == {"access_key": ACCESS, "nonce": NONCE}


@pytest.mark.parametrize("nonce", ["", None])
def test_nonce_is_required(nonce: object) -> None:
    """A missing nonce is an input error (Upbit rejects reused or empty nonces)."""
    with pytest.raises(InvalidInputError, match="nonce"):
        build_ws_token(Credentials(ACCESS, SECRET), nonce=nonce)  # type: ignore[arg-type]


def test_short_secret_signs_without_a_warning() -> None:
    """A short simulator secret signs quietly (pytest turns warnings into errors here)."""
    token = build_ws_token(Credentials(ACCESS, "short"), nonce=NONCE)
    assert jwt.decode(token, options={"verify_signature": False})["nonce"] == NONCE


def test_query_string_spells_arrays_upbits_way() -> None:
    """Arrays become repeated key[]=value pairs, in the caller's order, unencoded."""
    params = {"market": "KRW-BTC", "states": ["wait", "watch"], "page": 1, "order_by": "desc"}
    assert query_string(params) == (
        "market=KRW-BTC&states[]=wait&states[]=watch&page=1&order_by=desc"
    )


def test_query_string_matches_the_unquoted_urlencoding() -> None:
    """The string equals urlencode-then-unquote, what the official SDK hashes."""
    params = {"market": "KRW-BTC", "uuids[]": ["a-1", "b-2"], "limit": 100}
    expected = unquote(urlencode(params, doseq=True))
    assert query_string(params) == expected


def test_query_string_edge_values() -> None:
    """None values are left out, booleans are lower case, and [] keys are not doubled."""
    params = {"is_details": True, "cursor": None, "states[]": ("wait",), "x": False}
    assert query_string(params) == "is_details=true&states[]=wait&x=false"


def test_query_string_refuses_nested_values() -> None:
    """A value that is not a scalar or list of scalars is an input error naming the key."""
    with pytest.raises(InvalidInputError, match="'market'"):
        query_string({"market": {"a": 1}})  # type: ignore[dict-item]
