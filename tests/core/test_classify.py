"""The error classifier: a documented table that retries transport trouble and stops on bugs."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import pytest

from upbit_ws.core import classify as classify_module
from upbit_ws.core import errors
from upbit_ws.core.classify import Decision, classify, error_frame_meaning, lasting_problem
from upbit_ws.core.errors import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    ConnectTimeoutError,
    DecodeError,
    InvalidInputError,
    NotReadyError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UnknownCodeError,
    UpbitWsError,
)

REJECTED = "request_rejected"

# (exception, verdict, backoff, cause)
TABLE: list[tuple[BaseException, str, str, str]] = [
    (RateLimitedError(429), "retry", "rate_limited", "rate_limited"),
    (RateLimitedError(418), "retry", "blocked", "blocked"),
    (AuthError("refused"), "retry", "auth", "auth"),
    (AuthError("again", name="nonce_used", status=401), "retry", "normal", "server_error"),
    (
        AuthError("hash", name="invalid_query_payload", status=401),
        "retry",
        "normal",
        "server_error",
    ),
    (ServerRejectedError("INVALID_AUTH", "인증 정보 오류"), "retry", "auth", "auth"),
    (ServerRejectedError("WRONG_FORMAT", "Format 이 맞지 않습니다."), "retry", "normal", REJECTED),
    (ServerRejectedError("invalid_access_key", "bad", status=401), "retry", "auth", "auth"),
    (ServerRejectedError("jwt_verification", "bad", status=401), "retry", "auth", "auth"),
    (ServerRejectedError("nonce_used", "again", status=401), "retry", "normal", "server_error"),
    (
        ServerRejectedError("invalid_query_payload", "hash", status=401),
        "retry",
        "normal",
        "server_error",
    ),
    (ServerRejectedError("too_many", "slow", status=429), "retry", "rate_limited", "rate_limited"),
    (ServerRejectedError("teapot", "blocked", status=418), "retry", "blocked", "blocked"),
    (ServerRejectedError("oops", "down", status=503), "retry", "normal", "server_error"),
    (ServerRejectedError("404", "Code not found", status=404), "fatal", "normal", REJECTED),
    (ConnectionClosedError(1006), "retry", "normal", "closed"),
    (ConnectionClosedError(1000, "after error"), "retry", "normal", "closed"),
    (TransportError("refused", status=429), "retry", "rate_limited", "rate_limited"),
    (TransportError("refused", status=418), "retry", "blocked", "blocked"),
    (TransportError("refused", status=401), "retry", "auth", "auth"),
    (TransportError("refused", status=403), "retry", "auth", "auth"),
    (TransportError("bad gateway", status=502), "retry", "normal", "server_error"),
    (TransportError("not found", status=404), "retry", "normal", "transport"),
    (TransportError("handshake failed"), "retry", "normal", "transport"),
    (ConnectTimeoutError(1.0), "retry", "normal", "timeout"),
    (DecodeError("not JSON", b"\x00"), "retry", "normal", "decode"),
    (UnknownCodeError("KRW-NOPE"), "fatal", "normal", "invalid_input"),
    (InvalidInputError("bad"), "fatal", "normal", "invalid_input"),
    (ConfigError(["x"]), "fatal", "normal", "config"),
    (UpbitWsError("something new"), "fatal", "normal", "bug"),
    (NotReadyError(["public: connecting"], timeout=1.0), "fatal", "normal", "bug"),
    (TimeoutError(), "retry", "normal", "timeout"),
    (ssl.SSLError(1, "bad record"), "retry", "normal", "tls"),
    (ssl.SSLCertVerificationError(1, "cert"), "retry", "normal", "tls"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "retry", "normal", "dns"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "retry", "normal", "transport"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), "retry", "normal", "transport"),
    (ConnectionAbortedError(), "retry", "normal", "transport"),
    (BrokenPipeError(), "retry", "normal", "transport"),
    (OSError(errno.ENETUNREACH, "unreachable"), "retry", "normal", "transport"),
    (asyncio.IncompleteReadError(b"", 10), "retry", "normal", "transport"),
    (asyncio.CancelledError(), "fatal", "normal", "cancelled"),
    (KeyboardInterrupt(), "fatal", "normal", "cancelled"),
    (SystemExit(1), "fatal", "normal", "cancelled"),
    (GeneratorExit(), "fatal", "normal", "cancelled"),
    (ValueError("bug"), "fatal", "normal", "bug"),
    (KeyError("bug"), "fatal", "normal", "bug"),
    (RuntimeError("bug"), "fatal", "normal", "bug"),
]


@pytest.mark.parametrize(
    ("exc", "verdict", "backoff", "cause"), TABLE, ids=[type(row[0]).__name__ for row in TABLE]
)
def test_classification_table(exc: BaseException, verdict: str, backoff: str, cause: str) -> None:
    """Each exception gets the verdict, backoff schedule and cause the documented table says."""
    decision = classify(exc)
    assert (decision.verdict, decision.backoff, decision.cause) == (verdict, backoff, cause)
    assert decision.retry == (verdict == "retry")


def test_every_library_exception_is_in_the_documented_table() -> None:
    """Every class of the exception tree is named in the classifier's docstring table."""
    doc = classify_module.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name


