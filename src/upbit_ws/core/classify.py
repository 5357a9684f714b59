"""Classify the exception that ended a connection (or a connect attempt): retry or stop, and how.

The reconnect loop is not a catch-all: it asks :func:`classify` what an exception means and
follows the :class:`Decision`. Third-party exceptions (picows, aiohttp) are translated into the
library's own tree by the transport adapter first; what reaches this table is the library's
exceptions and the standard OSError/timeout family.

======================================  =======  ============  ================  ============
exception                               verdict  backoff       cause             notes
======================================  =======  ============  ================  ============
RateLimitedError(429)                   retry    rate_limited  rate_limited      (1)
RateLimitedError(418)                   retry    blocked       blocked           (2)
AuthError                               retry    auth          auth              (3)
AuthError named nonce_used or           retry    normal        server_error      (5)
invalid_query_payload
ServerRejectedError INVALID_AUTH        retry    auth          auth              (3)
(WS frame; not on the public socket)
ServerRejectedError, WS error frame     retry    normal        request_rejected  (4)
named INVALID_PARAM, WRONG_FORMAT,
NO_TICKET, NO_TYPE or NO_CODES
ServerRejectedError, other WS error     retry    normal        closed            (15)
frame (TOO_MANY_REQUEST, ...)
ServerRejectedError HTTP 401 key names  retry    auth          auth              (3)
ServerRejectedError HTTP nonce_used,    retry    normal        server_error      (5)
invalid_query_payload
ServerRejectedError HTTP 429 / 418      retry    rate_limited  rate_limited /    (1) (2)
                                                 / blocked     blocked
ServerRejectedError HTTP 5xx            retry    normal        server_error
ServerRejectedError other HTTP 4xx      fatal    normal        request_rejected  (6)
ConnectionClosedError (any code)        retry    normal        closed            (7)
ConnectTimeoutError                     retry    normal        timeout           (12)
TransportError status 429 / 418         retry    rate_limited  rate_limited /    (1) (2)
                                                 / blocked     blocked
TransportError status 401 / 403         retry    auth          auth              (3)
TransportError (other)                  retry    normal        transport,        (8)
                                                               dns or tls
DecodeError                             retry    normal        decode            (9)
UnknownCodeError, InvalidInputError     fatal    normal        invalid_input     (10)
ConfigError                             fatal    normal        config            (10)
NotReadyError                           fatal    normal        bug               (16)
UpbitWsError (any other subclass)       fatal    normal        bug               (11)
TimeoutError (also asyncio's)           retry    normal        timeout           (12)
ssl.SSLError, cert errors (by name)     retry    normal        tls               (8)
socket.gaierror (matched by name)       retry    normal        dns               (8)
ConnectionRefusedError, ...ResetError,  retry    normal        transport         (8)
ConnectionAbortedError, BrokenPipeError
other OSError, EOFError                 retry    normal        transport         (8)
CancelledError, KeyboardInterrupt,      fatal    normal        cancelled         (13)
SystemExit, GeneratorExit
BaseExceptionGroup                      worst of its leaves                      (14)
anything else                           fatal    normal        bug               (11)
======================================  =======  ============  ================  ============

Notes (section numbers refer to ``docs/protocol.md``):

1. HTTP 429 on the handshake or REST: back off longer, at least a floor of several seconds,
   honouring Retry-After (section 8.1).
2. HTTP 418: Upbit blocks the client for a while, longer on repeat; wait out the block
   (Retry-After when given, else a growing floor) (section 8.1).
3. The API key was refused: stop the private connection until the key works again; the
   key-health loop re-opens it, and a slow fallback retry runs meanwhile (section 5).
4. Upbit answered a request *we* built with an error frame and then closes the socket with
   1000 (sections 7.2, 7.3). That is a bug report, not a retry loop: reconnect, but re-send the
   last request Upbit accepted, never the rejected one, and surface a ``RequestRejected``
   event. ``Decision.request_rejected`` tells the shell so.
5. ``nonce_used`` and ``invalid_query_payload`` (REST 401, section 9.7) refuse one token (a
   nonce seen before, a query hash that does not match), not the key: the next request signs a
   new token. Stopping a private connection for them would stop a working key.
   :data:`TRANSIENT_AUTH_NAMES` lists them, :data:`KEY_REFUSED_NAMES` the names that do refuse
   the key; the key-health loop uses the same two sets.
6. Any other REST 4xx means our request was wrong; retrying the same request cannot help.
7. A closed socket is always reconnected; Upbit itself drops idle sockets with 1006 and closes
   with 1000 after an error frame (sections 6, 7.3).
8. Reconnect never gives up on transport problems: refused, reset, DNS and TLS failures all
   retry on the ordinary schedule (capped, so a long outage costs one connect per cap). A
   TransportError translated from an OSError (its ``__cause__``) takes that error's cause
   (``dns``, ``tls``, ``timeout``) for clearer reasons.
9. A frame we cannot parse is normally counted and skipped by the shell; if one ever ends a
   connection, reconnecting is the right answer.
10. The caller's input is wrong; retrying cannot fix it.
11. Everything unknown is treated as a bug and surfaced, never swallowed by a retry loop.
12. A timeout is a transport problem; the session also grows its connect timeout on it.
13. Cancellation and interpreter exit must propagate, never be retried.
14. A group (from a TaskGroup) is fatal if any leaf is fatal, else it retries on the longest
    schedule among its leaves (blocked > rate_limited > auth > normal).
15. An error frame whose name says neither that the request is malformed nor that the key is
    refused (``TOO_MANY_REQUEST`` is documented only for indicator requests, which the library
    never sends; ``INVALID_AUTH`` on the public socket answers a private type asked there)
    says nothing against the request: the socket Upbit closes after it (section 7.3) is
    reconnected like any close, and the current request goes out again.

16. ``wait_ready()`` raises it to its caller; it never ends a connection, so meeting it here
    is a bug.

Error frames themselves (section 7.2) are read in one place, the managed connection, which
decodes each one once into a typed :class:`~upbit_ws.core.messages.ErrorFrame`; what its name
means is :func:`error_frame_meaning`, the one table of error-frame names (notes 3, 4, 15), used
by the connection (through :func:`classify`) and the subscription layer alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from upbit_ws.core.backoff import BackoffClass
from upbit_ws.core.errors import (
    AuthError,
    ConfigError,
    ConnectionClosedError,
    DecodeError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
    TransportError,
    UpbitWsError,
)
from upbit_ws.core.events import ConnectionKind

__all__ = [
    "KEY_REFUSED_NAMES",
    "REQUEST_ERROR_NAMES",
    "TRANSIENT_AUTH_NAMES",
    "UNREACHED_CAUSES",
    "Cause",
    "Decision",
    "ErrorFrameMeaning",
    "Verdict",
    "classify",
    "error_frame_meaning",
    "lasting_problem",
]

#: ``retry``: reconnect on the backoff schedule; ``fatal``: stop and surface the exception.
Verdict = Literal["retry", "fatal"]

#: What kind of failure it was, for logs, statistics and state-change reasons.
Cause = Literal[
    "closed",
    "transport",
    "timeout",
    "dns",
    "tls",
    "rate_limited",
    "blocked",
    "auth",
    "request_rejected",
    "server_error",
    "decode",
    "invalid_input",
    "config",
    "cancelled",
    "bug",
]

#: Causes of a connect that may have reached no server: refused, unreachable or reset
#: (``transport``), a name that does not resolve (``dns``), no answer in time (``timeout``).
#: A long reconnect wait after one is watched for the network's return (``core/session.py``).
UNREACHED_CAUSES: Final[frozenset[Cause]] = frozenset({"transport", "dns", "timeout"})

#: Error names that mean the API key itself is refused: the WebSocket frame ``INVALID_AUTH``
#: (section 7.2) and the REST 401 names of section 9.7 that are about the key (unknown, revoked,
#: expired, wrong secret so the signature fails, IP not allowed, permission missing).
KEY_REFUSED_NAMES: Final = frozenset(
    {
        "INVALID_AUTH",
        "invalid_access_key",
        "jwt_verification",
        "expired_access_key",
        "no_authorization_ip",
        "out_of_scope",
    }
)
#: REST 401 names that refuse one token, not the key (note 5): a new token cures them.
TRANSIENT_AUTH_NAMES: Final = frozenset({"nonce_used", "invalid_query_payload"})
#: Error-frame names that say the request itself is malformed (section 7.2; note 4).
REQUEST_ERROR_NAMES: Final = frozenset(
    {"INVALID_PARAM", "WRONG_FORMAT", "NO_TICKET", "NO_TYPE", "NO_CODES"}
)

#: What an error frame says: Upbit refused the request in flight, refused the API key, or
#: neither (note 15).
ErrorFrameMeaning = Literal["request_rejected", "key_refused", "other"]


def error_frame_meaning(
    name: str, *, connection: ConnectionKind | None = None
) -> ErrorFrameMeaning:
    """Return what an error frame named ``name`` means on the ``connection`` socket.

    The one table of error-frame names (notes 3, 4 and 15): ``INVALID_AUTH`` refuses the key
    except on the public socket, where it answers a private type asked there.
    """
    if name in REQUEST_ERROR_NAMES:
        return "request_rejected"
    if name in KEY_REFUSED_NAMES and connection != "public":
        return "key_refused"
    return "other"


_BACKOFF_RANK: Final[dict[BackoffClass, int]] = {
    "normal": 0,
    "auth": 1,
    "rate_limited": 2,
    "blocked": 3,
}


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about an exception: the verdict, the backoff schedule and why.

    ``retry_after`` is the server's requested wait in seconds, when it gave one.
    ``request_rejected`` is true when Upbit rejected a request the library built: the shell
    must not send that request again (re-send the last accepted one) and should surface it.
    ``reason`` is a short human text for logs and state-change events; it never holds secrets.
    """

    verdict: Verdict
    backoff: BackoffClass
    cause: Cause
    reason: str
    retry_after: float | None = None
    request_rejected: bool = False

    @property
    def retry(self) -> bool:
        """Return whether the connection should be re-opened."""
        return self.verdict == "retry"


