"""API key health: check the key at start and every minute, suspend and resume private on it.

While the key is refused it is checked every ``KeyHealthConfig.refused_check_interval`` (10 s)
instead, so the private connection re-opens within seconds of the key working again.

``GET /v1/api_keys`` (``docs/protocol.md`` section 9.2; no permission needed) answers with the
account's keys and their expiry, or 401 with a reason when the key is refused (section 9.7).
:class:`KeyHealth` turns those answers into the private connection's key state:

====================================  ==============================================================
answer                                what happens
====================================  ==============================================================
200, key listed                       key works: if it was refused before, ``KeyRecovered`` and
                                      the private connection re-opens at once (``on_valid``)
200, expiry within 7 days             also ``KeyExpiringSoon``, at most once a day per key (keys
                                      last one year and cannot be extended, section 5)
401 ``expired_access_key``            ``KeyProblem(problem="expired")``, private suspended
401 ``out_of_scope``,                 ``KeyProblem(problem="permission")``, private suspended
``no_authorization_ip``
401/403 anything else                 ``KeyProblem(problem="invalid")``, private suspended
401 ``nonce_used``,                   *not* a key problem: Upbit refused that one token (a nonce
``invalid_query_payload``             seen before), not the key; logged and counted, nothing
                                      changes, so a healthy private socket stays up
429/418, 5xx, network failure,        *not* a key problem: logged and counted, nothing changes;
timeout, unreadable body              the next check tries again
====================================  ==============================================================

The private connection also reports refusals it sees itself (an HTTP 401 at the handshake, or
an ``INVALID_AUTH`` frame, section 5) through :meth:`KeyHealth.report_refused`; one
``KeyProblem`` is published per spell of trouble, however many sources confirm it. No event,
log line or exception here carries the key.

One ``INVALID_AUTH`` frame is not believed at once (issue #9: Upbit has sent one for a valid
key, and the fallback retry took a minute): while :meth:`KeyHealth.run` runs, the key is
checked again over REST at once. Answered valid, the private connection re-opens at once and
no ``KeyProblem`` goes out; refused, the refusal stands as above; unanswerable (network), the
frame is believed. A second ``INVALID_AUTH`` within ``_RECHECK_TRUST`` seconds of a valid
re-check is believed without asking again, so a key that Upbit really refuses on the socket
cannot loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from upbit_ws.aio.clock import Clock, LoopClock, WallClock, utc_now
from upbit_ws.aio.logcontext import CONNECTION
from upbit_ws.aio.rest import RestClient
from upbit_ws.core.auth import Credentials
from upbit_ws.core.classify import TRANSIENT_AUTH_NAMES
from upbit_ws.core.config import KeyHealthConfig
from upbit_ws.core.errors import AuthError, DecodeError, RateLimitedError, UpbitWsError
from upbit_ws.core.events import (
    Event,
    KeyExpiringSoon,
    KeyProblem,
    KeyRecovered,
)

__all__ = ["EXPIRY_WARNING_REPEAT", "KeyHealth", "KeyHealthStatistics", "KeyStatus", "Refusal"]

_log = logging.getLogger("upbit_ws.keys")

#: What the last check (or refusal) says about the key; ``unknown`` before the first answer.
KeyStatus = Literal["unknown", "valid", "invalid", "expired", "permission"]

#: How a key was refused; every one of them suspends the private connection.
Refusal = Literal["invalid", "expired", "permission"]

#: A key expiring soon is reported again after this many seconds (once a day).
EXPIRY_WARNING_REPEAT: Final = 24 * 3600.0

# 401 names (section 9.7) that say more than "invalid".
_PROBLEM_BY_NAME: Final[dict[str, Refusal]] = {
    "expired_access_key": "expired",
    "out_of_scope": "permission",
    "no_authorization_ip": "permission",
}
_PROBLEMS: Final[frozenset[KeyStatus]] = frozenset({"invalid", "expired", "permission"})
#: After a re-check found the key valid, an ``INVALID_AUTH`` frame within this many seconds is
#: believed without another re-check (no loop against a key the socket keeps refusing).
_RECHECK_TRUST: Final = 60.0
#: The error frame name a re-check is made for (docs/protocol.md section 5).
_RECHECKED_NAME: Final = "INVALID_AUTH"


@dataclass(frozen=True, slots=True)
class KeyHealthStatistics:
    """A snapshot of the key checks: the key status, counters and the last outcome.

    ``expires_at`` is the expiry Upbit reported last; ``last_check_error`` the reason the last
    check could not tell (network, rate limit), or None. ``last_check_at_wall`` is when the
    last check ran in epoch seconds (UTC wall clock); ``last_check_at`` the same on the
    shell's monotonic clock.
    """

    status: KeyStatus
    checks: int
    check_failures: int
    problems: int
    recoveries: int
    expiry_warnings: int
    last_check_at: float | None
    expires_at: datetime | None
    last_check_error: str | None
    last_check_at_wall: float | None = None
    #: ``INVALID_AUTH`` frames re-checked over REST, and how many of those found the key valid.
    rechecks: int = 0
    rechecks_valid: int = 0


class KeyHealth:
    """Watch one API key and steer the private connection by it; see the module docs.

    ``on_invalid(reason)`` is called when the key is refused (suspend private),
    ``on_valid()`` when it works again after a refusal (re-open private). ``publish`` gets the
    key events. ``clock`` stamps events; ``wall_clock`` reads calendar time for expiry.
    """

    def __init__(
        self,
        rest: RestClient,
        *,
        credentials: Credentials,
        config: KeyHealthConfig | None = None,
        publish: Callable[[Event], None],
        on_invalid: Callable[[str], None],
        on_valid: Callable[[], None],
        clock: Clock | None = None,
        wall_clock: WallClock = utc_now,
    ) -> None:
        self._rest = rest
        self._access_key = credentials.access_key
        self.config = config or KeyHealthConfig()
        self._publish = publish
        self._on_invalid = on_invalid
        self._on_valid = on_valid
        self._clock: Clock = clock or LoopClock()
        self._wall_clock = wall_clock
        self._lock = asyncio.Lock()
        self._status: KeyStatus = "unknown"
        self._warned_at: float | None = None
        self._checks = 0
        self._failures = 0
        self._problems = 0
        self._recoveries = 0
        self._warnings = 0
        self._last_check_at: float | None = None
        self._expires_at: datetime | None = None
        self._last_error: str | None = None
        self._running = False
        # An INVALID_AUTH frame waiting for its re-check: (name, message).
        self._recheck: tuple[str | None, str] | None = None
        self._recheck_wanted = asyncio.Event()
        self._recheck_valid_at: float | None = None
        self._rechecks = 0
        self._rechecks_valid = 0

    def __repr__(self) -> str:
        return f"<KeyHealth status={self._status} checks={self._checks}>"

    @property
    def status(self) -> KeyStatus:
        """Return what is known about the key."""
        return self._status

    @property
    def usable(self) -> bool:
        """Tell whether the private connection may run: the key is not known to be refused."""
        return self._status not in _PROBLEMS

    def statistics(self) -> KeyHealthStatistics:
        """Return a snapshot of the checks."""
        return KeyHealthStatistics(
            status=self._status,
            checks=self._checks,
            check_failures=self._failures,
            problems=self._problems,
            recoveries=self._recoveries,
            expiry_warnings=self._warnings,
            last_check_at=self._last_check_at,
            last_check_at_wall=(
                self._last_check_at + self._clock.wall() - self._clock.now()
                if self._last_check_at is not None
                else None
            ),
            expires_at=self._expires_at,
            last_check_error=self._last_error,
            rechecks=self._rechecks,
            rechecks_valid=self._rechecks_valid,
        )

    async def run(self) -> None:
        """Check the key every ``check_interval`` seconds, forever (cancel to stop).

        While the key is refused, every ``refused_check_interval`` seconds instead (when that
        is shorter): the private connection waits on this check to re-open. Also re-checks at
        once after an ``INVALID_AUTH`` frame (see the module docs).
        """
        CONNECTION.set("private")  # the key is the private connection's: its records say so
        self._running = True
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval()):
                        await self._recheck_wanted.wait()
                if self._recheck_wanted.is_set():
                    self._recheck_wanted.clear()
                    await self._recheck_frame()
                else:
                    await self.check()
        finally:
            self._running = False
            refusal, self._recheck = self._recheck, None
            if refusal is not None:
                self._believe(*refusal)

    def _interval(self) -> float:
        """Return the wait before the next scheduled check (shorter while refused)."""
        config = self.config
        if self._status in _PROBLEMS:
            return min(config.check_interval, config.refused_check_interval)
        return config.check_interval

    async def _recheck_frame(self) -> None:
        """Re-check the key after an INVALID_AUTH frame; re-open private if it is valid."""
        refusal, self._recheck = self._recheck, None
        if refusal is None:
            return
        self._rechecks += 1
        status = await self.check()
        if status == "valid" and self._last_error is None:
            # Upbit says the key works: the frame was spurious. Re-open private at once.
            self._rechecks_valid += 1
            self._recheck_valid_at = self._clock.now()
            _log.warning(
                "INVALID_AUTH on the private socket, but the key checks valid over REST; "
                "reconnecting at once",
                extra={"error_name": refusal[0]},
            )
            self._on_valid()
        elif status not in _PROBLEMS:
            self._believe(*refusal)  # Upbit could not be asked: the frame stands
        # A refusal over REST already published the KeyProblem and suspended private.

    async def check(self) -> KeyStatus:
        """Ask Upbit about the key once now, act on the answer, and return the key status."""
        async with self._lock:
            self._checks += 1
            self._last_check_at = self._clock.now()
            try:
                keys = await self._rest.api_keys()
            except AuthError as exc:
                if exc.name in TRANSIENT_AUTH_NAMES:
                    # The token was refused, not the key (section 9.7): the next check signs a
                    # new one. Suspending private here would stop a working key.
                    self._could_not_tell(exc)
                    return self._status
                self._last_error = None
                name = exc.name
                problem: Refusal = _PROBLEM_BY_NAME.get(name or "", "invalid")
                self._refused(problem, name, _safe_message(exc, name))
                return self._status
            except (RateLimitedError, DecodeError) as exc:
                self._could_not_tell(exc)
                return self._status
            except UpbitWsError as exc:
                # TransportError and 5xx answers: Upbit could not be asked, the key is not at
                # fault (issue #4: REST transport errors are not key problems).
                self._could_not_tell(exc)
                return self._status
            self._last_error = None
            expiry = next((k.expire_at for k in keys if k.access_key == self._access_key), None)
            self._accepted(expiry)
            return self._status

    def report_refused(self, name: str | None, message: str) -> None:
        """Take a refusal seen by the private connection itself (handshake 401, INVALID_AUTH)."""
        if name in TRANSIENT_AUTH_NAMES:
            return  # one token refused, not the key (section 9.7)
        if name == _RECHECKED_NAME and self._running and not self._recently_rechecked():
            self._recheck = (name, message)
            self._recheck_wanted.set()
            return
        self._believe(name, message)

    def _recently_rechecked(self) -> bool:
        valid_at = self._recheck_valid_at
        return valid_at is not None and self._clock.now() - valid_at < _RECHECK_TRUST

    def _believe(self, name: str | None, message: str) -> None:
        """Take a refusal the private connection saw as the key's (KeyProblem, suspended)."""
        problem: Refusal = _PROBLEM_BY_NAME.get(name or "", "invalid")
        self._refused(problem, name, message, from_connection=True)

    # --- internals -----------------------------------------------------------------------

    def _refused(
        self,
        problem: Refusal,
        name: str | None,
        message: str,
        *,
        from_connection: bool = False,
    ) -> None:
        changed = self._status != problem
        self._status = problem
        if changed:
            self._problems += 1
            _log.warning(
                "API key refused (%s): %s",
                name or problem,
                message,
                extra={"key_problem": problem, "error_name": name},
            )
            self._publish(
                KeyProblem(at=self._clock.now(), problem=problem, message=message, name=name)
            )
        if not from_connection:
            # The connection suspends itself when it sees the refusal; a REST answer must tell it.
            self._on_invalid(f"API key refused: {name or problem}")

    def _accepted(self, expire_at: str | None) -> None:
        was = self._status
        self._status = "valid"
        if was in _PROBLEMS:
            self._recoveries += 1
            _log.info("API key works again", extra={"key_problem": None})
            self._publish(KeyRecovered(at=self._clock.now()))
            self._on_valid()
        if expire_at is not None:
            self._check_expiry(expire_at)

    def _check_expiry(self, expire_at: str) -> None:
        try:
            expires = datetime.fromisoformat(expire_at)
        except ValueError:
            _log.warning("cannot read the key expiry %r", expire_at)
            return
        if expires.tzinfo is None:
            return
        self._expires_at = expires
        left = (expires - self._wall_clock()).total_seconds()
        if left > self.config.expiry_warning:
            return
        now = self._clock.now()
        if self._warned_at is not None and now - self._warned_at < EXPIRY_WARNING_REPEAT:
            return
        self._warned_at = now
        self._warnings += 1
        _log.warning(
            "API key expires in %.1f days (at %s); issue a new one",
            left / 86400,
            expires.isoformat(),
            extra={"seconds_left": left},
        )
        self._publish(KeyExpiringSoon(at=now, expires_at=expires, seconds_left=left))

    def _could_not_tell(self, exc: UpbitWsError) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        _log.info(
            "API key check could not reach Upbit: %s",
            self._last_error,
            extra={"error": type(exc).__name__},
        )


def _safe_message(exc: AuthError, name: str | None) -> str:
    """Return a short text for the event (the REST error text never holds the key)."""
    return str(exc) if str(exc) else (name or "API key refused")
