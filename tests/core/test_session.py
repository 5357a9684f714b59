"""The session state machine: every transition, keepalive timing and reconnect planning."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from upbit_ws.core.config import (
    BackoffConfig,
    ConnectionConfig,
    KeepaliveConfig,
)
from upbit_ws.core.errors import (
    AuthError,
    ConnectionClosedError,
    ConnectTimeoutError,
    InvalidInputError,
    RateLimitedError,
    ServerRejectedError,
)
from upbit_ws.core.events import ConnectionStateChanged
from upbit_ws.core.session import (
    EVENT_BACKLOG,
    FALSE_ALARM_MEMORY,
    Action,
    CloseSocket,
    Connect,
    DeclareDead,
    ProbeNetwork,
    Resubscribe,
    SendPing,
    Session,
    Stalled,
    WaitBackoff,
)

#: The keepalive of these tests: the probes and deadlines without the hedge, and the quiet
#: ping interval they were written for (2.5 s); the hedge and the adaptive thresholds have
#: their own tests (tests/core/test_hedge.py).
CLASSIC = KeepaliveConfig(hedge=False, quiet_ping_interval=2.5)
DEFAULTS = ConnectionConfig(keepalive=CLASSIC)
PING = DEFAULTS.keepalive.ping_interval
QUIET = DEFAULTS.keepalive.quiet_ping_interval
PONG = DEFAULTS.keepalive.pong_timeout
SILENCE = DEFAULTS.keepalive.silence_probe
STALE = DEFAULTS.keepalive.stale_after
CHANGE = DEFAULTS.timeouts.subscription_change
#: The default config with the stale-stream check out of the way (tests about the probes).
NO_STALE = ConnectionConfig(keepalive=replace(CLASSIC, stale_after=10_000.0))


def new_session(kind: str = "public", **kwargs: object) -> Session:
    kwargs.setdefault("config", DEFAULTS)
    return Session(kind, rng=random.Random(0), **kwargs)  # type: ignore[arg-type]


def open_session(kind: str = "public", *, at: float = 0.0, **kwargs: object) -> Session:
    """Return a session started and connected at ``at``, with its actions and events drained."""
    session = new_session(kind, **kwargs)
    session.start(at)
    assert session.poll(at) == [Connect(timeout=1.0, attempt=1)]
    session.connected(at)
    session.take_events()
    return session


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def states(events: list[ConnectionStateChanged]) -> list[tuple[str, str]]:
    return [(e.old, e.new) for e in events]


# --- idle and start ---------------------------------------------------------------------------


def test_idle_session_has_no_timer_and_no_actions() -> None:
    """Before start() nothing is scheduled and poll() asks for nothing."""
    session = new_session()
    assert session.state == "idle"
    assert session.next_deadline(0.0) is None
    assert session.poll(100.0) == []


def test_start_asks_for_a_connect_with_the_first_timeout() -> None:
    """start() moves to connecting and the next poll returns Connect(1 s, attempt 1)."""
    session = new_session()
    session.start(5.0)
    assert session.state == "connecting"
    assert session.next_deadline(5.0) == 5.0  # an action is pending: poll at once
    assert session.poll(5.0) == [Connect(timeout=1.0, attempt=1)]
    assert session.next_deadline(5.0) == 6.0  # the connect deadline
    assert states(session.take_events()) == [("idle", "connecting")]


def test_second_start_is_ignored() -> None:
    """Calling start() again does not open a second socket."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.start(0.1)
    assert session.poll(0.1) == []


def test_connected_opens_and_schedules_keepalive() -> None:
    """connected() opens the session; the next timer is the silence probe (public streams)."""
    session = open_session(at=2.0)
    assert session.state == "open"
    assert session.next_deadline(2.0) == 2.0 + SILENCE


def test_connected_outside_connecting_is_ignored() -> None:
    """A stray connected() report while idle changes nothing."""
    session = new_session()
    session.connected(0.0)
    assert session.state == "idle"


# --- connect failures and timeouts ------------------------------------------------------------


def test_connect_timeout_declares_the_attempt_dead_and_plans_a_retry() -> None:
    """A connect still pending at its deadline is aborted and a backoff retry is planned."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    actions = session.poll(1.0)
    assert kinds(actions) == [DeclareDead, WaitBackoff]
    assert actions[0] == DeclareDead("connect timed out after 1 s")
    wait = actions[1]
    assert isinstance(wait, WaitBackoff)
    assert 0.0 < wait.delay <= 0.1
    assert session.state == "reconnecting"
    assert session.next_deadline(1.0) == wait.until


def test_connect_timeout_grows_to_five_seconds_and_resets_on_success() -> None:
    """Consecutive connect timeouts get 1, 2, 4, 5, 5 s; a successful connect resets to 1 s."""
    session = new_session()
    session.start(0.0)
    now = 0.0
    seen = []
    for _ in range(5):
        connect = session.poll(now)[-1]
        assert isinstance(connect, Connect)
        seen.append(connect.timeout)
        now = session.next_deadline(now) or math.inf
        session.poll(now)  # times out
        now = session.next_deadline(now) or math.inf
    assert seen == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert session.poll(now) == [Connect(timeout=5.0, attempt=6)]
    session.connected(now)
    assert session.connect_timeout == 1.0


def test_connect_failed_with_timeout_error_grows_the_timeout() -> None:
    """A TimeoutError reported by the shell grows the connect timeout like the session's own."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.9, TimeoutError())
    assert session.connect_timeout == 2.0


def test_refused_connect_keeps_the_timeout_and_retries_fast() -> None:
    """A refused connect retries within ~100 ms and does not grow the connect timeout."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.01, ConnectionRefusedError())
    actions = session.poll(0.01)
    assert kinds(actions) == [WaitBackoff]
    assert session.connect_timeout == 1.0
    deadline = session.next_deadline(0.01)
    assert deadline is not None and deadline <= 0.11
    assert session.poll(deadline) == [Connect(timeout=1.0, attempt=2)]


def test_connect_failures_never_give_up() -> None:
    """A hundred failed connects later the session is still planning retries, capped at 20 s."""
    session = new_session()
    session.start(0.0)
    now = 0.0
    for _ in range(100):
        session.poll(now)
        session.connect_failed(now, ConnectionRefusedError())
        wait = next(a for a in session.poll(now) if isinstance(a, WaitBackoff))
        assert wait.delay <= 20.0
        now = wait.until
    assert session.state == "reconnecting"
    assert session.attempt == 100


def test_closed_while_connecting_counts_as_a_failed_connect() -> None:
    """A close reported during the handshake is handled like a failed connect."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.closed(0.2, code=1006)
    assert session.state == "reconnecting"