def _retry(
    cause: Cause,
    reason: str,
    *,
    backoff: BackoffClass = "normal",
    retry_after: float | None = None,
    request_rejected: bool = False,
) -> Decision:
    return Decision("retry", backoff, cause, reason, retry_after, request_rejected)


def _fatal(cause: Cause, reason: str, *, request_rejected: bool = False) -> Decision:
    return Decision("fatal", "normal", cause, reason, None, request_rejected)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _by_status(status: int, reason: str, retry_after: float | None = None) -> Decision | None:
    """Classify an HTTP status shared by handshakes and REST answers, or return None."""
    if status == 429:
        return _retry("rate_limited", reason, backoff="rate_limited", retry_after=retry_after)
    if status == 418:
        return _retry("blocked", reason, backoff="blocked", retry_after=retry_after)
    if status in (401, 403):
        return _retry("auth", reason, backoff="auth")
    if status >= 500:
        return _retry("server_error", reason)
    return None


def _server_rejected(
    exc: ServerRejectedError, reason: str, connection: ConnectionKind | None
) -> Decision:
    if exc.status is None:
        # A WebSocket error frame; Upbit closes the socket right after it (section 7.3).
        meaning = error_frame_meaning(exc.name, connection=connection)
        if meaning == "key_refused":
            return _retry("auth", reason, backoff="auth")
        if meaning == "request_rejected":
            # It answers a request we built: reconnect, never re-send the rejected request.
            return _retry("request_rejected", reason, request_rejected=True)
        return _retry("closed", reason)
    if exc.name in KEY_REFUSED_NAMES:
        return _retry("auth", reason, backoff="auth")
    if exc.name in TRANSIENT_AUTH_NAMES:
        return _retry("server_error", reason)
    by_status = _by_status(exc.status, reason)
    if by_status is not None:
        return by_status
    return _fatal("request_rejected", reason, request_rejected=True)


