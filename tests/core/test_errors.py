"""The exception tree: one root, typed data, no secrets."""

from __future__ import annotations

import pytest

from upbit_ws import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    DecodeError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
    UpbitWsError,
)


@pytest.mark.parametrize(
    "exc",
    [
        ServerRejectedError("WRONG_FORMAT", "Format 이 맞지 않습니다."),
        DecodeError("not JSON", b"x" * 500),
        InvalidInputError("bad"),
        UnknownCodeError("KRW-BTCC", ["KRW-BTC"]),
        ConfigError(["a", "b"]),
        AuthError("refused"),
        RateLimitedError(429),
        TransportError("refused"),
        ConnectionClosedError(1006),
    ],
)
def test_every_error_derives_from_the_one_root(exc: Exception) -> None:
    """Every library exception can be caught as UpbitWsError."""
    assert isinstance(exc, UpbitWsError)


def test_decode_error_keeps_first_200_bytes() -> None:
    """A decode error carries exactly the first 200 bytes of the frame."""
    err = DecodeError("not JSON", b"a" * 150 + b"b" * 150)
    assert err.frame_head == b"a" * 150 + b"b" * 50


def test_unknown_code_error_names_close_matches() -> None:
    """The unknown-code error says which listed codes are close."""
    err = UnknownCodeError("KRW-BTCC", ["KRW-BTC", "KRW-BCH"])
    assert "KRW-BTC, KRW-BCH" in str(err)
    assert isinstance(err, ValueError)


def test_config_error_lists_every_problem() -> None:
    """A config error reports all problems at once."""
    assert str(ConfigError(["x must be > 0", "y missing"])).endswith("x must be > 0; y missing")


def test_server_rejected_carries_upbit_name() -> None:
    """Upbit's error name and message stay readable on the exception."""
    err = ServerRejectedError("NO_TICKET", "ticket missing")
    assert (err.name, err.message, err.status) == ("NO_TICKET", "ticket missing", None)
