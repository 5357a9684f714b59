"""The pure session state machine of one managed connection: lifecycle, keepalive, reconnect.

A :class:`Session` never touches a socket or a clock. The asyncio shell feeds it what
happened (``connected``, ``frame_received``, ``closed``...) with the time ``now`` from its one
monotonic clock, calls :meth:`Session.poll` to learn what to do (open a socket, send a ping,
abort a dead socket, wait), and sleeps until :meth:`Session.next_deadline` or the next input,
whichever comes first. Actions returned by ``poll`` are commitments: when ``poll`` returns
:class:`SendPing` the session counts the ping as sent at ``now`` (so a ping stuck behind a full
send buffer still times out), and when it returns :class:`Connect` the session is
``connecting`` and its connect deadline runs.

States::

    idle --start--> connecting --connected--> open <--frame/pong-- degraded
                        |  ^                   |  --silence probe-->   |
     connect failed or  |  | backoff elapsed   | closed, or no pong    |
     timed out          v  |                   v  by the deadline      |
                     reconnecting <------------+-----------------------+
                        ^ auth: suspended (key refused) --key_valid or auth_retry--> connecting
    any state --close()--> closed (terminal; also after a fatal error)

Keepalive (``docs/protocol.md`` section 6: Upbit drops sockets idle for ~60 s with 1006 and
never pings by itself; quiet markets send nothing, so a dead stream looks like a quiet one):

* a WebSocket ping goes out every ``ping_interval`` whatever the traffic when the subscription
  normally streams (the shell says so with :meth:`Session.set_streaming`; public market data
  yes, private myOrder/myAsset no), and every ``quiet_ping_interval`` (0.5 s) when it does not:
  a quiet connection has no silence to notice, so only this ping finds its blackhole;
* when the subscription normally streams and nothing arrived for ``silence_probe`` seconds, a
  ping goes out at once and the state is ``degraded``; a probe answered by a pong with no data
  in between means the stream is quiet, not dead, so the next probe waits twice as long (up to
  ``ping_interval``) until data flows again;
* any frame or pong proves the connection alive; no frame or pong within ``pong_timeout`` of a
  ping declares it dead: the shell aborts the socket without a closing handshake (a graceful
  close on a blackholed socket hangs) and the session plans the reconnect.

Adaptive suspicion and the hedge (issue #9: a blackhole must cost under a second):

* the silence threshold of a streaming connection follows its traffic: ``silence_gap_factor``
  times the p99 gap between its last ``silence_window`` socket reads, clamped to
  ``[silence_floor, silence_probe]`` (a book ticking every 10 ms that is silent for 300 ms is
  already abnormal); the read gaps are kept across sockets (the subscription's rate, not the
  socket's); after a request that leaves at most half the streams, silences are probed
  quietly until the narrower stream's own reads judge it (:meth:`Session.stream_narrowed`);
* a ping unanswered past the *suspicion deadline* (``suspicion_rtt_factor`` times the p99
  pong round trip of the last ``rtt_window`` pongs, clamped to ``[suspicion_floor,
  pong_timeout]``) puts the socket under suspicion; so does silence past the threshold on a
  busy stream that was flowing on this socket: one whose p99 read gap is under a third of
  the ceiling. A socket with no frame yet since its request (or a busy stream whose last
  probe was answered without data) is suspected without a spare: its probe decides. A
  silence of a sparse stream, whose ordinary gaps reach the ceiling, or of one whose rate is
  not known yet, is probed quietly (the socket stays ``open``): a stream of a few trades a
  second has a 1 s silence every ~10 s in normal traffic, and each was a spare connect and a
  ``degraded`` spell; only its ping unanswered past the suspicion deadline makes it
  suspected;
* a socket under suspicion is ``degraded`` and, with ``KeepaliveConfig.hedge`` on, ``poll``
  returns :class:`Hedge`: the shell opens a spare socket at once (through the connect
  limiter), sends it the full merged request, and reports :meth:`Session.hedge_switched` as
  soon as it proves itself (data; on a quiet socket a pong after its request). That is a
  reconnect that overlapped: a failure of the old socket (declared dead), an open of the
  spare, one state change ``degraded -> open`` whose reason says so. If the old socket
  answers first (a frame or a pong), ``poll`` returns :class:`CancelHedge` and the spare is
  closed; if the spare fails (:meth:`Session.hedge_failed`), the old socket stays under the
  ordinary pong deadline, as without a hedge. If the old socket ends first while the spare
  is open and requested, the shell reports :meth:`Session.hedge_adopted`: the spare takes
  over unproved, where a reconnect would be after its request. Only the current socket
  delivers, always.
* the silence threshold applies from a stream's first frame on a socket: until then (a
  connect, a takeover, a first subscription) the ceiling ``silence_probe`` does, since Upbit
  starts a subscription 150-650 ms after its request, and that wait is not counted as a gap;
* a hedge the old socket answered first was a false alarm (one connect): from then on the
  silence threshold is at least twice the silence it answered and the suspicion deadline at
  least twice the round trip of its ping (up to the ceilings), so a slow but healthy link
  stops paying connects after one or two. What false alarms taught halves every
  ``FALSE_ALARM_MEMORY`` seconds (10 minutes) without a new one, so one hiccup (a pause of
  the app, a slow minute of the network) does not slow the detection of real stalls for the
  rest of the process's life.

Private stalls (issue #9): a blackhole drops the frames *and* the pong of a ping sent into it,
so on the private connection (order events, where a lost frame is a lost fill) only the pong
answers a ping. Frames that arrive while it is outstanding prove the socket alive but keep the
pong deadline; when the deadline passes after such frames, or the pong itself comes after its
deadline, or data resumes after the deadline, the socket lived through a stall: ``poll``
returns :class:`Stalled` (``since``: the last frame or pong received before that ping) and the
shell has the missed events read back from REST, keeping the socket. A deadline passed with
nothing received since the ping still declares the socket dead, as on public.

Stale streams (issue #9): a connection whose subscriptions normally stream, with no data frame
for ``stale_after`` seconds (10 s) while its pings are answered, is *stale* (a server that
accepts, answers pings and sends nothing). ``poll`` returns :class:`Resubscribe` once: the
shell re-sends the full request with fresh snapshots, which a live stream answers at once
(``protocol.md`` section 1.3). No data within ``Timeouts.subscription_change`` after that:
the socket is declared dead and replaced. A resubscribe answered with data means a quiet
market, so the bound doubles (up to 8x); so does a replacing socket whose snapshots came at
once (Upbit may not send the snapshots of codes already subscribed again, section 3.2: the
resubscribe of a quiet market then goes unanswered). The bound is the market's: it holds
across sockets and halves back for each ten minutes (``FALSE_ALARM_MEMORY``) without a quiet
episode. ``statistics().stale`` says whether the connection is stale now.

A failure of the shell itself (a bug, not the network) is reported with
:meth:`Session.internal_error` and handled like a lost socket, so the connection comes back.

Reconnects follow :class:`~upbit_ws.core.backoff.Backoff` as chosen by
:func:`~upbit_ws.core.classify.classify`. The backoff reflects health, not time (issue #9): a
socket that *proved the path* starts the next recovery from the first step. It proves it when,
after the shell reported its subscription request sent (:meth:`Session.request_sent`), a data
frame arrives (:meth:`Session.data_received`, reported once per socket; an error frame is not
data) or a ping is answered (a quiet private socket); a socket open ``reset_after`` seconds
proves it too (one with nothing to subscribe). Escalation is for attempts that fail: refused or
timed-out connects, sockets closed before any data, error-then-close loops, and 429/418, which
keep their floors. However often the network flaps, connects stay under Upbit's 5/s: the shell
waits for the process-wide connect limiter before every connect (``core/ratelimit.py``). The
connect timeout grows after connect timeouts and resets on success.

The network's return (the seed's 5 s recovery): an outage of the network or the host walks
the backoff up to its cap, so without help the data could come back up to a cap (20 s) after
the network. A wait longer than twice ``BackoffConfig.network_probe`` after a connect that may
have reached no server (cause ``transport``, ``dns`` or ``timeout``; never after 429/418 or an
answer from a server) is watched: ``poll`` returns :class:`ProbeNetwork` at once and then every
``network_probe`` seconds while the probes fail, and the shell reports each outcome with
:meth:`Session.network_probed`. A probe that succeeds after a failed one ends the wait: the
connect starts at once, on the same backoff sequence. A first probe that succeeds ends the
watch instead (the path works; the failure lies beyond it, such as a server that accepts and
stalls), so a failing server never gets more than the backoff's connects.
Inputs that do not apply to the current state (a late ``closed`` after the session already
declared the socket dead, say, or a ``connected`` before :meth:`Session.poll` handed out the
:class:`Connect`) are ignored, so the shell may report freely. The shell calls ``poll`` after
every input.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from upbit_ws.core.backoff import Backoff, BackoffClass
from upbit_ws.core.classify import UNREACHED_CAUSES, Decision, classify
from upbit_ws.core.config import ConnectionConfig
from upbit_ws.core.constants import ABNORMAL_CLOSURE, check_connection
from upbit_ws.core.errors import ConnectionClosedError
from upbit_ws.core.events import ConnectionKind, ConnectionState, ConnectionStateChanged

__all__ = [
    "EVENT_BACKLOG",
    "LIVE_STATES",
    "Action",
    "CancelHedge",
    "CloseSocket",
    "Connect",
    "DeclareDead",
    "Hedge",
    "ProbeNetwork",
    "Resubscribe",
    "SendPing",
    "Session",
    "SessionStatistics",
    "Stalled",
    "WaitBackoff",
]

#: Close code used when the shell reports a close without one: no close frame came (RFC 6455).
#: The states in which a socket is open and usable (``degraded``: open, being probed).
LIVE_STATES: Final[frozenset[ConnectionState]] = frozenset({"open", "degraded"})
_WAITING: Final[frozenset[ConnectionState]] = frozenset({"reconnecting", "suspended"})
#: State changes kept for :meth:`Session.take_events`; older ones are dropped (and counted) if
#: the shell stops draining them, so memory stays bounded.
EVENT_BACKLOG: Final = 256
#: How far the stale bound grows while stale episodes turn out quiet markets.
_STALE_GROWTH_LIMIT: Final = 8.0
#: Read gaps needed before the silence threshold adapts (``SILENCE_WINDOW`` in core/config.py).
_MIN_GAPS: Final = 16
#: A silence at the ceiling is news (a spare at once) for a stream whose p99 read gap is under
#: the ceiling divided by this. Read gaps have about an exponential tail, P(gap > x) = 0.01 **
#: (x / p99), and the p99 of a 64-read window (its second largest gap) reads about a quarter
#: low: at the boundary the true p99 is ~0.44 of the ceiling, and a gap past the ceiling one
#: in ~35,000 (a spurious spare about hourly at 10 frames/s). Measured on the simulator with
#: 2 instead, ~8 trades/s opened one in 40 s; a p99 of 1.15 s (~4 trades/s) has a gap past
#: 1 s in one of ~55, which was a spare every ~10 s while every silence at the ceiling opened one.
_NEWS_GAP_FACTOR: Final = 3.0
#: Seconds without a false alarm after which what false alarms taught is halved (see the
#: module docs): a bound learned from one hiccup is back near the adaptive one within an hour.
FALSE_ALARM_MEMORY: Final = 600.0


def _halvings(since: float | None, now: float) -> int:
    """Return how many ``FALSE_ALARM_MEMORY`` periods passed since ``since`` (0 if None)."""
    return 0 if since is None else int((now - since) // FALSE_ALARM_MEMORY)


def _p99(samples: list[float]) -> float:
    """Return the 99th percentile of ``samples`` (not empty): below 100, the second largest.

    Robust on purpose: one outlier (a GC pause, a loop stall) does not move the threshold.
    """
    ordered = sorted(samples)
    return ordered[int(0.99 * (len(ordered) - 1))]


@dataclass(frozen=True, slots=True)
class Connect:
    """Open a new socket (with a fresh JWT on private) within ``timeout`` seconds.

    ``attempt`` counts from 1 since the connection was last open. The session enforces the
    timeout itself (it returns :class:`DeclareDead` when it passes), so the shell may use it
    too or not.
    """

    timeout: float
    attempt: int


@dataclass(frozen=True, slots=True)
class SendPing:
    """Send a WebSocket ping now; ``reason`` is ``interval``, ``silence`` (the data probe) or
    ``proof`` (right after a request on a socket that does not stream)."""

    reason: Literal["interval", "silence", "proof"]


@dataclass(frozen=True, slots=True)
class DeclareDead:
    """Abort the socket or the connect in progress at once, without a closing handshake.

    A no-op for the shell when nothing is open.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Close the socket gracefully (close frame), aborting it after ``timeout`` seconds.

    A no-op for the shell when nothing is open.
    """

    reason: str
    timeout: float


@dataclass(frozen=True, slots=True)
class WaitBackoff:
    """For information: the session waits ``delay`` seconds (until ``until``) before a retry.

    The shell needs no extra timer: :meth:`Session.next_deadline` already says ``until``.
    """

    delay: float
    until: float
    backoff: BackoffClass
    reason: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Re-send the full subscription request on the open socket: the stream went stale.

    Sent without ``is_only_realtime``, so a live stream answers with its snapshots at once.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Stalled:
    """The private socket lived through a stall: events sent since ``since`` may be lost.

    ``since`` is the last frame or pong received before the ping that was answered late or
    never (the shell's monotonic seconds). The socket stays; the shell reconciles over REST.
    """

    since: float
    reason: str


@dataclass(frozen=True, slots=True)
class Hedge:
    """Open a spare socket beside the one under suspicion, within ``timeout`` seconds.

    The shell waits for the connect limiter, opens it, sends it the full merged request and
    reports :meth:`Session.hedge_switched` once it proved itself (data; a pong after its
    request on a quiet socket), or :meth:`Session.hedge_failed`. Until then the old socket
    stays the one that delivers.
    """

    timeout: float
    reason: str


@dataclass(frozen=True, slots=True)
class CancelHedge:
    """Drop the spare socket (closed gracefully if open): the old one answered, or is gone."""

    reason: str


@dataclass(frozen=True, slots=True)
class ProbeNetwork:
    """Try a bare TCP connect to the host (no TLS, no request) within ``timeout`` seconds.

    Handed out while a long reconnect wait follows a connect that reached no server (see
    ``BackoffConfig.network_probe``). The shell takes a slot of the connect limiter, tries,
    and reports :meth:`Session.network_probed` with whether the host accepted.
    """

    timeout: float


#: Everything :meth:`Session.poll` can ask of the shell.
Action = (
    Connect
    | SendPing
    | DeclareDead
    | CloseSocket
    | WaitBackoff
    | Resubscribe
    | Stalled
    | Hedge
    | CancelHedge
    | ProbeNetwork
)


#: Actions still owed to the shell when the session closes: let go of every socket.
_KEPT_ON_CLOSE: Final = (DeclareDead, CloseSocket, CancelHedge)


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """A snapshot of one session: its state, counters and current timeouts.

    ``uptime`` is how long the current socket has been open (0 when none is). ``state_age`` is
    how long the session has been in ``state``; ``last_frame_age`` how long ago the last frame
    or pong arrived on the current socket (``None`` without an open socket).
    ``failures_by_cause`` counts failures (each followed by a reconnect unless fatal) by the
    :data:`~upbit_ws.core.classify.Cause` they were classified as.
    """

    connection: ConnectionKind
    state: ConnectionState
    state_since: float
    attempt: int
    connects: int
    opens: int
    failures: int
    declared_dead: int
    pings_sent: int
    pongs_received: int
    connect_timeout: float
    uptime: float
    events_dropped: int
    state_age: float = 0.0
    last_frame_age: float | None = None
    failures_by_cause: Mapping[str, int] = field(default_factory=dict)
    #: The reconnect backoff's step (0: the next ordinary delay is drawn from the first range)
    #: and the last delay it handed out (None before the first failure).
    backoff_step: int = 0
    last_retry_delay: float | None = None
    #: How long the connection has not been usable (no open socket; ``state_age`` restarts at
    #: every attempt of an outage, this does not), None while it is; the seconds until the
    #: next connect while a retry waits, else None; and whether that wait is watched for the
    #: network's return (``BackoffConfig.network_probe``).
    down_age: float | None = None
    retry_in: float | None = None
    network_watch: bool = False
    #: Whether the current socket proved the path (see the module docs); False without one.
    proved: bool = False
    #: Whether the stream is stale now (no data past the bound while pings are answered),
    #: with why; and how many resubscribes staleness caused so far.
    stale: bool = False
    stale_reason: str | None = None
    stale_resubscribes: int = 0
    #: Private stalls lived through by an open socket (see the module docs).
    stalls: int = 0
    #: Hedges (see the module docs): spares opened, spares that took over (proved, or open
    #: and requested when the old socket ended), spares dropped because the old socket
    #: answered first (or ended before the spare had its request), spares that failed to
    #: connect or prove themselves; and whether one is under way now.
    hedges: int = 0
    hedges_won: int = 0
    hedges_cancelled: int = 0
    hedges_failed: int = 0
    hedging: bool = False
    #: The network watch of long reconnect waits (``BackoffConfig.network_probe``): TCP
    #: probes answered (:meth:`Session.network_probed`), and waits they ended because the
    #: host answered again.
    network_probes: int = 0
    network_returns: int = 0
    #: The adaptive thresholds now: the silence threshold of a streaming connection and the
    #: suspicion deadline of a ping (seconds; see ``KeepaliveConfig``).
    silence_threshold: float = 0.0
    suspicion: float = 0.0


class Session:
    """The state machine of one managed connection (public or private); see the module docs.

    ``streaming`` says whether the subscriptions normally stream, which turns the data-silence
    probe on; it defaults to true for public and false for private and can change at any time
    with :meth:`set_streaming`. ``rng`` is the one seam for backoff jitter.
    """

    def __init__(
        self,
        connection: ConnectionKind,
        *,
        config: ConnectionConfig | None = None,
        streaming: bool | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.connection: ConnectionKind = check_connection(connection)
        self.config = config or ConnectionConfig()
        self.backoff = Backoff(self.config.backoff, rng=rng)
        self._streaming = connection == "public" if streaming is None else streaming
        self._state: ConnectionState = "idle"
        self._latest = float("-inf")
        self._state_since = 0.0
        self._down_since: float | None = None  # since when no socket was usable (see _set_state)
        self._attempt = 0
        self._was_open = False
        self._connect_timeout = self.config.timeouts.connect
        self._connect_deadline = 0.0
        self._connect_handed_out = False
        self._retry_at = 0.0
        self._opened_at: float | None = None
        self._requested = False
        self._proved = False
        self._last_delay: float | None = None
        self._last_rx = 0.0
        self._last_data = 0.0
        self._resubscribed_at: float | None = None
        self._stale_bound = self.config.keepalive.stale_after
        self._stale_learned_at: float | None = None  # the last quiet-market episode
        self._stale_replaced = False  # a stale socket was replaced: has the new one data?
        self._stale_reason: str | None = None
        self._resubscribes = 0
        self._stream_since = 0.0
        self._last_ping = 0.0
        self._pong_deadline: float | None = None
        # The last ping's pong is still owed on this socket: its round trip is measured when it
        # comes, even if data came first and ended the ping's deadline (a busy stream's pings
        # would otherwise never measure one, and its suspicion deadline stays at pong_timeout).
        self._pong_owed = False
        # Private only (see the module docs): a stall is a gap even if the socket survives.
        self._gap_on_stall = self.connection == "private"
        # When the outstanding ping went out, what had been received last, and whether any
        # frame has arrived since (the socket is alive even though the pong is late).
        self._rx_before_ping = 0.0
        self._rx_after_ping = False
        self._stalls = 0
        self._probe_outstanding = False
        self._quiet_probes = 0
        self._pending: list[Action] = []
        self._events: deque[ConnectionStateChanged] = deque(maxlen=EVENT_BACKLOG)
        self._events_dropped = 0
        self._last_decision: Decision | None = None
        self._connects = 0
        self._opens = 0
        self._failures = 0
        self._causes: dict[str, int] = {}
        self._dead = 0
        self._pings = 0
        self._pongs = 0
        keepalive = self.config.keepalive
        # Adaptive suspicion (see the module docs): gaps between socket reads (a ring written
        # on the hot path, read only when a deadline is computed) and pong round trips.
        self._gaps: deque[float] = deque(maxlen=keepalive.silence_window)
        # One C call per read on the hot path; _skip_first_gap for a stream's first frame,
        # _relearn_gap for the reads after a narrowing (stream_narrowed).
        self._gap: Callable[[float], None] = self._gaps.append
        self._relearn_left = 0
        self._rtts: deque[float] = deque(maxlen=keepalive.rtt_window)
        # The hedge: a spare socket under way; spent once one failed in this suspicion spell.
        self._hedging = False
        self._hedge_spent = False
        self._hedge_allowed = True
        self._learned_silence = 0.0
        self._learned_suspicion = 0.0
        self._learned_at: float | None = None  # the last false alarm, or the last halving
        self._hedge_until = 0.0  # see _death_due
        self._hedges = 0
        self._hedges_won = 0
        self._hedges_cancelled = 0
        self._hedges_failed = 0
        # The network watch of a long wait after an unreached connect (see network_probed).
        self._watching_network = False
        self._network_down = False  # a probe of this wait found the host unreachable
        self._network_probe_at = 0.0  # when the next probe is due (or the last went out)
        self._network_probing = False  # a ProbeNetwork is out, its answer not yet back
        self._network_probes = 0
        self._network_returns = 0

    def __repr__(self) -> str:
        return (
            f"Session(connection={self.connection!r}, state={self._state!r}, "
            f"attempt={self._attempt}, streaming={self._streaming})"
        )

    # --- read-only views --------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Return the current state."""
        return self._state

    @property
    def streaming(self) -> bool:
        """Return whether the data-silence probe is on."""
        return self._streaming

    @property
    def attempt(self) -> int:
        """Return the connect attempt number, counted from 1 since the connection was open."""
        return self._attempt

    @property
    def proved(self) -> bool:
        """Return whether the current socket proved the path (request sent, then data or pong)."""
        return self._proved and self._state in LIVE_STATES

    @property
    def last_frame_at(self) -> float | None:
        """Return when the last frame arrived on the current (or just lost) socket, if any.

        Still answers after the socket is lost, until the next one opens: a gap begins here
        (issue #9), not when the loss was noticed.
        """
        opened = self._opened_at
        if opened is None or self._last_data <= opened:
            return None
        return self._last_data

    @property
    def connect_timeout(self) -> float:
        """Return the timeout the next (or current) connect attempt gets."""
        return self._connect_timeout

    @property
    def retry_at(self) -> float | None:
        """Return when the next connect is due while reconnecting or suspended, else None."""
        return self._retry_at if self._state in _WAITING else None

    @property
    def last_decision(self) -> Decision | None:
        """Return the classification of the last failure, if any (``request_rejected``...)."""
        return self._last_decision

    def statistics(self, now: float) -> SessionStatistics:
        """Return a snapshot of the state, counters and timeouts at ``now``."""
        now = self._clock(now)
        opened = self._opened_at if self._state in LIVE_STATES else None
        return SessionStatistics(
            connection=self.connection,
            state=self._state,
            state_since=self._state_since,
            attempt=self._attempt,
            connects=self._connects,
            opens=self._opens,
            failures=self._failures,
            declared_dead=self._dead,
            pings_sent=self._pings,
            pongs_received=self._pongs,
            connect_timeout=self._connect_timeout,
            uptime=0.0 if opened is None else now - opened,
            events_dropped=self._events_dropped,
            state_age=max(0.0, now - self._state_since),
            last_frame_age=None if opened is None else max(0.0, now - self._last_rx),
            failures_by_cause=dict(self._causes),
            backoff_step=self.backoff.attempt,
            last_retry_delay=self._last_delay,
            down_age=None if self._down_since is None else max(0.0, now - self._down_since),
            retry_in=None if self.retry_at is None else max(0.0, self.retry_at - now),
            network_watch=self._watching_network and self._state == "reconnecting",
            proved=self._proved and self._state in LIVE_STATES,
            stale=self._is_stale(),
            stale_reason=self._stale_reason if self._is_stale() else None,
            stale_resubscribes=self._resubscribes,
            stalls=self._stalls,
            hedges=self._hedges,
            hedges_won=self._hedges_won,
            hedges_cancelled=self._hedges_cancelled,
            hedges_failed=self._hedges_failed,
            hedging=self._hedging,
            network_probes=self._network_probes,
            network_returns=self._network_returns,
            silence_threshold=self._silence_threshold(),
            suspicion=self._suspicion(),
        )

    def take_events(self) -> list[ConnectionStateChanged]:
        """Return the state-change events since the last call, oldest first, and forget them.

        At most the last 256 are kept between calls; ``statistics().events_dropped`` counts
        the rest.
        """
        events = list(self._events)
        self._events.clear()
        return events

    # --- inputs -----------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Open the connection: the next :meth:`poll` returns :class:`Connect`."""
        now = self._clock(now)
        if self._state == "idle":
            self._begin_connect(now, "started")

    def connected(self, now: float) -> None:
        """Report that the socket asked for by :class:`Connect` is open."""
        now = self._clock(now)
        if not self._connecting():
            return
        self._adopt_socket(now)
        self._set_state(now, "open", "connected")

    def _adopt_socket(self, now: float) -> None:
        """Start the bookkeeping of a new current socket (connected, or a hedge that won)."""
        self._opened_at = now
        self._requested = False
        self._proved = False
        self._last_rx = now
        self._last_data = now
        self._resubscribed_at = None
        self._stream_since = now
        self._gap = self._skip_first_gap
        self._last_ping = now
        self._pong_deadline = None
        self._pong_owed = False
        self._probe_outstanding = False
        self._quiet_probes = 0
        self._hedging = False
        self._hedge_spent = False
        self._connect_timeout = self.config.timeouts.connect
        self._was_open = True
        self._opens += 1

    def connect_failed(self, now: float, error: BaseException) -> None:
        """Report that the connect attempt failed with ``error`` (refused, timed out, 429...)."""
        now = self._clock(now)
        if not self._connecting():
            return
        decision = classify(error, connection=self.connection)
        if decision.cause == "timeout":
            self._grow_connect_timeout()
        self._fail(now, decision)

    def frame_received(self, now: float) -> None:
        """Report any frame from the server (data, ``{"status":"UP"}``, error): proof of life.

        This is on the hot path, so the common case (open, no ping waiting) is a few stores.
        It never brings :meth:`next_deadline` earlier, so the shell need not poll after it;
        it may end a ``degraded`` spell, though (see :meth:`take_events`). Calling it once per
        batch of frames read together is enough.
        """
        if now > self._latest:
            self._latest = now
        else:
            now = self._latest
        if self._state == "open" and self._pong_deadline is None:
            self._gap(now - self._last_rx)
            self._last_rx = now
            self._last_data = now
            self._quiet_probes = 0
            return
        if self._state not in LIVE_STATES:
            return
        silent_since = self._last_rx
        self._last_rx = now
        self._last_data = now
        self._hedge_spent = False
        if self._hedging:
            self._false_alarm(now, silent_since)
            self._cancel_hedge("data arrived on the old socket first")
        if self._gap_on_stall and self._pong_deadline is not None:
            # Only the pong answers a private ping: frames since prove the socket alive.
            self._rx_after_ping = True
            if now >= self._pong_deadline:
                late = now - self._pong_deadline + self.config.keepalive.pong_timeout
                self._stall(f"data resumed {late:.1f} s after a ping that got no pong")
        else:
            self._pong_deadline = None
        self._probe_outstanding = False
        self._quiet_probes = 0
        if self._state == "degraded":
            self._set_state(now, "open", "traffic resumed")

    def request_sent(self, now: float) -> None:
        """Report that a subscription request went out on the current socket.

        From now on a data frame (:meth:`data_received`) or a pong proves the path. A socket
        that does not stream (private: myOrder and myAsset may be silent for hours) has no data
        to prove it, so it pings at once rather than at its next quiet interval: the pong comes
        within a round trip, and a drop soon after the request still finds the path proved
        (the backoff does not escalate on a private socket that flaps every few hundred ms).
        A streaming socket pings with its request too while no round trip was measured yet:
        its data proves the path, but the suspicion deadline of a later probe needs the round
        trip (without one it is the whole pong timeout). The shell polls after calling this.
        """
        now = self._clock(now)
        if self._state in LIVE_STATES:
            self._requested = True
            if (
                not self._proved
                and self._pong_deadline is None
                and (not self._streaming or not self._rtts)
            ):
                self._ping(now, "proof")

    def data_received(self, now: float) -> None:
        """Report the first data frame (not an error frame) after :meth:`request_sent`.

        Not a hot-path input: the shell calls it once per socket (behind a flag it checks on
        every frame) and then no more. It proves the path (see the module docs).
        """
        now = self._clock(now)
        if self._state in LIVE_STATES and self._requested:
            self._proved = True

    def pong_received(self, now: float) -> None:
        """Report a pong: proof of life; a probe answered without data marks the stream quiet.

        A pong after :meth:`request_sent` also proves the path (a quiet socket has no data).
        """
        now = self._clock(now)
        if self._state not in LIVE_STATES:
            return
        if self._requested:
            self._proved = True
        self._pongs += 1
        deadline = self._pong_deadline
        if self._pong_owed:
            self._pong_owed = False
            self._rtts.append(now - self._last_ping)
        self._hedge_spent = False
        if self._hedging:
            self._false_alarm(now, self._last_rx)
            self._cancel_hedge("the old socket answered the ping first")
        if self._gap_on_stall and deadline is not None and now > deadline:
            late = now - deadline + self.config.keepalive.pong_timeout
            self._stall(f"a pong came {late:.1f} s after its ping")
        self._last_rx = now
        if self._probe_outstanding:
            self._quiet_probes += 1
        self._pong_deadline = None
        self._probe_outstanding = False
        if self._state == "degraded":
            self._set_state(now, "open", "pong received")

    def hedge_switched(self, now: float) -> bool:
        """Report that the spare socket proved itself: it delivers now, the old one is aborted.

        A reconnect that overlapped: counted as a failure of the old socket (declared dead, no
        answer) and an open of the spare, which proved the path (its request was answered).
        Returns False, and the shell drops the spare instead, when no hedge is under way (the
        old socket answered or ended first, or the session closed).
        """
        now = self._clock(now)
        if not self._hedging or self._state not in LIVE_STATES:
            return False
        silent = now - self._last_rx
        reason = (
            f"hedged: a spare socket took over from one silent for {silent:.2f} s "
            "(a reconnect that overlapped)"
        )
        self._dead += 1
        self._spare_took_over(now, Decision("retry", "normal", "timeout", reason))
        self._proved = True
        self._set_state(now, "open", reason)
        return True

    def hedge_adopted(self, now: float, error: BaseException) -> bool:
        """Report that the old socket ended (``error``) while its spare was open and requested.

        The spare takes over unproved, as a reconnect's socket would be right after its
        request: counted as the old socket's failure (classified from ``error``) and an open
        of the spare, whose request is sent but not yet answered, so a spare that then ends
        before any data escalates the backoff like a failed connect. Saves the connect, the
        backoff and the round trips a reconnect would add behind a spare already open.
        Returns False, and the shell treats the close as usual, when no hedge is under way.
        """
        now = self._clock(now)
        if not self._hedging or self._state not in LIVE_STATES:
            return False
        decision = classify(error, connection=self.connection)
        if not decision.retry or decision.backoff != "normal":
            return False  # fatal, a refusal or a key problem: the ordinary path decides
        self._spare_took_over(now, decision)
        self._set_state(
            now, "open", f"hedged: the old socket ended ({decision.reason}); its spare took over"
        )
        if not self._streaming:
            self._ping(now, "proof")  # a quiet spare proves itself with a pong, as after a request
        return True

    def _spare_took_over(self, now: float, decision: Decision) -> None:
        """Count the old socket's end (``decision``) and start the spare as the current socket,
        its request sent (:meth:`hedge_switched`, :meth:`hedge_adopted`)."""
        self._hedging = False
        self._hedges_won += 1
        self._failures += 1
        self._causes[decision.cause] = self._causes.get(decision.cause, 0) + 1
        self._last_decision = decision
        if self._proved_healthy(now):
            self.backoff.reset()
        self._adopt_socket(now)
        self._requested = True

    def allow_hedge(self, allowed: bool) -> None:
        """Say whether the shell can hedge at all (its listener can feed a spare socket).

        With ``KeepaliveConfig.hedge`` on, hedging is on unless the shell says otherwise.
        """
        self._hedge_allowed = allowed

    def hedge_failed(self, now: float) -> None:
        """Report that the spare socket failed (connect refused or timed out, closed, error frame).

        The old socket stays under the ordinary pong deadline (today's path), and no other
        spare is opened until it proves itself alive again.
        """
        now = self._clock(now)
        if not self._hedging:
            return
        self._hedging = False
        self._hedge_spent = True
        self._hedges_failed += 1

    def closed(
        self, now: float, *, code: int | None = None, error: BaseException | None = None
    ) -> None:
        """Report that the socket closed, with its close ``code`` or the ``error`` that ended it."""
        now = self._clock(now)
        if self._connecting():
            self.connect_failed(now, error or ConnectionClosedError(code or ABNORMAL_CLOSURE))
            return
        if self._state not in LIVE_STATES:
            return
        cause = error if error is not None else ConnectionClosedError(code or ABNORMAL_CLOSURE)
        self._fail(now, classify(cause, connection=self.connection))

    def internal_error(self, now: float, *, reason: str) -> None:
        """Report that the shell failed with a bug: drop the socket and retry on the backoff.

        The shell logged the failure; the connection must not stay down for it (a trader wants
        the data back), so it is handled like a lost socket: any socket or connect in progress
        is dropped and the next connect waits the ordinary backoff, which grows while the
        failure repeats. A suspended (key refused), idle or closed session is left as it is.
        """
        now = self._clock(now)
        if self._state in ("idle", "closed", "suspended"):
            return
        # The shell let go of every socket and connect when it failed: nothing to abort.
        self._pending = []
        self._fail(now, Decision("retry", "normal", "bug", reason))

    def _skip_first_gap(self, gap: float) -> None:
        """Leave out the wait for a stream's first frame on a socket, then note gaps again.

        From the open (or the first subscription) to the first frame is the request's round
        trip and Upbit starting the subscription (150-650 ms, docs/protocol.md section 1.3),
        not a gap between the stream's frames: counted, a few reconnects would raise the
        learned silence threshold to the ceiling and slow the next blackhole's detection.
        """
        self._gap = self._relearn_gap if self._relearn_left else self._gaps.append

    def set_streaming(self, now: float, *, streaming: bool) -> None:
        """Say whether the current subscriptions normally stream (turns the silence probe on)."""
        now = self._clock(now)
        if streaming and not self._streaming:
            # The silence clock starts now, not at the last frame of a quiet subscription.
            self._stream_since = now
            self._gap = self._skip_first_gap
            self._quiet_probes = 0
            self._resubscribed_at = None
        self._streaming = streaming

    def stream_narrowed(self, now: float) -> None:
        """Say that the subscription lost most of its streams: its rate must be learned again.

        The read gaps of a busy stream say nothing of what is left after it drops most of it
        (measured on the simulator: 200 tickers, then two coins: the next silences were
        judged by the 200's gaps, news, 3 spare connects and 3 ``degraded`` spells in 15 s).
        Until ``_MIN_GAPS`` reads of the narrower stream, a silence past the threshold is
        probed quietly, as an ordinary one: the socket stays ``open`` while the ping is
        answered, and an unanswered one hedges at the suspicion deadline. The threshold
        stays the one learned, so a blackhole right after the narrowing is still probed
        early (forgetting the gaps instead made the soak's public blackholes that followed a
        narrowing wait for the 1 s ceiling: 9 of 55, up to 1.24 s). Those reads' gaps then
        judge the stream: they are the longest of the window if it got sparser.
        """
        self._clock(now)
        self._relearn_left = _MIN_GAPS
        if self._gap == self._gaps.append:  # else _skip_first_gap hands over after its gap
            self._gap = self._relearn_gap

    def _relearn_gap(self, gap: float) -> None:
        """Note a read gap after a narrowing; the plain append again after ``_MIN_GAPS``."""
        self._gaps.append(gap)
        self._relearn_left -= 1
        if self._relearn_left <= 0:
            self._gap = self._gaps.append

    def key_invalid(self, now: float, *, reason: str = "API key refused") -> None:
        """Stop a private connection because its key is refused, until :meth:`key_valid`.

        A slow fallback retry (``backoff.auth_retry``) still runs meanwhile.
        """
        now = self._clock(now)
        if self._state in ("idle", "closed", "suspended"):
            return
        self._stop_socket(reason)
        self._failures += 1
        self._causes["auth"] = self._causes.get("auth", 0) + 1
        self._last_decision = Decision("retry", "auth", "auth", reason)
        self._wait(now, "suspended", reason, "auth", self.backoff.next_delay(kind="auth"))

    def key_valid(self, now: float) -> None:
        """Re-open a connection suspended for its key, at once, with a fresh backoff."""
        now = self._clock(now)
        if self._state == "suspended":
            self.backoff.reset()
            self._begin_connect(now, "API key works again")

    def network_probed(self, now: float, *, reachable: bool) -> None:
        """Report the outcome of :class:`ProbeNetwork`: did the host accept a TCP connect?

        A probe that succeeds after one of the same wait failed means the network is back:
        the connect starts now, on the same backoff sequence (a connect that fails again
        waits longer, as it would have). A first probe that succeeds means the path works and
        the failure lies beyond it: the wait runs its course, unwatched. A failed probe plans
        the next one ``network_probe`` seconds after it went out.
        """
        now = self._clock(now)
        if not self._network_probing:
            return
        self._network_probing = False
        self._network_probes += 1
        if self._state != "reconnecting" or not self._watching_network:
            return
        if not reachable:
            self._network_down = True
            interval = self.config.backoff.network_probe
            assert interval is not None  # only watched with the probe on
            self._network_probe_at = max(now, self._network_probe_at + interval)
            return
        self._watching_network = False
        if self._network_down:
            self._network_returns += 1
            self._begin_connect(now, "the network is back: the host accepts connections again")

    def close(self, now: float, *, reason: str = "closed by the user") -> None:
        """Shut the connection down for good; every later input is ignored."""
        now = self._clock(now)
        if self._state == "closed":
            return
        self._stop_socket(reason)
        self._pending = [a for a in self._pending if isinstance(a, _KEPT_ON_CLOSE)]
        self._set_state(now, "closed", reason)

    # --- outputs ----------------------------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        """Return what the shell must do now, advancing every timer that has expired by ``now``."""
        now = self._clock(now)
        state = self._state
        if state == "connecting" and now >= self._connect_deadline:
            timeout = self._connect_timeout
            self._grow_connect_timeout()
            reason = f"connect timed out after {timeout:g} s"
            self._pending.append(DeclareDead(reason))
            self._dead += 1
            self._fail(now, Decision("retry", "normal", "timeout", reason))
        elif state in _WAITING and now >= self._retry_at:
            self._begin_connect(now, "retrying")
        elif state == "reconnecting" and self._network_probe_due() <= now:
            self._network_probing = True
            self._network_probe_at = now
            interval = self.config.backoff.network_probe
            assert interval is not None  # only watched with the probe on
            self._pending.append(ProbeNetwork(interval))
        elif state in LIVE_STATES:
            self._keepalive(now)
        actions, self._pending = self._pending, []
        if self._state == "connecting" and any(isinstance(a, Connect) for a in actions):
            self._connect_handed_out = True
        return actions

    def next_deadline(self, now: float) -> float | None:
        """Return when :meth:`poll` must be called next; None when no timer runs (idle, closed).

        The time may be ``now`` or earlier, meaning: poll at once.
        """
        now = self._clock(now)
        if self._pending:
            return now
        state = self._state
        if state == "connecting":
            return self._connect_deadline
        if state in _WAITING:
            if state == "reconnecting":
                return min(self._retry_at, self._network_probe_due())
            return self._retry_at
        if state in LIVE_STATES:
            if self._pong_deadline is not None:
                due = self._death_due()
                assert due is not None
                suspected = self._suspicion_due()
                if suspected is not None:
                    due = min(due, suspected)
                if self._streaming and state == "open":
                    due = min(due, self._stale_due())
                    if not self._probe_outstanding:  # the ping in flight may be the probe
                        due = min(due, self._probe_due())
                return due
            due = self._last_ping + self.config.keepalive.interval(streaming=self._streaming)
            if not self._streaming:
                return due
            return min(due, self._probe_due(), self._stale_due())
        return None

    # --- internals --------------------------------------------------------------------------

    def _clock(self, now: float) -> float:
        # Time never goes backwards inside the session, whatever the caller passes.
        if now > self._latest:
            self._latest = now
        return self._latest

    def _connecting(self) -> bool:
        """Return whether a Connect was handed out and its outcome is awaited."""
        return self._state == "connecting" and self._connect_handed_out

    def _set_state(self, now: float, new: ConnectionState, reason: str) -> None:
        old = self._state
        if old == new:
            return
        self._connect_handed_out = False
        self._state = new
        self._state_since = now
        if new in LIVE_STATES:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = now  # an outage (or the first connect) begins
        if len(self._events) == EVENT_BACKLOG:
            self._events_dropped += 1
        self._events.append(
            ConnectionStateChanged(
                at=now,
                connection=self.connection,
                old=old,
                new=new,
                reason=reason,
                attempt=self._attempt,
            )
        )

    def _begin_connect(self, now: float, reason: str) -> None:
        # A wait not yet handed to the shell is obsolete once the connect starts, and so is
        # its network watch (a probe still out is ignored when it answers).
        self._pending = [a for a in self._pending if not isinstance(a, WaitBackoff | ProbeNetwork)]
        self._watching_network = False
        self._network_probing = False
        if self._was_open:
            self._attempt = 0
            self._was_open = False
        self._attempt += 1
        self._connects += 1
        self._connect_deadline = now + self._connect_timeout
        self._pending.append(Connect(self._connect_timeout, self._attempt))
        self._set_state(now, "connecting", reason)

    def _grow_connect_timeout(self) -> None:
        self._connect_timeout = self.config.timeouts.next_connect_timeout(self._connect_timeout)

    def _stop_socket(self, reason: str) -> None:
        """Ask the shell to drop whatever socket exists, unless its Connect was never sent."""
        if self._state == "connecting":
            undelivered = [a for a in self._pending if isinstance(a, Connect)]
            if undelivered:
                self._pending = [a for a in self._pending if not isinstance(a, Connect)]
            else:
                self._pending.append(DeclareDead(reason))
        elif self._state in LIVE_STATES:
            self._pending.append(CloseSocket(reason, self.config.timeouts.close))
        self._pong_deadline = None
        self._probe_outstanding = False
        if self._hedging:
            self._cancel_hedge(reason)

    def _proved_healthy(self, now: float) -> bool:
        """Tell whether the socket now ending proved healthy: THE reconnect backoff reset rule.

        A socket whose subscription request was answered with data, or whose ping was answered
        after its request (a quiet socket), proved the path: the next recovery starts from the
        backoff's first step (issue #9: a flapping network must not escalate a healthy path). A
        socket open ``BackoffConfig.reset_after`` seconds counts as proved too (it answered
        every keepalive ping meanwhile). Any other end (closed before data, an error frame
        then a close) keeps the backoff growing. This is the one place that decides it.
        """
        if self._proved:
            return True
        opened = self._opened_at
        return opened is not None and now - opened >= self.config.backoff.reset_after

    def _fail(self, now: float, decision: Decision) -> None:
        """Move on after the socket or the connect attempt ended, as ``decision`` says."""
        self._failures += 1
        self._causes[decision.cause] = self._causes.get(decision.cause, 0) + 1
        self._last_decision = decision
        self._pong_deadline = None
        self._probe_outstanding = False
        if self._hedging:
            self._cancel_hedge(f"the old socket ended first: {decision.reason}")
        if self._state in LIVE_STATES and self._proved_healthy(now):
            self.backoff.reset()
        self._proved = False
        self._requested = False
        if not decision.retry:
            self._pending = [a for a in self._pending if isinstance(a, _KEPT_ON_CLOSE)]
            self._set_state(now, "closed", f"fatal: {decision.reason}")
            return
        if decision.backoff == "auth":
            delay = self.backoff.next_delay(kind="auth")
            self._wait(now, "suspended", decision.reason, "auth", delay)
            return
        delay = self.backoff.next_delay(kind=decision.backoff, retry_after=decision.retry_after)
        self._wait(now, "reconnecting", decision.reason, decision.backoff, delay)
        interval = self.config.backoff.network_probe
        # A long wait after a connect that may have reached no server is watched with TCP
        # probes, the first at once (network_probed says what they decide).
        self._watching_network = (
            interval is not None
            and decision.backoff == "normal"
            and decision.cause in UNREACHED_CAUSES
            and delay > 2.0 * interval
        )
        self._network_down = False
        self._network_probing = False
        self._network_probe_at = now

    def _network_probe_due(self) -> float:
        """Return when the next network probe is due; infinity when none is."""
        if self._watching_network and not self._network_probing:
            return self._network_probe_at
        return math.inf

    def _wait(
        self,
        now: float,
        state: ConnectionState,
        reason: str,
        backoff: BackoffClass,
        delay: float,
    ) -> None:
        self._last_delay = delay
        self._retry_at = now + delay
        self._pending.append(WaitBackoff(delay, self._retry_at, backoff, reason))
        self._set_state(now, state, reason)

    def _probe_due(self) -> float:
        keepalive = self.config.keepalive
        # No frame yet since the stream started on this socket (a connect, a takeover, a first
        # subscription): Upbit starts a subscription 150-650 ms after its request
        # (docs/protocol.md section 1.3), later than a busy stream's learned threshold may be,
        # so the ceiling applies until the first frame (no spurious probe and spare).
        threshold = self._silence_threshold() if self._flowing_here() else keepalive.silence_probe
        after = min(keepalive.ping_interval, threshold * 2.0**self._quiet_probes)
        return max(self._last_rx, self._stream_since) + after

    def _silence_threshold(self) -> float:
        """Return the adaptive silence threshold (see ``KeepaliveConfig.silence_threshold``).

        Never below twice a silence that turned out to be a false alarm (see
        :meth:`_false_alarm`), and never above ``silence_probe``.
        """
        keepalive = self.config.keepalive
        p99 = self._gap_p99()
        if p99 is None:
            return keepalive.silence_threshold(None)
        threshold = keepalive.silence_threshold(p99)
        return min(keepalive.silence_probe, max(threshold, self._learned_silence))

    def _gap_p99(self) -> float | None:
        """Return the p99 of the last read gaps; None while too few were seen to adapt."""
        gaps = self._gaps
        if len(gaps) < min(_MIN_GAPS, self.config.keepalive.silence_window):
            return None
        return _p99(list(gaps))

    def _flowing_here(self) -> bool:
        """Tell whether a frame came since the stream started on this socket."""
        return self._last_data > self._stream_since

    def _silence_kind(self) -> Literal["news", "ordinary", "unknown"]:
        """Say what a silence past the threshold means for this stream.

        ``unknown`` until a frame came on this socket: the ceiling passed with nothing since
        the request, which Upbit answers within 650 ms with a snapshot of every code that has
        one (docs/protocol.md section 1.3). Then ``news`` when three times the stream's p99
        read gap (``_NEWS_GAP_FACTOR``) is under the ceiling (``silence_probe``): a silence
        past the threshold is abnormal for a stream this busy. Otherwise ``ordinary``: the
        stream's gaps reach the ceiling in normal traffic (a few trades a second: measured, a
        1 s silence every ~10 s, each a spare connect and a ``degraded`` spell while every
        silence was suspected), or too few reads were seen to know its rate (a quiet coin's
        trades at the start: measured, 20 ``degraded`` spells in 100 s while that was
        suspected), or to know it again since the subscription lost most of its streams
        (:meth:`stream_narrowed`). What a false alarm taught raises the threshold only: one
        hiccup of a busy stream (measured in the soak: one 0.8 s silence answered) does not
        make its next blackhole wait for an unanswered probe (1.2 s instead of 1.0 s, for the
        ten minutes that memory lasts).
        """
        if not self._flowing_here():
            return "unknown"
        p99 = self._gap_p99()
        if (
            p99 is None
            or self._relearn_left
            or _NEWS_GAP_FACTOR * p99 >= self.config.keepalive.silence_probe
        ):
            return "ordinary"
        return "news"

    def _suspicion(self) -> float:
        """Return the suspicion deadline of a ping (see ``KeepaliveConfig.suspicion``).

        Never below twice a round trip that outlived it once (a false alarm), nor above
        ``pong_timeout``.
        """
        keepalive = self.config.keepalive
        rtts = self._rtts
        deadline = keepalive.suspicion(_p99(list(rtts)) if rtts else None)
        return min(keepalive.pong_timeout, max(deadline, self._learned_suspicion))

    def _false_alarm(self, now: float, silent_since: float) -> None:
        """Learn from a hedge the old socket answered first: it was a false alarm.

        One false alarm is one connect (the spare, closed); the same silence or round trip
        must not cost one every time. So the silence threshold never again goes below twice
        the silence just answered, nor the suspicion deadline below twice the round trip of
        the ping outstanding: a slow but healthy link stops hedging after one or two, and
        the ceilings (``silence_probe``, ``pong_timeout``) bound what is learned.
        """
        self._learned_silence = max(self._learned_silence, 2.0 * (now - silent_since))
        if self._pong_deadline is not None:
            self._learned_suspicion = max(self._learned_suspicion, 2.0 * (now - self._last_ping))
        self._learned_at = now

    def _forget_false_alarms(self, now: float) -> None:
        """Halve what false alarms taught for each ``FALSE_ALARM_MEMORY`` s without a new one.

        Once both bounds are under their floors they no longer raise anything: forgotten.
        """
        since = self._learned_at
        halvings = _halvings(since, now)
        if since is None or not halvings:
            return
        self._learned_silence /= 2.0**halvings
        self._learned_suspicion /= 2.0**halvings
        self._learned_at = since + halvings * FALSE_ALARM_MEMORY
        keepalive = self.config.keepalive
        if (
            self._learned_silence < keepalive.silence_floor
            and self._learned_suspicion < keepalive.suspicion_floor
        ):
            self._learned_silence = self._learned_suspicion = 0.0
            self._learned_at = None

    def _can_hedge(self) -> bool:
        return (
            self.config.keepalive.hedge
            and self._hedge_allowed
            and not self._hedging
            and not self._hedge_spent
        )

    def _start_hedge(self, now: float) -> None:
        """Ask the shell for a spare socket (see the module docs)."""
        self._hedging = True
        # The spare's connect may take the connect timeout and its proof a round trip after
        # it: until then the old socket is not declared dead (see _death_due).
        self._hedge_until = now + self._connect_timeout + self.config.keepalive.pong_timeout
        self._hedges += 1
        self._connects += 1
        self._pending.append(Hedge(self._connect_timeout, "the socket is under suspicion"))

    def _cancel_hedge(self, reason: str) -> None:
        self._hedging = False
        self._hedges_cancelled += 1
        self._pending.append(CancelHedge(reason))

    def _death_due(self) -> float | None:
        """Return when the unanswered ping declares the socket dead (None: no ping out).

        Its pong deadline, unless a hedge's spare is on its way: declaring the old socket dead
        then would drop the spare and start a reconnect behind it (one more connect, its
        backoff, its round trips), which can only come later than the spare. So the old
        socket waits for the spare, up to the time its connect and proof may take; the spare
        proving itself, failing, or the old socket answering ends the wait. This matters on
        a long link, where a spare's TLS connect and first answer can outlast the pong
        deadline.
        """
        deadline = self._pong_deadline
        if deadline is None or not self._hedging:
            return deadline
        return max(deadline, self._hedge_until)

    def _suspicion_due(self) -> float | None:
        """Return when an unanswered ping puts the socket under suspicion (None: no such ping).

        None as well once that was acted on: the socket is ``degraded`` already and cannot
        hedge (a hedge under way, or spent in this spell).
        """
        if self._pong_deadline is None or self._rx_after_ping:
            return None
        if self._state != "open" and not self._can_hedge():
            return None
        return self._last_ping + self._suspicion()

    def _data_since(self) -> float:
        return max(self._last_data, self._stream_since)

    def _stale_due(self) -> float:
        resubscribed = self._resubscribed_at
        if resubscribed is None:
            return self._data_since() + self._stale_bound
        if self._last_data > resubscribed:
            return self._last_data  # answered: poll to take it in (grows the bound)
        return resubscribed + self.config.timeouts.subscription_change

    def _is_stale(self) -> bool:
        resubscribed = self._resubscribed_at
        return (
            self._state in LIVE_STATES
            and self._streaming
            and resubscribed is not None
            and self._last_data <= resubscribed
        )

    def _check_stale(self, now: float) -> bool:
        """Resubscribe a stale stream, or declare the socket dead; return whether it died."""
        self._forget_quiet_market(now)
        if self._stale_replaced and self._flowing_here():
            # The socket that replaced a stale one had data at once (its snapshots): the
            # resubscribe went unanswered because Upbit did not send the same codes' snapshots
            # again (docs/protocol.md section 3.2, unsure), not because the stream was dead.
            self._stale_replaced = False
            self._quiet_market(now)
        resubscribed = self._resubscribed_at
        if resubscribed is not None and self._last_data > resubscribed:
            # Answered: a quiet market, not a dead stream. Wait longer before the next one.
            self._resubscribed_at = None
            self._quiet_market(now)
            return False
        if resubscribed is None:
            silent = now - self._data_since()
            if silent >= self._stale_bound:
                self._resubscribed_at = now
                self._resubscribes += 1
                self._stale_reason = (
                    f"stream stale: no data for {silent:.1f} s while pings are answered; "
                    "resubscribing"
                )
                self._pending.append(Resubscribe(self._stale_reason))
            return False
        timeout = self.config.timeouts.subscription_change
        if now >= resubscribed + timeout:
            reason = f"stream stale: no data {timeout:g} s after a resubscribe; reconnecting"
            self._stale_reason = reason
            self._resubscribed_at = None
            self._stale_replaced = True
            self._pending.append(DeclareDead(reason))
            self._dead += 1
            self._fail(now, Decision("retry", "normal", "timeout", reason))
            return True
        return False

    def _quiet_market(self, now: float) -> None:
        """Double the stale bound (up to ``_STALE_GROWTH_LIMIT`` times ``stale_after``).

        A stale episode answered by data is a quiet market. The bound is the market's, so it
        holds across sockets, and halves back for each ``FALSE_ALARM_MEMORY`` s without a new
        episode (:meth:`_forget_quiet_market`).
        """
        limit = self.config.keepalive.stale_after * _STALE_GROWTH_LIMIT
        self._stale_bound = min(limit, self._stale_bound * 2.0)
        self._stale_learned_at = now

    def _forget_quiet_market(self, now: float) -> None:
        """Halve the stale bound back for each ``FALSE_ALARM_MEMORY`` s without an episode."""
        since = self._stale_learned_at
        halvings = _halvings(since, now)
        if since is None or not halvings:
            return
        floor = self.config.keepalive.stale_after
        self._stale_bound = max(floor, self._stale_bound / 2.0**halvings)
        learned = since + halvings * FALSE_ALARM_MEMORY
        self._stale_learned_at = None if self._stale_bound <= floor else learned

    def _keepalive(self, now: float) -> None:
        keepalive = self.config.keepalive
        self._forget_false_alarms(now)
        if self._pong_deadline is not None and now >= self._pong_deadline and self._rx_after_ping:
            # Private: frames came after the ping but its pong did not (a blackhole ate it).
            self._stall(f"no pong within {keepalive.pong_timeout:g} s while frames arrived")
        death = self._death_due()
        if death is not None and now >= death:
            reason = f"no pong within {keepalive.pong_timeout:g} s"
            if self._hedging:
                reason += " and no proof from the spare socket"
            self._pending.append(DeclareDead(reason))
            self._dead += 1
            self._fail(now, Decision("retry", "normal", "timeout", reason))
            return
        if self._streaming and self._check_stale(now):
            return
        silent = self._streaming and now >= self._probe_due()
        if self._pong_deadline is None:
            if silent:
                self._ping(now, "silence")
            elif now >= self._last_ping + keepalive.interval(streaming=self._streaming):
                self._ping(now, "interval")
        if silent and self._state == "open" and not self._probe_outstanding:
            # A ping already in flight doubles as the probe.
            self._probe_outstanding = True
            silence = self._silence_kind()
            if silence != "ordinary":
                # Suspected: a busy stream went silent ("news": a spare at once, unless its
                # last probe was answered without data), or a socket with no frame since its
                # request ("unknown": the probe decides). An ordinary silence (a sparse
                # stream, or one whose rate is not known yet) is probed quietly: only a ping
                # unanswered past the suspicion deadline (_suspicion_due) makes the socket
                # suspected, and hedges.
                quiet = now - max(self._last_rx, self._stream_since)
                reason = f"no data for {quiet:.2f} s, probing"
                if silence == "news" and self._quiet_probes == 0 and self._can_hedge():
                    self._start_hedge(now)
                    reason += " and opening a spare socket (hedge)"
                self._set_state(now, "degraded", reason)
                return
        suspected = self._suspicion_due()
        if suspected is not None and now >= suspected:
            reason = f"no pong within {now - self._last_ping:.2f} s"
            if self._can_hedge():
                self._start_hedge(now)
                reason += ", opening a spare socket (hedge)"
            self._set_state(now, "degraded", reason)

    def _stall(self, reason: str) -> None:
        """Report a private stall (see the module docs) and forget the ping it concerned."""
        self._stalls += 1
        self._pending.append(Stalled(self._rx_before_ping, reason))
        self._pong_deadline = None
        self._rx_after_ping = False

    def _ping(self, now: float, reason: Literal["interval", "silence", "proof"]) -> None:
        self._pings += 1
        self._rx_before_ping = self._last_rx
        self._rx_after_ping = False
        self._last_ping = now
        self._pong_deadline = now + self.config.keepalive.pong_timeout
        self._pong_owed = True
        self._pending.append(SendPing(reason))