def _library(exc: BaseException, reason: str, connection: ConnectionKind | None) -> Decision | None:
    """Classify the library's own exceptions, or return None for anything else."""
    decision: Decision | None = None
    if isinstance(exc, RateLimitedError):
        if exc.status == 418:
            decision = _retry("blocked", reason, backoff="blocked", retry_after=exc.retry_after)
        else:
            decision = _retry(
                "rate_limited", reason, backoff="rate_limited", retry_after=exc.retry_after
            )
    elif isinstance(exc, AuthError):
        if exc.name in TRANSIENT_AUTH_NAMES:
            decision = _retry("server_error", reason)
        else:
            decision = _retry("auth", reason, backoff="auth")
    elif isinstance(exc, ServerRejectedError):
        decision = _server_rejected(exc, reason, connection)
    elif isinstance(exc, ConnectionClosedError):
        decision = _retry("closed", reason)
    elif isinstance(exc, TransportError):
        decision = _transport(exc, reason)
    elif isinstance(exc, DecodeError):
        decision = _retry("decode", reason)
    elif isinstance(exc, ConfigError):
        decision = _fatal("config", reason)
    elif isinstance(exc, InvalidInputError):
        decision = _fatal("invalid_input", reason)
    return decision


def _transport(exc: TransportError, reason: str) -> Decision:
    if isinstance(exc, TimeoutError):  # ConnectTimeoutError
        return _retry("timeout", reason)
    if exc.status is not None:
        by_status = _by_status(exc.status, reason)
        if by_status is not None:
            return by_status
    elif isinstance(exc.__cause__, OSError | EOFError):
        # The adapter translated an OSError; keep its finer cause (dns, tls, timeout).
        return _builtin(exc.__cause__, reason)
    return _retry("transport", reason)


def _derives_from(exc: BaseException, name: str, modules: tuple[str, ...]) -> bool:
    """Return whether a class named ``name`` from one of ``modules`` is among exc's bases."""
    return any(cls.__name__ == name and cls.__module__ in modules for cls in type(exc).__mro__)