def test_every_library_exception_is_classified_in_tests() -> None:
    """The table above exercises every class of the exception tree at least once."""
    tested = {type(row[0]).__name__ for row in TABLE}
    assert set(errors.__all__) <= tested


def test_every_documented_401_name_is_either_a_key_refusal_or_transient() -> None:
    """Section 9.7's 401 names split into key refusals and one-token refusals, never both."""
    section_9_7 = {
        "invalid_query_payload",
        "jwt_verification",
        "expired_access_key",
        "nonce_used",
        "no_authorization_ip",
        "out_of_scope",
        "invalid_access_key",
    }
    assert section_9_7 <= classify_module.KEY_REFUSED_NAMES | classify_module.TRANSIENT_AUTH_NAMES
    assert not classify_module.KEY_REFUSED_NAMES & classify_module.TRANSIENT_AUTH_NAMES
    transient = classify_module.TRANSIENT_AUTH_NAMES
    assert transient == {"nonce_used", "invalid_query_payload"}


def test_websocket_error_frame_is_flagged_as_a_rejected_request() -> None:
    """An Upbit error frame on our request says so, so the shell does not resend it forever."""
    decision = classify(ServerRejectedError("NO_CODES", "codes 필드가 존재하지 않습니다."))
    assert decision.request_rejected
    assert decision.retry
    assert "NO_CODES" in decision.reason


def test_transport_failures_are_not_flagged_as_rejections() -> None:
    """A reset socket is not a rejected request: the same subscription is re-sent."""
    assert not classify(ConnectionResetError()).request_rejected


def _translated(cause: BaseException) -> TransportError:
    try:
        raise TransportError("cannot connect") from cause
    except TransportError as exc:
        return exc


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (socket.gaierror(socket.EAI_NONAME, "unknown host"), "dns"),
        (ssl.SSLCertVerificationError(1, "cert"), "tls"),
        (ConnectionRefusedError(), "transport"),
        (TimeoutError(), "timeout"),
        (ValueError("third-party bug"), "transport"),
    ],
)
def test_translated_transport_error_keeps_the_os_cause(cause: BaseException, expected: str) -> None:
    """A TransportError raised from an OSError names DNS or TLS trouble, and still retries."""
    decision = classify(_translated(cause))
    assert decision.retry
    assert decision.cause == expected


def test_retry_after_is_carried() -> None:
    """The server's Retry-After travels with the decision."""
    assert classify(RateLimitedError(418, retry_after=120.0)).retry_after == 120.0
    assert classify(RateLimitedError(429, retry_after=2.0)).retry_after == 2.0


def test_gaierror_is_matched_without_importing_socket() -> None:
    """A class named gaierror deriving from OSError counts as DNS, whatever its module."""

    class gaierror(OSError):  # mimics socket.gaierror's name
        pass

    assert classify(gaierror(-2, "no such host")).cause == "dns"


def test_cancelled_error_subclass_is_cancellation() -> None:
    """A subclass of asyncio.CancelledError is still cancellation, never retried."""

    class Cancelled(asyncio.CancelledError):
        pass

    assert classify(Cancelled()).cause == "cancelled"


def test_group_retries_on_the_longest_schedule() -> None:
    """A TaskGroup failure with a reset and a 418 backs off as blocked."""
    group = ExceptionGroup("tasks", [ConnectionResetError(), RateLimitedError(418)])
    assert classify(group).backoff == "blocked"


