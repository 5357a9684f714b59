"""Connection configuration: the one table of defaults, and frozen, validated config objects.

Every timeout, keepalive, backoff and rate-limit default of the library is a named constant in
the table below, defined once; the config classes take their defaults from it. A config object
is frozen and checks itself when built: it collects *every* problem and raises one
:class:`~upbit_ws.ConfigError` listing them all. :meth:`ConnectionConfig.from_mapping` does the
same across every group at once (for the CLI, which is the only place that reads files or the
environment).

Defaults (section numbers refer to ``docs/protocol.md``)

============================  =========  ===================================================
name                          value      why
============================  =========  ===================================================
CONNECT_TIMEOUT               1 s        seed: 1 s normally
CONNECT_TIMEOUT_MAX           5 s        seed: 5 s at most on a bad network
CONNECT_TIMEOUT_GROWTH        x2         1 -> 2 -> 4 -> 5 s over consecutive connect timeouts
SEND_TIMEOUT                  1 s        seed: sending one message
SUBSCRIPTION_CHANGE_TIMEOUT   2 s        seed: a subscription change, send to first frame;
                                         also the wait for a LIST_SUBSCRIPTIONS answer
CLOSE_TIMEOUT                 1 s        graceful close handshake; abort after it
PING_INTERVAL                 15 s       Upbit drops idle sockets after ~60 s and a 20 s ping
                                         kept them alive (section 6); the seed asks <= 20 s
PING_INTERVAL_MAX             30 s       validation bound: half the observed 60 s idle kill
QUIET_PING_INTERVAL           0.5 s      ping interval of a connection that does not stream
                                         (private myOrder/myAsset, nothing subscribed): it
                                         has no silence to notice, so this ping alone finds a
                                         blackhole: at most 0.5 s + the suspicion deadline
                                         after it began (issue 9: act within about 1 s); a
                                         protocol ping is a control frame, not a request
                                         counted by the 5/s and 100/min limit (section 8.1)
PONG_TIMEOUT                  1.5 s      pongs come back in 160-360 ms on KR (section 6)
SILENCE_PROBE                 1 s        a stream that normally flows and is quiet this long
                                         gets a ping at once (busy KRW books tick ~100 ms);
                                         the ceiling of the adaptive threshold below
SILENCE_FLOOR                 0.25 s     the adaptive silence threshold never goes below
                                         this: a loop stall or a GC pause of a few hundred
                                         ms must not look like a dead stream every time
SILENCE_GAP_FACTOR            x4         the threshold is this multiple of the p99 gap
                                         between socket reads over the last
                                         SILENCE_WINDOW reads, clamped to [floor, probe]:
                                         a stream of 100 frames/s silent for 300 ms is
                                         already abnormal (issue 9)
SILENCE_WINDOW                64         reads whose gaps make that p99 (at least 16 are
                                         needed, else SILENCE_PROBE holds): about 0.6 s of
                                         a busy book, one outlier gap is ignored
SUSPICION_FLOOR               0.25 s     a ping unanswered this long (at least) puts the
                                         socket under suspicion and opens a hedge
SUSPICION_RTT_FACTOR          x2         the suspicion deadline is this multiple of the p99
                                         pong round trip over the last RTT_WINDOW pongs,
                                         clamped to [floor, PONG_TIMEOUT]: on KR (p99
                                         ~0.36 s, section 6) about 0.72 s, on a LAN the
                                         floor; a slow but healthy link raises it by itself,
                                         and a false alarm raises it (see HEDGE)
RTT_WINDOW                    16         pongs whose round trips make that p99; before the
                                         first pong the deadline is PONG_TIMEOUT (no hedge)
HEDGE                         on         a socket under suspicion gets a spare socket at
                                         once (same connect limiter, same merged request);
                                         the spare takes over when it proves itself (data,
                                         or a pong after its request on a quiet socket), the
                                         old one is dropped if it answers first. A false
                                         hedge costs one connect, nothing else, and sets
                                         the threshold or deadline it tripped to at least
                                         twice what was answered (up to the ceilings); what
                                         false alarms taught halves every 10 minutes
                                         without a new one. While a spare is on its way the
                                         old socket is declared dead only once the spare's
                                         connect timeout and a PONG_TIMEOUT have passed
                                         too (a reconnect would only start behind it)
STALE_AFTER                   10 s       a stream that normally flows, silent this long while
                                         pings are answered, is stale: the full request is
                                         re-sent (fresh snapshots answer it at once, section
                                         1.3); no data within SUBSCRIPTION_CHANGE_TIMEOUT
                                         after that: reconnect. Each answered resubscribe,
                                         or a replacing socket with data at once, doubles
                                         the bound (a quiet market, not a dead stream), up
                                         to 8x, halved back every 10 min without another
BACKOFF_FIRST_DELAY           0.1 s      first retry within ~100 ms
BACKOFF_FACTOR                x2         exponential growth of the retry envelope
BACKOFF_CAP                   20 s       never wait longer between ordinary retries
BACKOFF_JITTER                0.5        a delay is drawn from [envelope * 0.5, envelope]
BACKOFF_RESET_AFTER           10 s       a session open this long resets the backoff, as
                                         does any socket whose request was answered with
                                         data or a pong (issue #9: health, not time)
RATE_LIMITED_FLOOR            5 s        after HTTP 429 wait at least this (section 8.1)
BLOCKED_FLOOR                 30 s       after HTTP 418 without Retry-After; doubles on repeat
BLOCKED_CAP                   600 s      upper bound of that growing floor
AUTH_RETRY_DELAY              60 s       a refused key is retried this often even if no key
                                         check says it works again
NETWORK_PROBE                 1 s        while a retry waits longer than twice this after a
                                         connect that reached no server (refused,
                                         unreachable, DNS, timed out), a bare TCP connect
                                         to the host is tried this often; one that succeeds
                                         after one that failed ends the wait: data is back
                                         about a second after the network, not up to
                                         BACKOFF_CAP later (the seed's 5 s bar)
CONNECTS_PER_SECOND           5          Upbit: 5 connects/s per IP or account (section 8.1)
MESSAGES_PER_SECOND           5          Upbit: 5 messages/s per connection (section 8.1)
MESSAGES_PER_MINUTE           100        Upbit: 100 messages/min per connection (section 8.1)
CONNECT_BURST                 2          public and private may connect together at start
MESSAGE_BURST                 2          a subscription and a LIST_SUBSCRIPTIONS back to back
MINUTE_BURST                  10         quick changes allowed before the per-minute pace
RATE_LIMIT_MARGIN             0.05 s     added to each window to absorb network jitter
KEY_CHECK_INTERVAL            60 s       seed: API key health checked every minute
KEY_REFUSED_CHECK_INTERVAL    10 s       while the key is refused it is checked this often,
                                         so private is back within seconds of a fix (an
                                         allowed-IP list corrected, a refusal Upbit made
                                         in error) rather than up to a minute
KEY_EXPIRY_WARNING            7 days     warn this long before a key expires (keys last 1 y)
COALESCE_WINDOW               5 ms       changes made together leave as one request
CONFIRM_QUIET                 1 s        no error frame this long after a request that adds
                                         no new public stream confirms it (Upbit acks
                                         nothing; errors come 150-800 ms later, section 7.3)
MARKET_REFRESH_INTERVAL       300 s      market list re-read: new listings join ``KRW-*``
AUDIT_INTERVAL                10 s       private audit: REST re-read this often while orders
                                         are open or private frames came recently; finds
                                         events a blackhole no ping noticed hid (3-4 REST
                                         calls each, far under the 30/s exchange limit)
AUDIT_AFTER_TRAFFIC           60 s       audits go on this long after the last private frame
HOLD_TIMEOUT                  2 s        live private messages held for a pass are released
                                         if its REST read takes longer (REST refusing)
HOLD_LIMIT                    10,000     live private messages held at most; more release
                                         the held ones at once (never dropped)
FINISHED_RETENTION            600 s      a finished order is remembered for de-duplication
                                         at least this long, and until no REST read can
                                         reach back to it; then forgotten
RECEIVE_BUFFER                512 KiB    each socket's SO_RCVBUF: bounds one read to about
                                         1,000 ticker frames decoded before a consumer runs,
                                         and is the TCP window (2.5 MB/s or more at 200 ms
                                         round trip, several times every KRW ticker and book)
============================  =========  ===================================================

Blackhole arithmetic (issue 9: 99.9 % at one fault per 10 minutes, under 0.6 s lost per fault
on average; the seed's bar was 5 s). A connection whose subscriptions normally stream goes
silent at ``t0`` (the last frame). Its silence threshold is ``SILENCE_GAP_FACTOR`` times the
p99 gap between its last ``SILENCE_WINDOW`` reads, in ``[SILENCE_FLOOR, SILENCE_PROBE]``:
0.25 s for a busy book (reads every ~10-60 ms), 1 s (the ceiling) for a single code ticking
every ~100-300 ms. At ``t0 + threshold`` the session sends a ping, marks the connection
degraded and, with ``HEDGE`` on, opens a spare socket at once: it waits for the connect
limiter (5/s, section 8.1), connects (milliseconds on loopback, 50-300 ms on Upbit), is sent
the full merged request and takes over at its first data frame (the snapshots: at once from
the simulator, 150-650 ms on Upbit, section 1.3); the old socket is aborted. So data flows
again ``threshold`` + a few ms after ``t0`` on loopback (0.25-1.0 s), and ``threshold`` +
0.2-1.0 s against Upbit. Only if the spare fails (refused, error frame) does the old path
decide: no pong or frame by ``+ PONG_TIMEOUT`` (1.5 s) declares it dead, it is aborted without a
closing handshake (a graceful close on a blackholed socket hangs), and the first retry follows
within ``BACKOFF_FIRST_DELAY``: ``threshold`` + 1.6 s plus the connect, as before the hedge.

A connection that does not normally stream (private myOrder/myAsset: quiet for minutes) has no
silence to notice, so it pings every ``QUIET_PING_INTERVAL`` (0.5 s) instead of every
``PING_INTERVAL``. A blackhole starting just after an answered ping is noticed when the next
ping is unanswered past the suspicion deadline (``SUSPICION_RTT_FACTOR`` x the p99 round trip,
in ``[SUSPICION_FLOOR, PONG_TIMEOUT]``): on loopback at most 0.5 + 0.25 = 0.75 s after it began
(0.5 s on average), on KR (p99 ~0.36 s) at most 0.5 + 0.72 = 1.2 s. The spare opened then
takes over once it answers a ping sent after its request (one connect and one round trip).
Before the first pong of a socket the deadline is ``PONG_TIMEOUT`` (nothing measured yet): the
old path, at most 0.5 + 1.5 s plus the retry and the connect.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final

from upbit_ws.core.errors import ConfigError

__all__ = [
    "AUDIT_AFTER_TRAFFIC",
    "AUDIT_INTERVAL",
    "AUTH_RETRY_DELAY",
    "BACKOFF_CAP",
    "BACKOFF_FACTOR",
    "BACKOFF_FIRST_DELAY",
    "BACKOFF_JITTER",
    "BACKOFF_RESET_AFTER",
    "BLOCKED_CAP",
    "BLOCKED_FLOOR",
    "CLOSE_TIMEOUT",
    "COALESCE_WINDOW",
    "CONFIRM_QUIET",
    "CONNECTS_PER_SECOND",
    "CONNECT_BURST",
    "CONNECT_TIMEOUT",
    "CONNECT_TIMEOUT_GROWTH",
    "CONNECT_TIMEOUT_MAX",
    "HEDGE",
    "HOLD_LIMIT",
    "HOLD_TIMEOUT",
    "KEY_CHECK_INTERVAL",
    "KEY_EXPIRY_WARNING",
    "KEY_REFUSED_CHECK_INTERVAL",
    "MARKET_REFRESH_INTERVAL",
    "MESSAGES_PER_MINUTE",
    "MESSAGES_PER_SECOND",
    "MESSAGE_BURST",
    "MINUTE_BURST",
    "NETWORK_PROBE",
    "PING_INTERVAL",
    "PING_INTERVAL_MAX",
    "PONG_TIMEOUT",
    "QUIET_PING_INTERVAL",
    "RATE_LIMITED_FLOOR",
    "RATE_LIMIT_MARGIN",
    "RECEIVE_BUFFER",
    "RECEIVE_BUFFER_MAX",
    "RECEIVE_BUFFER_MIN",
    "RTT_WINDOW",
    "SEND_TIMEOUT",
    "SILENCE_FLOOR",
    "SILENCE_GAP_FACTOR",
    "SILENCE_PROBE",
    "SILENCE_WINDOW",
    "STALE_AFTER",
    "SUBSCRIPTION_CHANGE_TIMEOUT",
    "SUSPICION_FLOOR",
    "SUSPICION_RTT_FACTOR",
    "BackoffConfig",
    "ConnectionConfig",
    "KeepaliveConfig",
    "KeyHealthConfig",
    "RateLimits",
    "ReconcileConfig",
    "SubscriptionConfig",
    "Timeouts",
    "TransportConfig",
]

# --- the one table of defaults (see the module docstring for the reasons) ---------------------

CONNECT_TIMEOUT: Final = 1.0
CONNECT_TIMEOUT_MAX: Final = 5.0
CONNECT_TIMEOUT_GROWTH: Final = 2.0
SEND_TIMEOUT: Final = 1.0
SUBSCRIPTION_CHANGE_TIMEOUT: Final = 2.0
CLOSE_TIMEOUT: Final = 1.0

PING_INTERVAL: Final = 15.0
PING_INTERVAL_MAX: Final = 30.0
QUIET_PING_INTERVAL: Final = 0.5
PONG_TIMEOUT: Final = 1.5
SILENCE_PROBE: Final = 1.0
SILENCE_FLOOR: Final = 0.25
SILENCE_GAP_FACTOR: Final = 4.0
SILENCE_WINDOW: Final = 64
SUSPICION_FLOOR: Final = 0.25
SUSPICION_RTT_FACTOR: Final = 2.0
RTT_WINDOW: Final = 16
HEDGE: Final = True
STALE_AFTER: Final = 10.0

BACKOFF_FIRST_DELAY: Final = 0.1
BACKOFF_FACTOR: Final = 2.0
BACKOFF_CAP: Final = 20.0
BACKOFF_JITTER: Final = 0.5
BACKOFF_RESET_AFTER: Final = 10.0
RATE_LIMITED_FLOOR: Final = 5.0
BLOCKED_FLOOR: Final = 30.0
BLOCKED_CAP: Final = 600.0
AUTH_RETRY_DELAY: Final = 60.0
NETWORK_PROBE: Final = 1.0

CONNECTS_PER_SECOND: Final = 5
MESSAGES_PER_SECOND: Final = 5
MESSAGES_PER_MINUTE: Final = 100
CONNECT_BURST: Final = 2
MESSAGE_BURST: Final = 2
MINUTE_BURST: Final = 10
RATE_LIMIT_MARGIN: Final = 0.05

KEY_CHECK_INTERVAL: Final = 60.0
KEY_REFUSED_CHECK_INTERVAL: Final = 10.0
KEY_EXPIRY_WARNING: Final = 7 * 24 * 3600.0

COALESCE_WINDOW: Final = 0.005
CONFIRM_QUIET: Final = 1.0
MARKET_REFRESH_INTERVAL: Final = 300.0

AUDIT_INTERVAL: Final = 10.0
AUDIT_AFTER_TRAFFIC: Final = 60.0
HOLD_TIMEOUT: Final = 2.0
HOLD_LIMIT: Final = 10_000
FINISHED_RETENTION: Final = 600.0

#: picows decodes a whole read before any consumer runs and its read buffer grows to the largest
#: read, so when the reader falls behind (a flood), the kernel's autotuned buffer (up to 32 MB
#: on Linux) turned into reads of 25 MB: about 25,000 messages decoded and held at once
#: (benchmarks/README-performance.md: peak RSS twice the raw client's, and slower per message
#: as the messages went cold in cache). 512 KiB keeps a read to about 1 MB (a thousand ticker
#: frames). The TCP window that goes with it (about 0.5-0.75 MB on Linux) carries 2.5 MB/s or
#: more at 200 ms round trip, several times the rate of every KRW ticker and orderbook
#: together.
RECEIVE_BUFFER: Final = 512 * 1024
#: The smallest and largest ``TransportConfig.receive_buffer`` accepted (Linux's own limits
#: are wider; below 16 KiB a busy orderbook frame burst no longer fits one window).
RECEIVE_BUFFER_MIN: Final = 16 * 1024
RECEIVE_BUFFER_MAX: Final = 64 * 1024 * 1024


# --- validation helpers ------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Checker:
    """Collect problems of one config object instead of stopping at the first."""

    def __init__(self, group: str, obj: object) -> None:
        self.group = group
        self.obj = obj
        self.problems: list[str] = []
        self.bad: set[str] = set()

    def _value(self, name: str) -> Any:
        return getattr(self.obj, name)

    def number(self, name: str, *, positive: bool = True, unit: str = " s") -> bool:
        value = self._value(name)
        if not _is_number(value):
            self.fail(name, f"must be a finite number, got {value!r}")
            return False
        if positive and value <= 0:
            self.fail(name, f"must be > 0{unit}, got {value!r}")
            return False
        if not positive and value < 0:
            self.fail(name, f"must be >= 0{unit}, got {value!r}")
            return False
        return True

    def count(self, name: str) -> bool:
        value = self._value(name)
        if not _is_count(value) or value < 1:
            self.fail(name, f"must be a whole number >= 1, got {value!r}")
            return False
        return True

    def rule(self, names: tuple[str, ...], ok: Callable[[], bool], text: str) -> None:
        """Check a relation between fields, only when each of them is valid on its own."""
        if self.bad.isdisjoint(names) and not ok():
            self.fail(names[0], text)

    def fail(self, name: str, text: str) -> None:
        self.bad.add(name)
        self.problems.append(f"{self.group}.{name} {text}")

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


# --- the config groups -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Timeouts:
    """Timeouts in seconds for connecting, sending, changing subscriptions and closing.

    ``connect`` is the first connect timeout; after each connect that times out the next one
    gets ``connect * connect_growth`` up to ``connect_max``, and a successful connect resets it.
    """

    connect: float = CONNECT_TIMEOUT
    connect_max: float = CONNECT_TIMEOUT_MAX
    connect_growth: float = CONNECT_TIMEOUT_GROWTH
    send: float = SEND_TIMEOUT
    subscription_change: float = SUBSCRIPTION_CHANGE_TIMEOUT
    close: float = CLOSE_TIMEOUT

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("timeouts", self)
        for name in ("connect", "connect_max", "send", "subscription_change", "close"):
            check.number(name)
        if check.number("connect_growth", unit=""):
            check.rule(
                ("connect_growth",),
                lambda: self.connect_growth >= 1,
                f"must be >= 1 (a factor), got {self.connect_growth!r}",
            )
        check.rule(
            ("connect_max", "connect"),
            lambda: self.connect_max >= self.connect,
            f"must be >= connect ({self.connect!r} s), got {self.connect_max!r}",
        )
        check.raise_if_any()

    def next_connect_timeout(self, current: float) -> float:
        """Return the connect timeout to use after a connect that timed out with ``current``."""
        return min(self.connect_max, current * self.connect_growth)


@dataclass(frozen=True, kw_only=True, slots=True)
class KeepaliveConfig:
    """Keepalive policy: pings, pong deadlines, the data-silence probe and the hedge (section 6).

    A connection whose subscriptions normally stream gets a ping every ``ping_interval`` seconds
    whatever the traffic, and one at once when it has been silent past its silence threshold:
    ``silence_gap_factor`` times the p99 gap between its last ``silence_window`` socket reads,
    clamped to ``[silence_floor, silence_probe]`` (``silence_probe`` until enough reads were
    seen). A connection that does not stream (no silence to notice) gets a ping every
    ``quiet_ping_interval`` seconds instead (or every ``ping_interval`` if that is shorter).
    Any frame or pong within ``pong_timeout`` of a ping proves the connection alive; otherwise
    it is declared dead. A streaming connection with no data for ``stale_after`` seconds while
    pings are answered is stale (see :class:`~upbit_ws.core.session.Session`).

    With ``hedge`` on, a connection under suspicion (silent past its threshold, or a ping
    unanswered past the suspicion deadline: ``suspicion_rtt_factor`` times the p99 pong round
    trip of the last ``rtt_window`` pongs, clamped to ``[suspicion_floor, pong_timeout]``) gets
    a spare socket at once, which takes over when it proves itself.
    """

    ping_interval: float = PING_INTERVAL
    quiet_ping_interval: float = QUIET_PING_INTERVAL
    pong_timeout: float = PONG_TIMEOUT
    silence_probe: float = SILENCE_PROBE
    stale_after: float = STALE_AFTER
    silence_floor: float = SILENCE_FLOOR
    silence_gap_factor: float = SILENCE_GAP_FACTOR
    silence_window: int = SILENCE_WINDOW
    suspicion_floor: float = SUSPICION_FLOOR
    suspicion_rtt_factor: float = SUSPICION_RTT_FACTOR
    rtt_window: int = RTT_WINDOW
    hedge: bool = HEDGE

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("keepalive", self)
        for name in (
            "ping_interval",
            "quiet_ping_interval",
            "pong_timeout",
            "silence_probe",
            "stale_after",
            "silence_floor",
            "suspicion_floor",
        ):
            check.number(name)
        for name in ("silence_gap_factor", "suspicion_rtt_factor"):
            if check.number(name, unit=""):
                value: float = getattr(self, name)
                check.rule(
                    (name,),
                    functools.partial(operator.le, 1, value),
                    f"must be >= 1 (a factor), got {value!r}",
                )
        for name in ("silence_window", "rtt_window"):
            check.count(name)
        if not isinstance(self.hedge, bool):
            check.fail("hedge", f"must be True or False, got {self.hedge!r}")
        check.rule(
            ("ping_interval",),
            lambda: self.ping_interval <= PING_INTERVAL_MAX,
            f"must be <= {PING_INTERVAL_MAX:g} s (Upbit drops sockets idle for ~60 s), "
            f"got {self.ping_interval!r}",
        )
        check.rule(
            ("quiet_ping_interval",),
            lambda: self.quiet_ping_interval <= PING_INTERVAL_MAX,
            f"must be <= {PING_INTERVAL_MAX:g} s (Upbit drops sockets idle for ~60 s), "
            f"got {self.quiet_ping_interval!r}",
        )
        check.rule(
            ("pong_timeout", "ping_interval"),
            lambda: self.pong_timeout < self.ping_interval,
            f"must be < ping_interval ({self.ping_interval!r} s), got {self.pong_timeout!r}",
        )
        check.rule(
            ("silence_probe", "ping_interval"),
            lambda: self.silence_probe <= self.ping_interval,
            f"must be <= ping_interval ({self.ping_interval!r} s), got {self.silence_probe!r}",
        )
        check.raise_if_any()

    def interval(self, *, streaming: bool) -> float:
        """Return the ping interval of a connection that streams or, if not, is quiet."""
        if streaming:
            return self.ping_interval
        return min(self.ping_interval, self.quiet_ping_interval)

    def silence_threshold(self, p99_gap: float | None) -> float:
        """Return how long a streaming connection may be silent, given its p99 read gap.

        ``None`` (too few reads seen) gives ``silence_probe``, the ceiling.
        """
        if p99_gap is None:
            return self.silence_probe
        return min(self.silence_probe, max(self.silence_floor, self.silence_gap_factor * p99_gap))

    def suspicion(self, p99_rtt: float | None) -> float:
        """Return how long a ping may go unanswered before a hedge, given the p99 round trip.

        ``None`` (no pong measured yet) gives ``pong_timeout``: no hedge before the first pong.
        """
        if p99_rtt is None:
            return self.pong_timeout
        return min(
            self.pong_timeout, max(self.suspicion_floor, self.suspicion_rtt_factor * p99_rtt)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class BackoffConfig:
    """Reconnect backoff: jittered, capped exponential, never giving up.

    The ordinary delay envelope for retry ``n`` (0-based) is
    ``min(cap, first_delay * factor ** n)`` and a delay is drawn uniformly from
    ``[envelope * (1 - jitter), envelope]``. A socket that proved the path (its request answered
    with data or a pong) or stayed open ``reset_after`` seconds resets it. HTTP 429 waits at
    least ``rate_limited_floor``; HTTP 418 waits the server's Retry-After,
    or ``blocked_floor`` doubling on each repeat up to ``blocked_cap``; a refused API key is
    retried after ``auth_retry`` unless a key check says it works sooner.

    ``network_probe``: after a connect that reached no server (refused, unreachable, a name
    that does not resolve, timed out), a wait longer than twice this is watched by a bare TCP
    connect to the host every ``network_probe`` seconds (no TLS, no HTTP request; each takes
    a slot of the connect limiter). A probe that succeeds after one that failed ends the
    wait: the network is back, and so is the data, within about ``network_probe`` instead of
    up to ``cap`` later. A first probe that succeeds means the path works and the failure
    lies beyond it (a server that accepts and stalls): the wait then runs its course.
    ``None`` turns the probe off.
    """

    first_delay: float = BACKOFF_FIRST_DELAY
    factor: float = BACKOFF_FACTOR
    cap: float = BACKOFF_CAP
    jitter: float = BACKOFF_JITTER
    reset_after: float = BACKOFF_RESET_AFTER
    rate_limited_floor: float = RATE_LIMITED_FLOOR
    blocked_floor: float = BLOCKED_FLOOR
    blocked_cap: float = BLOCKED_CAP
    auth_retry: float = AUTH_RETRY_DELAY
    network_probe: float | None = NETWORK_PROBE

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("backoff", self)
        if self.network_probe is not None:
            check.number("network_probe")
        for name in (
            "first_delay",
            "cap",
            "reset_after",
            "rate_limited_floor",
            "blocked_floor",
            "blocked_cap",
            "auth_retry",
        ):
            check.number(name)
        if check.number("factor", unit=""):
            check.rule(
                ("factor",),
                lambda: self.factor >= 1,
                f"must be >= 1 (a factor), got {self.factor!r}",
            )
        if check.number("jitter", positive=False, unit=""):
            check.rule(
                ("jitter",),
                lambda: self.jitter < 1,
                f"must be in [0, 1) (a fraction of the delay), got {self.jitter!r}",
            )
        check.rule(
            ("first_delay", "cap"),
            lambda: self.first_delay <= self.cap,
            f"must be <= cap ({self.cap!r} s), got {self.first_delay!r}",
        )
        check.rule(
            ("rate_limited_floor", "cap"),
            lambda: self.rate_limited_floor <= self.cap,
            f"must be <= cap ({self.cap!r} s), got {self.rate_limited_floor!r}",
        )
        check.rule(
            ("blocked_floor", "blocked_cap"),
            lambda: self.blocked_floor <= self.blocked_cap,
            f"must be <= blocked_cap ({self.blocked_cap!r} s), got {self.blocked_floor!r}",
        )
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimits:
    """Client-side pacing under Upbit's WebSocket limits (section 8.1).

    Connects: at most ``connects_per_second`` in any window of one second, for every connection
    of the process together. Messages: at most ``messages_per_second`` per second and
    ``messages_per_minute`` per minute, per connection. The bursts say how many may go at once
    (the sustained pace is lowered so the window bound still holds, see
    :meth:`upbit_ws.core.ratelimit.Gcra.window`); ``margin`` seconds are added to every window
    so network jitter cannot push a burst over Upbit's count.
    """

    connects_per_second: int = CONNECTS_PER_SECOND
    messages_per_second: int = MESSAGES_PER_SECOND
    messages_per_minute: int = MESSAGES_PER_MINUTE
    connect_burst: int = CONNECT_BURST
    message_burst: int = MESSAGE_BURST
    minute_burst: int = MINUTE_BURST
    margin: float = RATE_LIMIT_MARGIN

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("rate_limits", self)
        for name in (
            "connects_per_second",
            "messages_per_second",
            "messages_per_minute",
            "connect_burst",
            "message_burst",
            "minute_burst",
        ):
            check.count(name)
        check.number("margin", positive=False)
        for burst, limit in (
            ("connect_burst", "connects_per_second"),
            ("message_burst", "messages_per_second"),
            ("minute_burst", "messages_per_minute"),
        ):
            burst_value: int = getattr(self, burst)
            limit_value: int = getattr(self, limit)
            check.rule(
                (burst, limit),
                functools.partial(operator.le, burst_value, limit_value),
                f"must be <= {limit} ({limit_value!r}), got {burst_value!r}",
            )
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyHealthConfig:
    """How often the API key is checked (``GET /v1/api_keys``) and how early expiry is flagged.

    ``check_interval`` while the key works; ``refused_check_interval`` while it is refused
    (whichever is shorter), so private comes back soon after the key works again.
    """

    check_interval: float = KEY_CHECK_INTERVAL
    refused_check_interval: float = KEY_REFUSED_CHECK_INTERVAL
    expiry_warning: float = KEY_EXPIRY_WARNING

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("key_health", self)
        check.number("check_interval")
        check.number("refused_check_interval")
        check.number("expiry_warning", positive=False)
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True, slots=True)
class SubscriptionConfig:
    """How subscription changes are coalesced and confirmed, and how often markets are re-read.

    A request that adds public streams is confirmed by their first frame, or after
    ``Timeouts.subscription_change`` without one (then counted as silent: Upbit ignores unknown
    codes and unsupported levels without an error, sections 2.3 and 2.4); any other request
    after ``confirm_quiet`` without an error frame.
    """

    coalesce: float = COALESCE_WINDOW
    confirm_quiet: float = CONFIRM_QUIET
    market_refresh: float = MARKET_REFRESH_INTERVAL

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("subscriptions", self)
        check.number("coalesce", positive=False)
        check.number("confirm_quiet")
        check.number("market_refresh")
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconcileConfig:
    """Private reconciliation (docs/rest.md, "Reconciliation"): the audit and the live hold.

    ``audit_interval``: while the reconciler knows unfinished orders, or a private frame came
    within ``audit_after_traffic`` seconds, REST is read again this often from the last
    verified time; an audit that finds nothing missing publishes nothing. ``None`` turns
    audits off. ``hold_timeout``: live myOrder/myAsset messages held from a gap until its
    pass has delivered what REST read are released if that takes longer (REST refusing);
    ``hold_limit`` messages held release them all at once too (nothing is dropped).
    ``finished_retention``: a finished order is remembered (to recognise its events when live
    and reconciled delivery overlap) at least this many seconds after its terminal event, and
    until the watermark less the skew margin has passed it; then it is forgotten, so the
    memory holds the last minutes' orders (at most 10,000 finished ones in any case).
    """

    audit_interval: float | None = AUDIT_INTERVAL
    audit_after_traffic: float = AUDIT_AFTER_TRAFFIC
    hold_timeout: float = HOLD_TIMEOUT
    hold_limit: int = HOLD_LIMIT
    finished_retention: float = FINISHED_RETENTION

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("reconcile", self)
        if self.audit_interval is not None:
            check.number("audit_interval")
        check.number("audit_after_traffic", positive=False)
        check.number("hold_timeout")
        check.count("hold_limit")
        check.number("finished_retention")
        check.raise_if_any()


@dataclass(frozen=True, kw_only=True, slots=True)
class TransportConfig:
    """Socket settings of each connection.

    ``receive_buffer`` is the socket's ``SO_RCVBUF`` in bytes (Linux reserves twice it), set
    before connecting. It bounds one socket read, so how many messages are decoded and alive
    before a consumer runs (fewer: warmer caches, less CPU per message under a flood,
    benchmarks/README-performance.md), and it is the TCP window, so it caps the rate a long
    link carries (about ``receive_buffer / round trip``). ``None`` leaves it to the kernel's
    autotuning (up to 32 MB on Linux: reads of 25 MB under a flood). Between 16 KiB and
    64 MiB.
    """

    receive_buffer: int | None = RECEIVE_BUFFER

    def __post_init__(self) -> None:
        """Validate every field and raise one ConfigError listing all problems."""
        check = _Checker("transport", self)
        value = self.receive_buffer
        if value is not None and (
            not _is_count(value) or not RECEIVE_BUFFER_MIN <= value <= RECEIVE_BUFFER_MAX
        ):
            check.fail(
                "receive_buffer",
                f"must be None or a whole number of bytes from {RECEIVE_BUFFER_MIN} to "
                f"{RECEIVE_BUFFER_MAX}, got {value!r}",
            )
        check.raise_if_any()


_GROUPS: Final[dict[str, type[Any]]] = {
    "timeouts": Timeouts,
    "keepalive": KeepaliveConfig,
    "backoff": BackoffConfig,
    "rate_limits": RateLimits,
    "key_health": KeyHealthConfig,
    "subscriptions": SubscriptionConfig,
    "reconcile": ReconcileConfig,
    "transport": TransportConfig,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionConfig:
    """Every connection policy setting, grouped by theme; the defaults are the table above."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig)
    backoff: BackoffConfig = field(default_factory=BackoffConfig)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    key_health: KeyHealthConfig = field(default_factory=KeyHealthConfig)
    subscriptions: SubscriptionConfig = field(default_factory=SubscriptionConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)

    def __post_init__(self) -> None:
        """Check each group has the right type and raise one ConfigError listing all problems."""
        problems = [
            f"{name} must be a {cls.__name__}, got {type(getattr(self, name)).__name__}"
            for name, cls in _GROUPS.items()
            if not isinstance(getattr(self, name), cls)
        ]
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, object]]) -> ConnectionConfig:
        """Build a config from ``{"group": {"field": value}}``, reporting every problem at once.

        Unknown groups and fields are problems too. Meant for the CLI, which reads files and
        the environment; the library itself takes config objects.
        """
        problems: list[str] = []
        groups: dict[str, Any] = {}
        for name in data:
            if name not in _GROUPS:
                problems.append(f"unknown group {name!r}; known: {', '.join(_GROUPS)}")
        for name, group_cls in _GROUPS.items():
            values = data.get(name, {})
            if not isinstance(values, Mapping):
                problems.append(f"{name} must be a mapping of fields, got {values!r}")
                continue
            known = {f.name for f in fields(group_cls)}
            unknown = [key for key in values if key not in known]
            problems.extend(
                f"{name}.{key} is not a setting; known: {', '.join(sorted(known))}"
                for key in unknown
            )
            try:
                groups[name] = group_cls(**{k: v for k, v in values.items() if k in known})
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return cls(**groups)