def _builtin(exc: BaseException, reason: str) -> Decision:
    if isinstance(exc, TimeoutError):
        return _retry("timeout", reason)
    # ssl.SSLError is matched by name too: importing ssl would import socket into the core.
    if isinstance(exc, OSError) and _derives_from(exc, "SSLError", ("ssl", "_ssl")):
        return _retry("tls", reason)
    # socket.gaierror is an OSError subclass; matched by name so the core never imports socket.
    if isinstance(exc, OSError) and type(exc).__name__ == "gaierror":
        return _retry("dns", reason)
    if isinstance(exc, OSError | EOFError):
        return _retry("transport", reason)
    return _fatal("bug", reason)


def _group(group: BaseExceptionGroup[BaseException], connection: ConnectionKind | None) -> Decision:
    leaves = [classify(exc, connection=connection) for exc in group.exceptions]
    fatal = [d for d in leaves if not d.retry]
    if fatal:
        # Cancellation wins over other fatal causes: it must propagate first.
        return next((d for d in fatal if d.cause == "cancelled"), fatal[0])
    return max(leaves, key=lambda d: _BACKOFF_RANK[d.backoff])


def classify(exc: BaseException, *, connection: ConnectionKind | None = None) -> Decision:
    """Return what to do about ``exc``: retry or stop, on which backoff schedule, and why.

    ``connection`` is the socket it ended, when known (it matters to error frames only). The
    full table is in the module docstring.
    """
    if isinstance(exc, BaseExceptionGroup):
        if not exc.exceptions:
            return _fatal("bug", _describe(exc))
        return _group(exc, connection)
    reason = _describe(exc)
    # asyncio.CancelledError is a BaseException; matched by name so the core never imports
    # asyncio.
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit) or any(
        cls.__name__ == "CancelledError" for cls in type(exc).__mro__
    ):
        return _fatal("cancelled", reason)
    decision = _library(exc, reason, connection)
    if decision is not None:
        return decision
    if isinstance(exc, UpbitWsError):
        return _fatal("bug", reason)
    return _builtin(exc, reason)


#: Handshake statuses that retrying cannot change: the URL is wrong, not the server busy.
_LASTING_STATUSES: Final = frozenset({400, 404, 405, 410, 426})
#: ``getaddrinfo`` says the name does not exist (EAI_NONAME, and EAI_NODATA on glibc); a
#: temporary resolver failure (EAI_AGAIN) may pass and is not lasting.
_NO_SUCH_HOST: Final = frozenset({-2, -5, 8, 11001})
#: Upbit's domain: its hosts exist, so failing to resolve one is an outage, not a typo.
_UPBIT_DOMAIN: Final = "upbit.com"


def _is_upbit_host(url: str) -> bool:
    """Tell whether ``url`` names one of Upbit's hosts (which exist)."""
    host = urlsplit(url).hostname or ""
    return host == _UPBIT_DOMAIN or host.endswith("." + _UPBIT_DOMAIN)


def lasting_problem(exc: BaseException | None, *, url: str = "") -> str | None:
    """Return what is wrong, and how to fix it, when a connect failure cannot fix itself.

    Two failures qualify (docs/protocol.md section 1.1 gives the URLs Upbit serves): the
    server answers the WebSocket handshake with a status that says the URL is wrong (404 and
    the like; 401/403 are the key's, 429/418 the rate limiter's, 5xx the server's), and the
    host name does not exist. Everything else (refused, reset, timeouts, TLS) may pass and is
    retried as usual. Returns None for those and for None.

    A name of Upbit's own (``upbit.com`` and below it) exists: when it does not resolve, the
    machine has no network or no DNS, which passes. Offline, macOS and Windows answer that a
    name does not exist, so reading that as a wrong name would fail ``wait_ready()`` with
    "check the host name" on a laptop whose Wi-Fi is off.
    """
    if isinstance(exc, TransportError) and exc.status in _LASTING_STATUSES:
        return (
            f"the server answers HTTP {exc.status} to the WebSocket path {url or '(unknown)'}: "
            "base_url must be the REST base only, such as https://api.upbit.com "
            "(the library adds /websocket/v1 itself)"
        )
    cause = exc.__cause__ if isinstance(exc, TransportError) else exc
    if (
        isinstance(cause, OSError)
        and type(cause).__name__ == "gaierror"
        and cause.errno in _NO_SUCH_HOST
        and not _is_upbit_host(url)
    ):
        return (
            f"the host of {url or 'the URL'} does not resolve ({cause.strerror}): "
            "check the host name in base_url"
        )
    return None