def test_group_with_a_bug_is_fatal() -> None:
    """A TaskGroup failure that includes a bug is surfaced, not retried."""
    group = ExceptionGroup("tasks", [ConnectionResetError(), ValueError("bug")])
    decision = classify(group)
    assert not decision.retry
    assert decision.cause == "bug"


def test_group_cancellation_wins() -> None:
    """Cancellation inside a group propagates ahead of other fatal causes."""
    group = BaseExceptionGroup("tasks", [ValueError("bug"), asyncio.CancelledError()])
    assert classify(group).cause == "cancelled"


def test_nested_group_is_flattened() -> None:
    """Groups inside groups are classified by their leaves."""
    inner = ExceptionGroup("inner", [RateLimitedError(429)])
    outer = ExceptionGroup("outer", [inner, TimeoutError()])
    assert classify(outer).backoff == "rate_limited"


def test_reason_names_the_exception_without_secrets() -> None:
    """The reason is the exception's type and text, for state-change events and logs."""
    decision = classify(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert decision.reason.startswith("ConnectionRefusedError:")
    assert classify(TimeoutError()).reason == "TimeoutError"


def test_decision_is_frozen() -> None:
    """A decision is an immutable value."""
    decision = classify(TimeoutError())
    assert isinstance(decision, Decision)
    with pytest.raises(AttributeError):
        decision.verdict = "fatal"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "connection", "meaning"),
    [
        ("WRONG_FORMAT", "public", "request_rejected"),
        ("NO_CODES", "private", "request_rejected"),
        ("INVALID_AUTH", "private", "key_refused"),
        ("INVALID_AUTH", "public", "other"),
        ("TOO_MANY_REQUEST", "public", "other"),
        ("SOMETHING_NEW", "private", "other"),
    ],
)
def test_error_frame_names_have_one_table(name: str, connection: str, meaning: str) -> None:
    """Issue 16.3: what an error-frame name means, per socket, comes from one function."""
    assert error_frame_meaning(name, connection=connection) == meaning  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "connection", "cause"),
    [
        ("INVALID_AUTH", "private", "auth"),
        ("INVALID_AUTH", "public", "closed"),
        ("WRONG_FORMAT", "public", "request_rejected"),
        ("TOO_MANY_REQUEST", "private", "closed"),
    ],
)
def test_an_error_frame_close_is_classified_by_that_table(
    name: str, connection: str, cause: str
) -> None:
    """The close after an error frame is classified by its name and socket, nothing else."""
    error = ServerRejectedError(name, "x", close_code=1000)
    decision = classify(error, connection=connection)  # type: ignore[arg-type]
    assert decision.retry and decision.cause == cause
    assert "1000" in decision.reason


@pytest.mark.parametrize(
    ("exc", "lasting"),
    [
        (TransportError("refused with HTTP 404", status=404), True),
        (TransportError("refused with HTTP 503", status=503), False),
        (TransportError("refused with HTTP 401", status=401), False),
        (TransportError("refused with HTTP 429", status=429), False),
        (TransportError("cannot connect"), False),
        (None, False),
    ],
)
def test_lasting_problem_by_status(exc: TransportError | None, lasting: bool) -> None:
    """Only a handshake status that says the URL is wrong is lasting; busy servers are not."""
    assert (lasting_problem(exc, url="ws://h/websocket/v1") is not None) is lasting


def test_lasting_problem_unknown_host_but_not_resolver_outage() -> None:
    """A name that does not exist is lasting; a temporary resolver failure is not."""
    import socket

    def translated(err: OSError) -> TransportError:
        try:
            raise TransportError("cannot connect") from err
        except TransportError as exc:
            return exc

    gone = translated(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    outage = translated(socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    assert "does not resolve" in (lasting_problem(gone, url="ws://x") or "")
    assert lasting_problem(outage, url="ws://x") is None
    # Upbit's own names exist: offline, macOS and Windows answer "no such name" for them.
    assert lasting_problem(gone, url="wss://api.upbit.com/websocket/v1") is None
    assert lasting_problem(gone, url="wss://sg-api.upbit.com/websocket/v1/private") is None
    assert lasting_problem(gone, url="wss://api.upbitt.com/websocket/v1") is not None
    assert lasting_problem(gone, url="wss://notupbit.com/websocket/v1") is not None