def test_fatal_connect_error_closes_the_session() -> None:
    """A bug (not a transport problem) stops the session and says so in the reason."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.1, ValueError("bug in the shell"))
    assert session.state == "closed"
    assert session.next_deadline(0.1) is None
    event = session.take_events()[-1]
    assert event.new == "closed"
    assert event.reason.startswith("fatal: ValueError")


def test_connect_reports_before_the_connect_is_handed_out_are_ignored() -> None:
    """Shrunk by the state machine: outcomes of a Connect poll() never returned are ignored."""
    session = new_session()
    session.start(0.0)
    session.connect_failed(0.0, ValueError("bug"))
    session.connected(0.0)
    assert session.state == "connecting"
    assert session.poll(0.0) == [Connect(timeout=1.0, attempt=1)]


def test_key_flapping_during_a_connect_keeps_abort_before_the_new_connect() -> None:
    """Shrunk by the state machine: abort of the old attempt comes before the new Connect."""
    session = new_session("private")
    session.start(0.0)
    session.poll(0.0)
    session.key_invalid(0.0)
    session.key_valid(0.0)
    session.connected(0.0)  # belongs to the aborted attempt: ignored
    assert session.state == "connecting"
    assert session.poll(0.0) == [DeclareDead("API key refused"), Connect(timeout=1.0, attempt=2)]


# --- the network watch of long waits ----------------------------------------------------------


def fail_until_a_long_wait(
    session: Session, error: BaseException | None = None
) -> tuple[float, list[Action]]:
    """Fail every connect of a started session until a wait of more than 2 s is planned.

    Returns the time of that failure and what ``poll`` returned after it. Shorter waits are
    never watched: their polls hand out no :class:`ProbeNetwork`.
    """
    now = 0.0
    while True:
        assert kinds(session.poll(now)) == [Connect]
        session.connect_failed(now, error or ConnectionRefusedError())
        actions = session.poll(now)
        wait = next(a for a in actions if isinstance(a, WaitBackoff))
        if wait.delay > 2.0:
            return now, actions
        assert ProbeNetwork not in kinds(actions)
        now = wait.until


def test_the_network_s_return_ends_a_long_wait_after_refused_connects() -> None:
    """A long wait after refused connects is probed every second; the host answering again
    after a failed probe starts the connect at once, on the same backoff sequence."""
    session = new_session()
    session.start(0.0)
    at, actions = fail_until_a_long_wait(session)
    assert actions[-1] == ProbeNetwork(timeout=1.0)  # the first probe at once
    retry_at = session.retry_at
    assert retry_at is not None and retry_at > at + 2.0
    assert session.next_deadline(at) == retry_at  # no second probe while one is out
    session.network_probed(at + 0.01, reachable=False)  # the path is down
    assert session.next_deadline(at + 0.01) == at + 1.0
    assert session.poll(at + 0.5) == []
    assert session.poll(at + 1.0) == [ProbeNetwork(timeout=1.0)]
    step = session.backoff.attempt
    session.take_events()
    session.network_probed(at + 1.02, reachable=True)
    assert session.poll(at + 1.02) == [Connect(timeout=1.0, attempt=session.attempt)]
    assert session.state == "connecting"
    (event,) = session.take_events()
    assert "network is back" in event.reason
    assert session.backoff.attempt == step  # not reset: only a proved socket resets it
    stats = session.statistics(at + 1.02)
    assert (stats.network_probes, stats.network_returns) == (2, 1)


def test_a_host_that_answers_the_first_probe_leaves_the_wait_to_run() -> None:
    """A connect that timed out against a host that accepts TCP (a server stalling the
    upgrade): the failure lies beyond the path, so the backoff is kept, with no more probes."""
    session = new_session()
    session.start(0.0)
    at, actions = fail_until_a_long_wait(session, ConnectTimeoutError(1.0))
    assert ProbeNetwork in kinds(actions)
    retry_at = session.retry_at
    assert retry_at is not None
    session.network_probed(at + 0.01, reachable=True)
    assert session.poll(at + 0.01) == []
    assert session.next_deadline(at + 0.01) == retry_at
    assert session.poll(retry_at - 0.001) == []
    assert kinds(session.poll(retry_at)) == [Connect]
    assert session.statistics(retry_at).network_returns == 0


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (RateLimitedError(429), "429 keeps its floor"),
        (ServerRejectedError("server_error", "unavailable", status=503), "a server answered"),
        (ConnectionClosedError(1006, ""), "a socket closed"),
    ],
)
def test_waits_after_a_server_answered_are_not_watched(error: BaseException, why: str) -> None:
    """Only a connect that may have reached no server is watched: the others waited on
    purpose, and a TCP connect would succeed at once anyway."""
    session = new_session(config=replace(DEFAULTS, backoff=BackoffConfig(first_delay=3.0)))
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.0, error)
    actions = session.poll(0.0)
    assert ProbeNetwork not in kinds(actions), why
    assert session.next_deadline(0.0) == session.retry_at


def test_the_network_watch_can_be_turned_off() -> None:
    session = new_session(
        config=replace(DEFAULTS, backoff=BackoffConfig(first_delay=3.0, network_probe=None))
    )
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.0, ConnectionRefusedError())
    assert kinds(session.poll(0.0)) == [WaitBackoff]


def test_down_age_spans_the_outage_and_retry_in_the_wait() -> None:
    """``state_age`` restarts at every attempt of an outage; ``down_age`` counts from the
    moment the connection stopped being usable, and is None once a socket is open again."""
    session = open_session()
    assert session.statistics(5.0).down_age is None
    session.closed(10.0, code=1006)
    session.poll(10.0)
    stats = session.statistics(10.0)
    assert stats.down_age == 0.0 and stats.retry_in is not None and stats.retry_in > 0.0
    at = 10.0
    for _ in range(6):  # refused connects, each a new state
        at = session.next_deadline(at) or at
        assert kinds(session.poll(at)) == [Connect]
        assert session.statistics(at).retry_in is None  # connecting: no wait
        session.connect_failed(at, ConnectionRefusedError())
        session.poll(at)
    stats = session.statistics(at + 0.5)
    assert stats.state_age == pytest.approx(0.5)
    assert stats.down_age == pytest.approx(at + 0.5 - 10.0)
    assert stats.network_watch is (session.retry_at is not None and session.retry_at - at > 2.0)
    at = session.retry_at or at
    session.poll(at)
    session.connected(at)
    assert session.statistics(at).down_age is None


def test_a_probe_that_answers_after_the_connect_began_is_ignored() -> None:
    session = new_session()
    session.start(0.0)
    at, _ = fail_until_a_long_wait(session)
    retry_at = session.retry_at
    assert retry_at is not None
    session.network_probed(at + 0.01, reachable=False)
    assert session.poll(at + 1.0) == [ProbeNetwork(timeout=1.0)]
    assert kinds(session.poll(retry_at)) == [Connect]  # the wait ended first
    session.network_probed(retry_at + 0.01, reachable=True)
    assert session.poll(retry_at + 0.01) == []
    assert session.state == "connecting"
    assert session.statistics(retry_at).network_returns == 0


# --- keepalive ---------------------------------------------------------------------------------


def test_silence_probe_pings_and_degrades() -> None:
    """A streaming connection silent for 1 s gets a ping at once. With one frame seen its rate
    is not known, so the probe goes out quietly (tests/core/test_hedge.py has the busy stream,
    degraded at once); the ping unanswered past the suspicion deadline makes it degraded."""
    session = open_session()
    session.frame_received(0.5)
    assert session.next_deadline(0.5) == 0.5 + SILENCE
    assert session.poll(1.4) == []
    assert session.poll(1.5) == [SendPing("silence")]
    assert session.state == "open"
    assert session.take_events() == []
    rtt = 0.1  # a round trip measured (interval pings do it): the suspicion deadline follows
    session = open_session()
    session.request_sent(0.0)
    session.poll(0.0)
    session.pong_received(rtt)
    session.frame_received(0.5)
    assert session.poll(1.5) == [SendPing("silence")]
    suspicion = session.statistics(1.5).suspicion
    assert suspicion < PONG
    assert session.next_deadline(1.5) == pytest.approx(1.5 + suspicion)
    assert session.poll(1.5 + suspicion) == []
    assert session.state == "degraded"
    assert states(session.take_events()) == [("open", "degraded")]


def test_frame_after_probe_restores_open() -> None:
    """Any frame while degraded proves life: back to open, pong deadline cleared."""
    session = open_session()
    session.poll(1.0)
    session.frame_received(1.2)
    assert session.state == "open"
    assert session.next_deadline(1.2) == 1.2 + SILENCE
    assert session.take_events()[-1].reason == "traffic resumed"


def test_pong_after_probe_restores_open() -> None:
    """A pong while degraded proves life: back to open."""
    session = open_session()
    session.poll(1.0)
    session.pong_received(1.3)
    assert session.state == "open"
    assert session.take_events()[-1].reason == "pong received"


def test_no_pong_declares_dead_and_plans_reconnect() -> None:
    """No frame or pong within the pong deadline: abort the socket and plan a retry."""
    session = open_session()
    session.poll(1.0)
    actions = session.poll(1.0 + PONG)
    assert kinds(actions) == [DeclareDead, WaitBackoff]
    assert actions[0] == DeclareDead(f"no pong within {PONG:g} s")
    assert session.state == "reconnecting"
    assert states(session.take_events()) == [("open", "degraded"), ("degraded", "reconnecting")]


def test_blackhole_is_replaced_within_three_seconds() -> None:
    """Frames every 100 ms then silence: dead and reconnecting within 2 s of the last frame.

    The silence threshold adapted to the 100 ms gaps (4 x 0.1 s, under the 1 s ceiling).
    """
    session = open_session()
    now = 0.0
    while now < 5.0:
        now = round(now + 0.1, 10)
        session.frame_received(now)
        assert session.poll(now) == []
    last_frame = now
    connect_at = None
    dead_at = None
    while connect_at is None:
        deadline = session.next_deadline(now)
        assert deadline is not None
        now = deadline
        for action in session.poll(now):
            if isinstance(action, DeclareDead):
                dead_at = now
            if isinstance(action, Connect):
                connect_at = now
    threshold = DEFAULTS.keepalive.silence_threshold(0.1)
    assert threshold == pytest.approx(0.4)
    assert dead_at == pytest.approx(last_frame + threshold + PONG)
    assert connect_at - last_frame <= threshold + PONG + 0.1 + 1e-9
    assert connect_at - last_frame < 2.0


def test_interval_ping_on_a_quiet_private_connection() -> None:
    """A private (non-streaming) connection pings every quiet interval and never probes silence."""
    session = open_session("private")
    assert QUIET < PING
    assert session.next_deadline(0.0) == QUIET
    assert session.poll(QUIET - 0.01) == []
    assert session.poll(QUIET) == [SendPing("interval")]
    assert session.state == "open"
    session.pong_received(QUIET + 0.3)
    assert session.next_deadline(QUIET + 0.3) == 2 * QUIET


def test_interval_ping_without_pong_declares_dead() -> None:
    """An interval ping that gets no answer still ends the connection."""
    session = open_session("private")
    session.poll(QUIET)
    assert kinds(session.poll(QUIET + PONG)) == [DeclareDead, WaitBackoff]


def test_quiet_blackhole_is_found_within_four_seconds() -> None:
    """A private socket blackholed right after an answered ping is declared dead within 4 s."""
    session = open_session("private")
    now = 0.0
    for _ in range(3):  # a few healthy rounds: ping, pong 0.2 s later
        deadline = session.next_deadline(now)
        assert deadline is not None
        now = deadline
        assert session.poll(now) == [SendPing("interval")]
        now += 0.2
        session.pong_received(now)
    stalled_at = now  # from here on nothing comes back
    dead_at = None
    while dead_at is None:
        deadline = session.next_deadline(now)
        assert deadline is not None
        now = deadline
        if any(isinstance(a, DeclareDead) for a in session.poll(now)):
            dead_at = now
    assert dead_at - stalled_at <= QUIET + PONG <= 4.0


def test_quiet_interval_never_exceeds_the_ping_interval() -> None:
    """With a ping interval shorter than the quiet one, quiet connections use the shorter."""
    config = ConnectionConfig(keepalive=replace(CLASSIC, ping_interval=2.0, silence_probe=1.0))
    session = open_session("private", config=config)
    assert session.next_deadline(0.0) == 2.0


def test_interval_ping_continues_while_data_streams() -> None:
    """Pings go out every interval even when data keeps flowing (Upbit's idle rule is unclear)."""
    session = open_session()
    pings = []
    now = 0.0
    while now < 3 * PING:
        now = round(now + 0.25, 10)
        session.frame_received(now)
        pings += [now for a in session.poll(now) if isinstance(a, SendPing)]
    assert pings == [PING, 2 * PING, 3 * PING]


def test_frame_clears_an_outstanding_ping() -> None:
    """On public a data frame after a ping counts as the answer: no pong needed."""
    session = open_session("public", streaming=False)
    session.poll(QUIET)
    session.frame_received(QUIET + 0.1)
    assert session.poll(QUIET + PONG + 0.5) == []  # past the pong deadline
    assert session.state == "open"


def test_private_frame_without_the_pong_is_a_stall() -> None:
    """Issue #9: a private ping whose pong a blackhole ate, frames after it: Stalled, socket kept.

    The gap starts at what was last received before that ping (here the connect at 0).
    """
    session = open_session("private", at=0.0)
    assert kinds(session.poll(QUIET)) == [SendPing]
    session.frame_received(QUIET + 0.1)  # data resumes; the pong never comes
    actions = session.poll(QUIET + PONG + 0.01)
    assert [a for a in actions if isinstance(a, Stalled)] == [
        Stalled(0.0, f"no pong within {PONG:g} s while frames arrived")
    ]
    assert not any(isinstance(a, DeclareDead) for a in actions)
    assert session.state == "open"
    assert session.statistics(QUIET + PONG + 0.01).stalls == 1


def test_private_late_pong_is_a_stall() -> None:
    """A private pong that comes after its deadline (the driver was late): Stalled."""
    session = open_session("private")
    session.poll(QUIET)
    session.frame_received(QUIET + 0.5)
    session.pong_received(QUIET + PONG + 0.2)
    assert kinds(session.poll(QUIET + PONG + 0.2)) == [Stalled]
    assert session.state == "open"


def test_private_data_after_the_deadline_is_a_stall() -> None:
    """Data resuming after the pong deadline passed (before the driver polled): Stalled."""
    session = open_session("private")
    session.poll(QUIET)
    session.frame_received(QUIET + PONG + 0.3)
    actions = session.poll(QUIET + PONG + 0.3)
    assert kinds(actions)[:1] == [Stalled]
    assert session.state == "open"


def test_private_pong_in_time_is_no_stall() -> None:
    """A private ping answered in time, frames or not meanwhile: nothing to report."""
    session = open_session("private")
    session.poll(QUIET)
    session.frame_received(QUIET + 0.1)
    session.pong_received(QUIET + 0.2)
    assert session.poll(QUIET + PONG + 0.5) == []
    assert session.statistics(QUIET + PONG + 0.5).stalls == 0


def test_private_silence_past_the_pong_deadline_is_still_dead() -> None:
    """No frame and no pong after a private ping: declared dead as on public."""
    session = open_session("private")
    session.poll(QUIET)
    assert kinds(session.poll(QUIET + PONG))[:1] == [DeclareDead]


def test_quiet_stream_probes_back_off() -> None:
    """Probes answered by pongs without data wait 1, 2, 4, 8 s, then the ping interval rules."""
    session = open_session(config=NO_STALE)
    now = 0.0
    gaps = []
    for _ in range(6):
        deadline = session.next_deadline(now)
        assert deadline is not None
        gaps.append(round(deadline - now, 6))
        now = deadline
        assert kinds(session.poll(now)) == [SendPing]
        now += 0.2
        session.pong_received(now)
    assert gaps == [1.0, 2.0, 4.0, 8.0, PING - 0.2, PING - 0.2]


def test_data_resets_the_quiet_probe_backoff() -> None:
    """After data flows again the probe is back to the short silence threshold."""
    session = open_session()
    session.poll(1.0)
    session.pong_received(1.1)
    session.frame_received(1.5)
    assert session.next_deadline(1.5) == 1.5 + SILENCE


def test_silence_while_an_interval_ping_is_in_flight_sends_no_second_ping() -> None:
    """If a ping is already out when silence is noticed, it serves as the probe."""
    config = ConnectionConfig(keepalive=replace(CLASSIC, ping_interval=2.0, silence_probe=2.0))
    session = open_session(config=config)
    session.frame_received(0.5)
    assert session.poll(2.0) == [SendPing("interval")]
    assert session.state == "open"
    assert session.next_deadline(2.0) == 2.5
    assert session.poll(2.5) == []  # the probe: its rate not known, it stays open for now
    assert session.state == "open"
    assert session.next_deadline(2.5) == 2.0 + PONG


def answer_pings_until(session: Session, now: float, until: float) -> tuple[float, list[Action]]:
    """Play a socket that answers every ping at once and sends no data, up to ``until``."""
    seen: list[Action] = []
    while True:
        deadline = session.next_deadline(now)
        assert deadline is not None
        if deadline > until:
            return now, seen
        now = max(now, deadline)
        actions = session.poll(now)
        seen.extend(actions)
        if any(isinstance(a, SendPing) for a in actions):
            session.pong_received(now + 0.05)
        if any(isinstance(a, Resubscribe | DeclareDead) for a in actions):
            return now, seen


def test_a_silent_stream_that_answers_pings_is_stale_then_resubscribed() -> None:
    """Issue #9 item 2: no data for stale_after while pongs come: Resubscribe, shown as stale."""
    session = open_session()
    session.frame_received(0.5)
    now, seen = answer_pings_until(session, 0.5, 100.0)
    assert isinstance(seen[-1], Resubscribe)
    assert now == pytest.approx(0.5 + STALE)
    stats = session.statistics(now)
    assert stats.stale and stats.stale_resubscribes == 1
    assert stats.stale_reason is not None and "stale" in stats.stale_reason
    assert session.state in {"open", "degraded"}


def test_a_stale_stream_still_silent_after_the_resubscribe_is_replaced() -> None:
    """No data within the subscription-change timeout after the resubscribe: declared dead."""
    session = open_session()
    now, _ = answer_pings_until(session, 0.0, 100.0)
    now, seen = answer_pings_until(session, now, 100.0)
    assert isinstance(seen[-1], WaitBackoff) or any(isinstance(a, DeclareDead) for a in seen)
    assert now == pytest.approx(STALE + CHANGE)
    assert session.state == "reconnecting"
    assert session.last_decision is not None and "stale" in session.last_decision.reason


def test_data_answering_the_resubscribe_clears_stale_and_doubles_the_bound() -> None:
    """A resubscribe answered by data: a quiet market; the next check waits twice as long."""
    session = open_session()
    now, _ = answer_pings_until(session, 0.0, 100.0)
    session.frame_received(now + 0.3)
    assert not session.statistics(now + 0.3).stale
    now, seen = answer_pings_until(session, now + 0.3, 1000.0)
    assert isinstance(seen[-1], Resubscribe)
    assert now == pytest.approx(STALE + 0.3 + 2 * STALE, abs=0.01)


def reconnect(session: Session, now: float) -> float:
    """Play the backoff and connect of a session that lost its socket; return when it opened
    (the request sent with it)."""
    while session.state != "connecting":
        deadline = session.next_deadline(now)
        assert deadline is not None
        now = max(now, deadline)
        session.poll(now)
    session.connected(now)
    session.request_sent(now)
    session.poll(now)
    return now


def test_a_stale_reconnect_whose_new_socket_has_data_doubles_the_bound_for_good() -> None:
    """Upbit may not send a code's snapshot again when a resubscribe asks for the same set
    (docs/protocol.md section 3.2, unsure). Then a quiet market's resubscribe goes unanswered
    and the socket is replaced; the new socket's snapshot answers at once. That proves a quiet
    market, not a dead stream: the bound doubles and stays doubled on the new socket.
    Measured before (simulator, one quiet coin's trades): a reconnect every 30 s, forever.
    """
    session = open_session()
    now, _ = answer_pings_until(session, 0.0, 100.0)
    assert now == pytest.approx(STALE)
    now, seen = answer_pings_until(session, now, 100.0)
    assert any(isinstance(a, DeclareDead) for a in seen)
    opened = reconnect(session, now)
    session.frame_received(opened + 0.1)  # the snapshot
    now, seen = answer_pings_until(session, opened + 0.1, 1000.0)
    assert isinstance(seen[-1], Resubscribe)
    assert now == pytest.approx(opened + 0.1 + 2 * STALE, abs=0.01)
    # Answered this time (a trade): doubled again, and the longest bound is 8 x stale_after.
    for factor in (4, 8, 8):
        session.frame_received(now + 0.1)
        start = now + 0.1
        now, seen = answer_pings_until(session, start, 10_000.0)
        assert isinstance(seen[-1], Resubscribe)
        assert now == pytest.approx(start + factor * STALE, abs=0.01)


def test_what_a_quiet_market_taught_survives_a_reconnect_and_halves_every_ten_minutes() -> None:
    """The bound a quiet market raised is the market's, not the socket's: a reconnect for
    another cause keeps it; ten minutes without a new quiet episode halve it."""
    session = open_session()
    now, _ = answer_pings_until(session, 0.0, 100.0)
    session.frame_received(now + 0.3)  # the resubscribe answered: 2 x stale_after
    assert session.next_deadline(now + 0.3) == now + 0.3  # the shell polls to take it in
    session.poll(now + 0.3)
    session.closed(now + 1.0, code=1006)
    opened = reconnect(session, now + 1.0)
    session.frame_received(opened + 0.1)
    now, seen = answer_pings_until(session, opened + 0.1, 1000.0)
    assert isinstance(seen[-1], Resubscribe)
    assert now == pytest.approx(opened + 0.1 + 2 * STALE, abs=0.01)
    session.frame_received(now + 0.3)  # 4 x, learned at now + 0.3
    learned = now + 0.3
    flowing = learned
    while flowing < learned + FALSE_ALARM_MEMORY:  # a busy stream for ten minutes
        flowing += 0.5
        session.frame_received(flowing)
        session.poll(flowing)
    now, seen = answer_pings_until(session, flowing, 10_000.0)
    assert isinstance(seen[-1], Resubscribe)
    assert now == pytest.approx(flowing + 2 * STALE, abs=0.01)


def test_a_quiet_connection_is_never_stale() -> None:
    """A connection that does not stream (private myOrder) is never resubscribed for silence."""
    session = open_session("private")
    _, seen = answer_pings_until(session, 0.0, 120.0)
    assert not any(isinstance(a, Resubscribe | DeclareDead) for a in seen)


def test_turning_streaming_on_starts_the_silence_clock_now() -> None:
    """A private session told it now streams probes 1 s after that, not at once."""
    session = open_session("private")
    session.set_streaming(10.0, streaming=True)
    assert session.streaming
    assert session.next_deadline(10.0) == 10.0 + SILENCE


def test_turning_streaming_off_stops_probes() -> None:
    """A public session told it no longer streams only pings on the interval."""
    session = open_session()
    session.set_streaming(0.0, streaming=False)
    assert session.next_deadline(0.0) == QUIET


def test_streaming_private_connection_uses_the_ping_interval() -> None:
    """A private connection told it streams pings every ping_interval (its probe finds stalls)."""
    session = open_session("private")
    session.set_streaming(0.0, streaming=True)
    pings = []
    now = 0.0
    while now < PING + 1:
        now = round(now + 0.25, 10)
        session.frame_received(now)
        pings += [now for a in session.poll(now) if isinstance(a, SendPing)]
    assert pings == [PING]


# --- closes and reconnects --------------------------------------------------------------------


def test_abrupt_close_reconnects_within_100_ms_after_a_healthy_session() -> None:
    """A session open for longer than reset_after retries within 100 ms when it drops."""
    session = open_session()
    for n in range(1, 5):  # a few short-lived sessions first, to grow the backoff
        session.closed(n * 1.0, code=1006)
        now = session.next_deadline(n * 1.0) or math.inf
        session.poll(now)
        session.poll(now)
        session.connected(now)
    assert session.backoff.attempt > 0
    session.frame_received(100.0)
    session.closed(100.0, code=1006)
    wait = session.poll(100.0)[-1]
    assert isinstance(wait, WaitBackoff)
    assert wait.delay <= 0.1


def test_short_sessions_escalate_the_backoff() -> None:
    """Sessions that drop right after opening back off further each time."""
    session = open_session()
    delays = []
    now = 0.0
    for _ in range(6):
        session.closed(now + 0.5, code=1006)
        wait = session.poll(now + 0.5)[-1]
        assert isinstance(wait, WaitBackoff)
        delays.append(wait.delay)
        now = wait.until
        session.poll(now)
        session.connected(now)
    assert delays[-1] > 1.0
    assert delays[0] <= 0.1


def flap(session: Session, now: float, *, proof: str) -> tuple[float, WaitBackoff]:
    """Run one socket of a flapping network: request sent, ``proof``, then an abrupt drop."""
    session.request_sent(now)
    if proof == "data":
        session.data_received(now + 0.01)
        session.frame_received(now + 0.01)
    elif proof == "pong":
        session.pong_received(now + 0.01)
    elif proof == "error":
        session.frame_received(now + 0.01)  # an error frame: proof of life, not of the path
    session.closed(now + 0.5, code=1006)
    wait = session.poll(now + 0.5)[-1]
    assert isinstance(wait, WaitBackoff)
    session.poll(wait.until)
    session.connected(wait.until)
    return wait.until, wait


@pytest.mark.parametrize("proof", ["data", "pong"])
def test_a_socket_that_proved_the_path_restarts_the_backoff(proof: str) -> None:
    """Issue #9: a socket that got its request answered (data, or a pong) resets the backoff."""
    session = open_session()
    now = 0.0
    for _ in range(10):
        now, wait = flap(session, now, proof=proof)
        assert wait.delay <= DEFAULTS.backoff.first_delay
        assert session.statistics(now).backoff_step == 1


@pytest.mark.parametrize("proof", ["none", "error", "request_only"])
def test_sockets_that_prove_nothing_escalate(proof: str) -> None:
    """A socket closed before data, after an error frame, or after its request only escalates."""
    session = open_session()
    now = 0.0
    delays = []
    for _ in range(6):
        now, wait = flap(session, now, proof=proof)
        delays.append(wait.delay)
    assert delays[-1] > 1.0
    assert session.statistics(now).backoff_step == 6


def test_a_quiet_socket_pings_right_after_its_request_so_a_quick_drop_stays_proved() -> None:
    """A socket that does not stream proves the path only by a pong after its request: the
    ping goes out with the request, not at the next quiet interval, so a private socket that
    drops 0.2 s after its request (well before QUIET) has proved it and restarts at step 1.
    """
    session = open_session("private")
    now = 0.0
    for _ in range(6):
        session.request_sent(now + 0.01)
        assert session.poll(now + 0.01) == [SendPing("proof")]
        session.pong_received(now + 0.02)
        assert session.proved
        session.closed(now + 0.2, code=1006)
        wait = session.poll(now + 0.2)[-1]
        assert isinstance(wait, WaitBackoff)
        assert wait.delay <= DEFAULTS.backoff.first_delay
        assert session.statistics(wait.until).backoff_step == 1
        now = wait.until
        session.poll(now)
        session.connected(now)


def test_a_streaming_socket_sends_no_proof_ping_and_one_ping_in_flight_is_enough() -> None:
    """Data proves a streaming socket (its first request pings only to measure a round trip,
    tests/core/test_hedge.py); a quiet one with a ping already out sends no second."""
    session = open_session()
    session.set_streaming(0.0, streaming=True)
    session.request_sent(0.01)
    assert session.poll(0.01) == [SendPing("proof")]  # no round trip known yet
    session.data_received(0.02)
    session.pong_received(0.03)
    session.request_sent(0.04)
    assert session.poll(0.04) == []
    quiet = open_session("private")
    assert quiet.poll(QUIET) == [SendPing("interval")]
    quiet.request_sent(QUIET + 0.01)
    assert quiet.poll(QUIET + 0.01) == []
    quiet.pong_received(QUIET + 0.02)
    assert quiet.proved


def test_data_before_any_request_proves_nothing() -> None:
    """data_received without request_sent (nothing asked) does not prove the path."""
    session = open_session()
    session.data_received(0.1)
    assert not session.proved
    session.request_sent(0.2)
    assert not session.proved
    session.data_received(0.3)
    assert session.proved
    assert session.statistics(0.3).proved


def test_proof_belongs_to_one_socket() -> None:
    """The next socket starts unproved: its own drop before data takes the second step."""
    session = open_session()
    now, _ = flap(session, 0.0, proof="data")
    assert not session.proved
    now, wait = flap(session, now, proof="none")
    assert session.statistics(now).backoff_step == 2
    assert wait.delay > DEFAULTS.backoff.first_delay * (1 - DEFAULTS.backoff.jitter)


def test_a_proved_socket_after_a_429_starts_over_but_429_keeps_its_floor() -> None:
    """429 waits its floor; a socket that then proves the path restarts from the first step."""
    session = open_session()
    session.closed(0.5, error=RateLimitedError(429))
    wait = session.poll(0.5)[-1]
    assert isinstance(wait, WaitBackoff)
    assert wait.delay >= DEFAULTS.backoff.rate_limited_floor
    session.poll(wait.until)
    session.connected(wait.until)
    _, wait = flap(session, wait.until, proof="data")
    assert wait.delay <= DEFAULTS.backoff.first_delay


def test_close_code_defaults_to_abnormal_closure() -> None:
    """A close without a code is reported as 1006 in the reason."""
    session = open_session()
    session.closed(1.0)
    assert (
        session.take_events()[-1].reason
        == "ConnectionClosedError: connection closed with code 1006"
    )


def test_rate_limited_close_waits_the_floor() -> None:
    """A 429 backs off at least the rate-limited floor."""
    session = open_session()
    session.closed(1.0, error=RateLimitedError(429))
    wait = session.poll(1.0)[-1]
    assert isinstance(wait, WaitBackoff)
    assert wait.backoff == "rate_limited"
    assert wait.delay >= DEFAULTS.backoff.rate_limited_floor


def test_blocked_connect_waits_out_the_block() -> None:
    """A 418 with Retry-After waits exactly that long before the next connect."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.1, RateLimitedError(418, retry_after=90.0))
    wait = session.poll(0.1)[-1]
    assert isinstance(wait, WaitBackoff)
    assert (wait.delay, wait.backoff) == (90.0, "blocked")
    assert session.next_deadline(0.1) == pytest.approx(90.1)
    assert session.poll(90.0) == []
    assert kinds(session.poll(90.1)) == [Connect]


def test_rejected_request_is_flagged_for_the_shell() -> None:
    """An error frame then close reconnects, and last_decision says the request was rejected."""
    session = open_session()
    session.closed(1.0, error=ServerRejectedError("WRONG_FORMAT", "Format 이 맞지 않습니다."))
    assert session.state == "reconnecting"
    decision = session.last_decision
    assert decision is not None and decision.request_rejected


def test_late_close_after_declared_dead_is_ignored() -> None:
    """The aborted socket's own close report does not disturb the planned reconnect."""
    session = open_session()
    session.poll(1.0)
    session.poll(1.0 + PONG)
    deadline = session.next_deadline(1.0 + PONG)
    session.closed(1.0 + PONG + 0.01, code=1006)
    assert session.state == "reconnecting"
    assert session.next_deadline(1.0 + PONG + 0.01) == deadline


def test_attempt_counts_from_one_after_each_open() -> None:
    """Events carry the attempt: it restarts at 1 for the first connect after an open."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.0, ConnectionRefusedError())
    now = session.next_deadline(0.0) or math.inf
    session.poll(now)
    session.connected(now)
    session.closed(now + 20, code=1006)
    later = session.next_deadline(now + 20) or math.inf
    session.poll(later)
    events = session.take_events()
    assert [(e.new, e.attempt) for e in events] == [
        ("connecting", 1),
        ("reconnecting", 1),
        ("connecting", 2),
        ("open", 2),
        ("reconnecting", 2),
        ("connecting", 1),
    ]


# --- API key --------------------------------------------------------------------------------


def test_auth_failure_suspends_with_a_slow_fallback_retry() -> None:
    """A refused key suspends the private connection; a retry still comes after ~60 s."""
    session = new_session("private")
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.2, AuthError("refused", status=401))
    assert session.state == "suspended"
    assert kinds(session.poll(0.2)) == [WaitBackoff]
    deadline = session.next_deadline(0.2)
    assert deadline is not None and 30.0 <= deadline - 0.2 <= 60.0
    assert kinds(session.poll(deadline)) == [Connect]


def test_key_valid_reopens_at_once() -> None:
    """When the key-health loop says the key works, a suspended session connects now."""
    session = new_session("private")
    session.start(0.0)
    session.poll(0.0)
    session.connect_failed(0.2, AuthError("refused"))
    session.key_valid(5.0)
    assert session.state == "connecting"
    assert kinds(session.poll(5.0)) == [Connect]


def test_key_valid_outside_suspended_is_ignored() -> None:
    """key_valid on an open session changes nothing."""
    session = open_session("private")
    session.key_valid(1.0)
    assert session.state == "open"
    assert session.poll(1.0) == []


def test_key_invalid_closes_an_open_private_connection_gracefully() -> None:
    """A key found invalid closes the socket with a close frame and suspends."""
    session = open_session("private")
    session.key_invalid(3.0, reason="invalid_access_key")
    actions = session.poll(3.0)
    assert kinds(actions) == [CloseSocket, WaitBackoff]
    assert actions[0] == CloseSocket("invalid_access_key", DEFAULTS.timeouts.close)
    assert session.state == "suspended"


def test_key_invalid_before_the_connect_was_handed_out_sends_no_abort() -> None:
    """A Connect not yet returned by poll is withdrawn instead of aborted."""
    session = new_session("private")
    session.start(0.0)
    session.key_invalid(0.0)
    assert kinds(session.poll(0.0)) == [WaitBackoff]


def test_key_invalid_during_a_connect_aborts_it() -> None:
    """A connect in progress is aborted when the key is found invalid."""
    session = new_session("private")
    session.start(0.0)
    session.poll(0.0)
    session.key_invalid(0.3)
    assert kinds(session.poll(0.3)) == [DeclareDead, WaitBackoff]


def test_key_invalid_when_idle_is_ignored() -> None:
    """A key problem before start() does not start anything."""
    session = new_session("private")
    session.key_invalid(0.0)
    assert session.state == "idle"


# --- user close -----------------------------------------------------------------------------


def test_close_from_open_closes_gracefully_and_stays_closed() -> None:
    """close() sends one graceful close; afterwards every input is ignored."""
    session = open_session()
    session.close(1.0)
    assert session.poll(1.0) == [CloseSocket("closed by the user", DEFAULTS.timeouts.close)]
    assert session.state == "closed"
    session.start(2.0)
    session.connected(2.0)
    session.frame_received(2.0)
    session.closed(2.0, code=1006)
    session.key_valid(2.0)
    assert session.state == "closed"
    assert session.poll(100.0) == []
    assert session.next_deadline(100.0) is None


def test_close_during_connect_aborts() -> None:
    """close() while a connect is in progress aborts it."""
    session = new_session()
    session.start(0.0)
    session.poll(0.0)
    session.close(0.5)
    assert session.poll(0.5) == [DeclareDead("closed by the user")]


def test_close_while_waiting_drops_the_retry() -> None:
    """close() during backoff leaves nothing to do."""
    session = open_session()
    session.closed(1.0, code=1006)
    session.close(1.0)
    assert session.poll(1.0) == []


def test_close_when_idle_just_closes() -> None:
    """close() before start() goes straight to closed with no socket to touch."""
    session = new_session()
    session.close(0.0)
    assert session.state == "closed"
    assert session.poll(0.0) == []
    assert states(session.take_events()) == [("idle", "closed")]


# --- views ----------------------------------------------------------------------------------


def test_statistics_snapshot() -> None:
    """Statistics count connects, opens, pings, pongs and report uptime."""
    session = open_session(at=1.0)
    session.poll(2.0)
    session.pong_received(2.1)
    stats = session.statistics(5.0)
    assert (stats.state, stats.connects, stats.opens, stats.pings_sent, stats.pongs_received) == (
        "open",
        1,
        1,
        1,
        1,
    )
    assert stats.uptime == 4.0
    session.closed(6.0, code=1006)
    stats = session.statistics(6.0)
    assert (stats.failures, stats.uptime) == (1, 0.0)


def test_statistics_report_state_age_last_frame_age_and_failures_by_cause() -> None:
    """State age, the age of the last frame or pong, and failures counted by their cause."""
    session = open_session(at=1.0)
    session.frame_received(1.5)
    stats = session.statistics(2.0)
    assert (stats.state_age, stats.last_frame_age, dict(stats.failures_by_cause)) == (
        1.0,
        0.5,
        {},
    )
    session.closed(3.0, code=1006)
    session.poll(3.0)
    stats = session.statistics(3.5)
    assert (stats.state, stats.state_age, stats.last_frame_age) == ("reconnecting", 0.5, None)
    assert stats.failures_by_cause == {"closed": 1}
    session.connect_failed(4.0, TimeoutError("connect timed out"))  # not connecting: ignored
    assert session.statistics(4.0).failures_by_cause == {"closed": 1}
    session.poll(10.0)  # the backoff elapsed: connecting again
    session.connect_failed(10.0, TimeoutError("connect timed out"))
    assert session.statistics(10.0).failures_by_cause == {"closed": 1, "timeout": 1}
    session.key_invalid(11.0)
    assert session.statistics(11.0).failures == sum(
        session.statistics(11.0).failures_by_cause.values()
    )


def test_time_never_runs_backwards() -> None:
    """A smaller now than seen before is treated as the latest time."""
    session = open_session(at=10.0)
    session.frame_received(5.0)
    assert session.next_deadline(5.0) == 10.0 + SILENCE


def test_events_are_drained() -> None:
    """take_events() returns each event once."""
    session = new_session()
    session.start(0.0)
    assert len(session.take_events()) == 1
    assert session.take_events() == []


def test_event_backlog_is_bounded() -> None:
    """Undrained state changes are capped; the overflow is counted, not kept."""
    session = new_session("private")
    session.start(0.0)
    now = 0.0
    for _ in range(EVENT_BACKLOG):
        session.poll(now)
        session.connect_failed(now, ConnectionRefusedError())
        now = session.next_deadline(now) or math.inf
        session.poll(now)
    events = session.take_events()
    assert len(events) == EVENT_BACKLOG
    assert events[-1].new == session.state
    assert session.statistics(now).events_dropped == EVENT_BACKLOG + 1


def test_unknown_connection_kind_is_refused() -> None:
    """Only public and private connections exist."""
    with pytest.raises(InvalidInputError, match="'public' or 'private'"):
        Session("info")  # type: ignore[arg-type]


def test_repr_shows_state() -> None:
    """The repr names connection, state, attempt and streaming."""
    session = new_session("private")
    assert repr(session) == (
        "Session(connection='private', state='idle', attempt=0, streaming=False)"
    )


def test_custom_backoff_config_is_used() -> None:
    """The session takes its retry schedule from the config it is given."""
    config = ConnectionConfig(keepalive=CLASSIC, backoff=BackoffConfig(first_delay=1.0, jitter=0.0))
    session = open_session(config=config)
    session.closed(0.5, code=1006)
    wait = session.poll(0.5)[-1]
    assert isinstance(wait, WaitBackoff)
    assert wait.delay == 1.0


def test_connection_closed_error_as_error_argument() -> None:
    """The shell may pass the closing exception instead of a code."""
    session = open_session()
    session.closed(1.0, error=ConnectionClosedError(1000, "bye"))
    assert session.take_events()[-1].reason.endswith("code 1000: bye")


# --- internal errors of the shell ---------------------------------------------------------------


def test_internal_error_drops_the_socket_and_retries_on_the_backoff() -> None:
    """A shell bug on an open connection: reconnecting on the ordinary backoff, never closed."""
    session = open_session()
    session.internal_error(1.0, reason="internal error: ValueError: boom")
    assert session.state == "reconnecting"
    decision = session.last_decision
    assert decision is not None and decision.cause == "bug" and decision.retry
    actions = session.poll(1.0)
    assert kinds(actions) == [WaitBackoff]  # the shell already let the socket go
    event = session.take_events()[-1]
    assert (event.old, event.new) == ("open", "reconnecting")
    assert event.reason == "internal error: ValueError: boom"


def test_repeated_internal_errors_grow_the_backoff() -> None:
    """A bug that comes back at every attempt waits longer each time (no busy loop)."""
    session = open_session()
    delays = []
    now = 0.0
    for _ in range(5):
        session.internal_error(now, reason="bug")
        wait = session.poll(now)[-1]
        assert isinstance(wait, WaitBackoff)
        delays.append(wait.delay)
        now = wait.until
        assert kinds(session.poll(now)) == [Connect]
    assert delays == sorted(delays) and delays[-1] > 4 * delays[0]


def test_internal_error_while_connecting_drops_an_unsent_connect() -> None:
    """A bug before the Connect was handed out leaves no Connect behind, only the wait."""
    session = new_session()
    session.start(0.0)
    session.internal_error(0.0, reason="bug")
    assert session.state == "reconnecting"
    assert kinds(session.poll(0.0)) == [WaitBackoff]


def test_internal_error_leaves_suspended_idle_and_closed_alone() -> None:
    """A refused key stays suspended; an idle or closed session ignores the report."""
    idle = new_session()
    idle.internal_error(0.0, reason="bug")
    assert idle.state == "idle"
    suspended = open_session("private")
    suspended.key_invalid(1.0)
    suspended.internal_error(1.0, reason="bug")
    assert suspended.state == "suspended"
    closed = open_session()
    closed.close(1.0)
    closed.internal_error(1.0, reason="bug")
    assert closed.state == "closed"


# --- property-based: random input sequences ---------------------------------------------------

FAILURES: list[BaseException] = [
    ConnectionRefusedError(),
    ConnectionResetError(),
    TimeoutError(),
    RateLimitedError(429),
    RateLimitedError(418),
    RateLimitedError(418, retry_after=30.0),
    AuthError("refused"),
    ServerRejectedError("WRONG_FORMAT", "bad"),
    ConnectionClosedError(1000),
]
FATAL: list[BaseException] = [ValueError("bug"), KeyboardInterrupt()]
ALL_STATES = {"idle", "connecting", "open", "degraded", "reconnecting", "suspended", "closed"}


class SessionMachine(RuleBasedStateMachine):
    """Drive a session with any sequence of inputs, time steps and polls."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.session: Session | None = None
        self.started = False
        self.ended = False  # closed by the user or by a fatal error
        self.last_state = "idle"

    @initialize(kind=st.sampled_from(["public", "private"]), seed=st.integers(0, 2**32 - 1))
    def create(self, kind: str, seed: int) -> None:
        self.session = Session(kind, rng=random.Random(seed))  # type: ignore[arg-type]
        if seed % 2:  # half the runs begin with an open connection
            self.start()
            self.poll()
            self.s.connected(self.now)

    @property
    def s(self) -> Session:
        assert self.session is not None
        return self.session

    # time

    @rule(dt=st.one_of(st.floats(0.0, 2.0), st.floats(0.0, 90.0)))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule(succeed=st.booleans())
    def shell_step(self, succeed: bool) -> None:
        """Act like the shell: sleep to the deadline, poll, and answer a Connect."""
        self.advance_to_deadline_and_poll()
        if self.s.state == "connecting":
            self.now += 0.01
            if succeed:
                self.s.connected(self.now)
            else:
                self.s.connect_failed(self.now, ConnectionRefusedError())

    @rule(answer=st.sampled_from(["pong", "frame", "nothing"]), delay=st.floats(0.0, 2.0))
    def keepalive_round(self, answer: str, delay: float) -> None:
        """Sleep to the next timer, poll, and answer a ping with a pong, a frame or nothing."""
        deadline = self.s.next_deadline(self.now)
        if deadline is not None:
            self.now = max(self.now, deadline)
        pinged = any(isinstance(a, SendPing) for a in self.s.poll(self.now))
        if pinged and answer != "nothing":
            self.now += delay
            if answer == "pong":
                self.s.pong_received(self.now)
            else:
                self.s.frame_received(self.now)

    @rule(frames=st.integers(1, 30), step=st.floats(0.01, 0.5))
    def stream(self, frames: int, step: float) -> None:
        """Deliver data frames at a steady pace, polling as the shell would."""
        for _ in range(frames):
            self.now += step
            self.s.frame_received(self.now)
            self.poll()

    @rule()
    def advance_to_deadline_and_poll(self) -> None:
        deadline = self.s.next_deadline(self.now)
        if deadline is not None:
            self.now = max(self.now, deadline)
        self.poll()

    @rule()
    def poll(self) -> None:
        actions = self.s.poll(self.now)
        state = self.s.state
        if any(isinstance(a, DeclareDead) for a in actions):
            # A dead socket is always followed by a plan: a retry timer, or a closed session.
            assert state == "closed" or self.s.next_deadline(self.now) is not None
            assert state in {"reconnecting", "suspended", "connecting", "closed"}
        if self.ended:
            assert not any(isinstance(a, Connect | SendPing | WaitBackoff) for a in actions)
        for action in actions:
            if isinstance(action, Connect):
                assert 1.0 <= action.timeout <= 5.0
                assert action.attempt >= 1
            if isinstance(action, WaitBackoff):
                assert action.delay >= 0.0
            if isinstance(action, Resubscribe):
                assert self.s.streaming and self.s.state in {"open", "degraded"}
            if isinstance(action, ProbeNetwork):
                assert self.s.state == "reconnecting" and not self.ended
                assert action.timeout == DEFAULTS.backoff.network_probe

    # inputs

    @rule()
    def start(self) -> None:
        self.s.start(self.now)
        self.started = True

    @rule()
    def connected(self) -> None:
        self.s.connected(self.now)

    @rule(error=st.sampled_from(FAILURES))
    def connect_failed(self, error: BaseException) -> None:
        self.s.connect_failed(self.now, error)

    @rule(error=st.sampled_from(FATAL))
    def connect_failed_fatally(self, error: BaseException) -> None:
        was = self.s.state
        self.s.connect_failed(self.now, error)
        if self.s.state == "closed":
            self.ended = True
        else:  # ignored: the Connect had not been handed out, or no connect was running
            assert self.s.state == was

    @rule()
    def frame(self) -> None:
        self.s.frame_received(self.now)

    @rule()
    def pong(self) -> None:
        self.s.pong_received(self.now)

    @rule()
    def request_sent(self) -> None:
        self.s.request_sent(self.now)

    @rule()
    def data_received(self) -> None:
        self.s.data_received(self.now)

    @rule(code=st.sampled_from([None, 1006]))
    def proved_socket_drops(self, code: int | None) -> None:
        """A socket that proved the path drops: the retry is drawn from the first range."""
        if self.s.state not in {"open", "degraded"}:
            return
        self.s.request_sent(self.now)
        self.s.data_received(self.now)
        assert self.s.proved
        self.s.closed(self.now, code=code)
        stats = self.s.statistics(self.now)
        assert stats.backoff_step == 1
        assert stats.last_retry_delay is not None
        assert stats.last_retry_delay <= DEFAULTS.backoff.first_delay

    @rule(code=st.sampled_from([None, 1000, 1006, 1011]))
    def closed_with_code(self, code: int | None) -> None:
        self.s.closed(self.now, code=code)

    @rule(error=st.sampled_from(FAILURES))
    def closed_with_error(self, error: BaseException) -> None:
        self.s.closed(self.now, error=error)

    @rule(streaming=st.booleans())
    def set_streaming(self, streaming: bool) -> None:
        self.s.set_streaming(self.now, streaming=streaming)

    @rule()
    def key_invalid(self) -> None:
        self.s.key_invalid(self.now)

    @rule()
    def key_valid(self) -> None:
        self.s.key_valid(self.now)

    @rule()
    def internal_error(self) -> None:
        self.s.internal_error(self.now, reason="bug in the shell")

    @rule(reachable=st.booleans(), delay=st.floats(0.0, 1.0))
    def network_probed(self, reachable: bool, delay: float) -> None:
        """Answer a network probe (the shell's TCP connect) after ``delay``, or a late one."""
        self.now += delay
        self.s.network_probed(self.now, reachable=reachable)

    @rule()
    def close(self) -> None:
        self.s.close(self.now)
        self.ended = True

    # invariants

    @invariant()
    def state_is_defined(self) -> None:
        if self.session is not None:
            assert self.s.state in ALL_STATES

    @invariant()
    def deadline_while_running(self) -> None:
        if self.session is None:
            return
        deadline = self.s.next_deadline(self.now)
        if self.s.state in {"idle", "closed"}:
            assert deadline is None or self.s.state == "closed"
        else:
            assert deadline is not None and math.isfinite(deadline)

    @invariant()
    def closed_is_terminal(self) -> None:
        if self.session is None:
            return
        if self.ended:
            assert self.s.state == "closed"
            assert self.s.next_deadline(self.now) in (None, self.now)  # at most the close action

    @invariant()
    def every_failure_has_a_cause(self) -> None:
        if self.session is not None:
            stats = self.s.statistics(self.now)
            assert sum(stats.failures_by_cause.values()) == stats.failures
            assert stats.state_age >= 0 and (stats.last_frame_age or 0.0) >= 0

    @invariant()
    def outage_figures_follow_the_state(self) -> None:
        if self.session is None:
            return
        stats = self.s.statistics(self.now)
        state = self.s.state
        if state in {"open", "degraded", "idle"}:
            assert stats.down_age is None
        else:
            assert stats.down_age is not None and stats.down_age >= stats.state_age - 1e-9
        assert (stats.retry_in is not None) == (state in {"reconnecting", "suspended"})
        assert stats.retry_in is None or stats.retry_in >= 0.0
        assert not stats.network_watch or state == "reconnecting"
        assert stats.network_returns <= stats.network_probes

    @invariant()
    def proof_needs_a_live_socket(self) -> None:
        if self.session is not None and self.s.proved:
            assert self.s.state in {"open", "degraded"}

    @invariant()
    def never_gives_up(self) -> None:
        if self.session is not None and self.started and not self.ended:
            assert self.s.state != "closed"

    @invariant()
    def open_always_has_a_ping_scheduled(self) -> None:
        if self.session is None or self.s.state not in {"open", "degraded"}:
            return
        deadline = self.s.next_deadline(self.now)
        assert deadline is not None
        assert deadline <= self.now + (PING if self.s.streaming else QUIET)
        if self.s.state == "degraded":
            # While a hedge's spare is on its way the old socket waits for it, up to the
            # spare's connect timeout and a pong deadline after that.
            hedging = self.s.statistics(self.now).hedging
            assert deadline <= self.now + PONG + (self.s.connect_timeout if hedging else 0.0)

    @invariant()
    def events_chain_up(self) -> None:
        if self.session is None:
            return
        for event in self.s.take_events():
            assert event.old == self.last_state
            assert event.new != event.old
            assert event.at <= self.now
            self.last_state = event.new
        assert self.last_state == self.s.state


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
