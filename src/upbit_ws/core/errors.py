"""The one exception tree of upbit-ws.

Every exception the library raises derives from :class:`UpbitWsError`, and each class says
whose fault it was, in the manner of h11:

* :class:`ServerRejectedError`: Upbit (or the simulator) rejected a request with an error frame
  or an error body; it carries Upbit's error ``name`` and ``message``.
* :class:`DecodeError`: the server sent something we cannot parse; it carries the first 200
  bytes of the frame.
* :class:`InvalidInputError`: the caller gave bad input (a bad code, option or configuration).
  :class:`UnknownCodeError` and :class:`ConfigError` refine it.
* :class:`AuthError`: the API key was refused, revoked or expired.
* :class:`RateLimitedError`: Upbit answered 429 or 418.
* :class:`TransportError`: the connection could not be opened, or closed under us.
  :class:`ConnectTimeoutError` and :class:`ConnectionClosedError` refine it.
* :class:`NotReadyError`: ``wait_ready()`` ran out of time; it names what was not ready.

Secrets never appear in any message or repr here: none of these classes takes a key or token.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "DecodeError",
    "InvalidInputError",
    "NotReadyError",
    "RateLimitedError",
    "ServerRejectedError",
    "TransportError",
    "UnknownCodeError",
    "UpbitWsError",
]

#: How much of an unparseable frame a :class:`DecodeError` keeps.
FRAME_HEAD_BYTES = 200


class UpbitWsError(Exception):
    """Base class of every exception upbit-ws raises."""


class ServerRejectedError(UpbitWsError):
    """Upbit rejected a request: an error frame such as ``WRONG_FORMAT`` or a REST error body.

    ``name`` is Upbit's error name (``INVALID_AUTH``, ``NO_TICKET``, ``invalid_access_key``...;
    REST sometimes sends a number, kept as its string), ``message`` its human text, ``status``
    the HTTP status for REST errors (``None`` for WebSocket error frames). ``close_code`` is
    the code of the close Upbit sent after an error frame, when the socket ended with it.
    """

    def __init__(
        self,
        name: str,
        message: str,
        *,
        status: int | None = None,
        close_code: int | None = None,
    ) -> None:
        self.name = name
        self.message = message
        self.status = status
        self.close_code = close_code
        where = f"HTTP {status} " if status is not None else ""
        closed = f" (socket closed with {close_code})" if close_code is not None else ""
        super().__init__(f"Upbit rejected the request: {where}{name}: {message}{closed}")


class DecodeError(UpbitWsError):
    """The server sent a frame we cannot parse (not JSON, or JSON of the wrong shape).

    ``frame_head`` holds the first 200 bytes of the frame, for the bug report.
    """

    def __init__(self, reason: str, frame: bytes | str) -> None:
        raw = frame.encode("utf-8", "replace") if isinstance(frame, str) else bytes(frame)
        self.reason = reason
        self.frame_head = raw[:FRAME_HEAD_BYTES]
        super().__init__(f"cannot decode frame: {reason}; frame starts {self.frame_head!r}")


class InvalidInputError(UpbitWsError, ValueError):
    """The caller gave bad input; the message says what to change."""


class UnknownCodeError(InvalidInputError):
    """A market code is not listed by Upbit; Upbit itself would ignore it silently.

    ``suggestions`` lists the closest listed codes.
    """

    def __init__(self, code: str, suggestions: Sequence[str] = ()) -> None:
        self.code = code
        self.suggestions = tuple(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"unknown market code {code!r}: Upbit does not list it and would send nothing{hint}"
        )


class ConfigError(InvalidInputError):
    """A configuration is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid configuration: " + "; ".join(self.problems))


class AuthError(UpbitWsError):
    """The API key was refused (invalid, revoked, expired, or lacking a permission).

    ``name`` is Upbit's error name when one was given (``invalid_access_key``,
    ``jwt_verification``, ``INVALID_AUTH``...). The key itself is never included.
    """

    def __init__(self, message: str, *, name: str | None = None, status: int | None = None):
        self.name = name
        self.status = status
        super().__init__(message)


class RateLimitedError(UpbitWsError):
    """Upbit answered HTTP 429 (too many requests) or 418 (blocked for a while).

    ``retry_after`` is the wait in seconds the server asked for, when it said.
    """

    def __init__(self, status: int, *, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after
        what = "blocked (418)" if status == 418 else f"rate limited ({status})"
        after = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        super().__init__(f"Upbit {what}{after}")


class TransportError(UpbitWsError):
    """The connection could not be opened (refused, timed out, TLS, handshake status)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ConnectionClosedError(TransportError):
    """An open connection closed: ``code`` is the close code (1006 when no close frame came)."""

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        text = f"connection closed with code {code}"
        super().__init__(f"{text}: {reason}" if reason else text)


class ConnectTimeoutError(TransportError, TimeoutError):
    """Opening the connection (TCP, TLS and WebSocket handshake) took longer than allowed."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"connect timed out after {timeout:g} s")


class NotReadyError(UpbitWsError, TimeoutError):
    """``wait_ready()`` ran out of time: ``problems`` names each part that was not ready.

    Each problem is one line such as ``"public: reconnecting (cannot connect to ...)"`` or
    ``"public: subscription not confirmed yet (1 of 3 streams)"``; ``timeout`` is the wait.
    """

    def __init__(self, problems: Sequence[str], *, timeout: float) -> None:
        self.problems = tuple(problems)
        self.timeout = timeout
        super().__init__(f"not ready after {timeout:g} s: " + "; ".join(self.problems))
