"""The session's hedge and adaptive suspicion (issue 9), driven by explicit times (no clock)."""

from __future__ import annotations

import random

import pytest

from upbit_ws.core.config import ConnectionConfig, KeepaliveConfig
from upbit_ws.core.errors import AuthError, ConfigError, ConnectionClosedError, RateLimitedError
from upbit_ws.core.session import (
    FALSE_ALARM_MEMORY,
    Action,
    CancelHedge,
    CloseSocket,
    Connect,
    DeclareDead,
    Hedge,
    SendPing,
    Session,
    WaitBackoff,
)

DEFAULTS = KeepaliveConfig()


def open_session(kind: str = "public", *, keepalive: KeepaliveConfig = DEFAULTS) -> Session:
    """Return a session connected at 0 with its actions and events drained."""
    session = Session(kind, config=ConnectionConfig(keepalive=keepalive), rng=random.Random(0))  # type: ignore[arg-type]
    session.start(0.0)
    assert session.poll(0.0) == [Connect(timeout=1.0, attempt=1)]
    session.connected(0.0)
    session.take_events()
    return session


def kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def flow(session: Session, *, every: float, until: float, start: float = 0.0) -> float:
    """Feed a frame every ``every`` seconds from ``start`` to ``until``; return the last time."""
    now = start
    while now + every <= until + 1e-9:
        now = round(now + every, 9)
        session.frame_received(now)
        assert session.poll(now) == []
    return now


def run_until_action(session: Session, now: float, limit: float) -> tuple[float, list[Action]]:
    """Poll at each deadline until the session asks for something; return when and what."""
    while now < limit:
        due = session.next_deadline(now)
        assert due is not None
        now = max(now, due)
        actions = session.poll(now)
        if actions:
            return now, actions
    raise AssertionError(f"nothing asked for by {limit}")


def open_measured() -> Session:
    """Return :func:`open_session` with its first request sent and a 1 ms round trip measured
    by the ping that goes with it."""
    session = open_session()
    session.request_sent(0.0)
    assert session.poll(0.0) == [SendPing("proof")]
    session.pong_received(0.001)
    return session


def reconnected(session: Session, last: float) -> float:
    """Drop the socket at ``last``, wait out the backoff, connect and send the request; return
    when (the new socket has no frame yet)."""
    session.closed(last, code=1006)
    at, actions = run_until_action(session, last, last + 5.0)
    assert kinds(actions) == [WaitBackoff]
    at, actions = run_until_action(session, at, at + 5.0)
    assert kinds(actions) == [Connect]
    session.connected(at)
    session.request_sent(at)
    return at


# --- adaptive silence threshold ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "until", "threshold"),
    [(0.01, 1.0, DEFAULTS.silence_floor), (0.3, 9.0, DEFAULTS.silence_probe)],
)
def test_a_busy_stream_is_suspected_with_a_spare_at_its_threshold(
    every: float, until: float, threshold: float
) -> None:
    """100 frames/s then silence: a probe and a spare at last + 0.25 s (floor), not + 1 s.

    Frames every 0.3 s: the threshold (4 x 0.3 s) is cut to the 1 s ceiling, but a 1 s
    silence is still news (three times the p99 gap is 0.9 s; with an exponential tail a gap
    that long is one in ~5 million): probe and spare at once, as for the busiest stream.
    """
    session = open_session()
    last = flow(session, every=every, until=until)
    assert session.statistics(last).silence_threshold == threshold
    at, actions = run_until_action(session, last, last + 2.0)
    assert at == pytest.approx(last + threshold)
    assert kinds(actions) == [SendPing, Hedge]
    assert session.state == "degraded"
    (event,) = session.take_events()
    assert "hedge" in event.reason
    assert session.statistics(at).hedging


def test_the_threshold_follows_the_p99_gap_up_to_the_ceiling() -> None:
    """Frames every 0.1 s: 4 x 0.1 = 0.4 s; every 0.3 s: 1.2 s, capped at silence_probe (1 s)."""
    session = open_session()
    last = flow(session, every=0.1, until=3.0)
    assert session.statistics(last).silence_threshold == pytest.approx(0.4)
    slow = open_session()
    last = flow(slow, every=0.3, until=9.0)
    assert slow.statistics(last).silence_threshold == DEFAULTS.silence_probe


def test_too_few_reads_keep_the_ceiling() -> None:
    """Fewer than 16 reads seen: the threshold is silence_probe (nothing to adapt from)."""
    session = open_session()
    last = flow(session, every=0.01, until=0.1)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_probe


def test_one_outlier_gap_does_not_raise_the_threshold() -> None:
    """p99 of 64 gaps is the second largest: one 0.9 s pause among 10 ms gaps is ignored."""
    session = open_session()
    last = flow(session, every=0.01, until=0.5)
    session.frame_received(last + 0.2)  # one long gap, answered by data before the floor
    last = flow(session, every=0.01, until=last + 0.5, start=last + 0.2)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_floor


def test_a_stream_known_quiet_hedges_only_when_its_probe_goes_unanswered() -> None:
    """A probe answered by a pong marks the stream quiet: the next probe opens no spare at
    once, only once its ping outlives the suspicion deadline."""
    session = open_session()
    last = flow(session, every=0.01, until=1.0)
    at, actions = run_until_action(session, last, last + 2.0)
    assert kinds(actions) == [SendPing, Hedge]
    session.pong_received(at + 0.01)
    assert session.poll(at + 0.01) == [CancelHedge("the old socket answered the ping first")]
    assert session.state == "open"
    at, actions = run_until_action(session, at + 0.01, at + 5.0)
    assert actions == [SendPing("silence")]  # no spare yet: the stream is known quiet
    suspicion = session.statistics(at).suspicion
    assert suspicion == DEFAULTS.suspicion_floor  # a 10 ms round trip: the floor
    at2, actions = run_until_action(session, at, at + 5.0)
    assert at2 == pytest.approx(at + suspicion)
    assert kinds(actions) == [Hedge]


def test_a_stream_whose_gaps_reach_the_ceiling_probes_without_a_spare() -> None:
    """Frames every 0.6 s: three times its p99 gap (1.8 s) is past the 1 s ceiling, so a 1 s
    silence is ordinary for it (a few trades a second: one every ~10 s, measured on the
    simulator, each a spare connect and a degraded spell before). The probe goes out at the
    ceiling quietly; an answered probe costs nothing; an unanswered one makes the socket
    degraded and hedges at its suspicion deadline. A busy stream (frames every 10 ms) still
    hedges at once (the test above).
    """
    session = open_session()
    last = flow(session, every=0.6, until=12.0)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_probe
    for _ in range(3):  # silences answered: no connect, and no degraded spell either
        at = answered_quiet_probe(session, last)
        last = flow(session, every=0.6, until=at + 1.5, start=at + 0.1)
    assert session.statistics(last).hedges == 0
    assert session.take_events() == []
    unanswered_probe_hedges(session, last)


def test_a_subscription_that_dropped_streams_learns_its_rate_again() -> None:
    """The read gaps of a busy stream describe it, not what is left when the subscription
    drops most of it (measured on the simulator: 200 tickers, then two coins; the next
    silences were judged news, 3 spares and 3 degraded spells in 15 s). After
    ``stream_narrowed`` a silence past the learned threshold is probed quietly until 16 reads
    of the new stream; then its own gaps judge it (here busy again: news, a spare at once).
    """
    session = open_measured()
    last = flow(session, every=0.01, until=1.0)
    threshold = session.statistics(last).silence_threshold
    assert threshold == DEFAULTS.silence_floor
    session.stream_narrowed(last)
    at, actions = run_until_action(session, last, last + 5.0)
    assert at == pytest.approx(last + threshold)  # still early: a blackhole is found soon
    assert actions == [SendPing("silence")]
    assert session.state == "open"
    session.pong_received(at + 0.01)
    assert session.poll(at + 0.01) == []
    last = flow(session, every=0.01, until=at + 0.15, start=at + 0.02)  # 14 reads
    at, actions = run_until_action(session, last, last + 5.0)
    assert actions == [SendPing("silence")]  # 15 reads since: still quiet
    session.pong_received(at + 0.01)
    assert session.poll(at + 0.01) == []
    assert session.take_events() == []
    last = flow(session, every=0.01, until=at + 0.5, start=at + 0.02)
    at, actions = run_until_action(session, last, last + 5.0)
    assert kinds(actions) == [SendPing, Hedge]
    assert at == pytest.approx(last + session.statistics(last).silence_threshold)


def answered_quiet_probe(session: Session, last: float) -> float:
    """Check that the silence after ``last`` is probed at the ceiling with the socket still
    open; answer the ping at once; return when the probe went out."""
    at, actions = run_until_action(session, last, last + 5.0)
    assert at == pytest.approx(last + DEFAULTS.silence_probe)
    assert actions == [SendPing("silence")]
    assert session.state == "open"
    session.pong_received(at + 0.01)
    assert session.poll(at + 0.01) == []
    return at


def unanswered_probe_hedges(session: Session, last: float) -> None:
    """Check that the silence after ``last`` is probed quietly and, its ping unanswered, makes
    the socket degraded and hedges at the suspicion deadline."""
    at, actions = run_until_action(session, last, last + 5.0)
    assert actions == [SendPing("silence")]
    suspected, actions = run_until_action(session, at, at + 5.0)  # this one goes unanswered
    assert kinds(actions) == [Hedge]
    assert suspected == pytest.approx(at + session.statistics(at).suspicion)
    (event,) = session.take_events()
    assert (event.old, event.new) == ("open", "degraded")
    assert event.reason.startswith("no pong within") and "hedge" in event.reason


def test_a_stream_whose_rate_is_not_known_yet_is_probed_quietly() -> None:
    """A sparse stream at the start of its life (a frame every 2 s: 16 gaps take half a
    minute; measured on the simulator, one quiet coin's trades flipped open -> degraded ->
    open 20 times in 100 s). Until its rate is known, each silence past the ceiling is probed
    with the socket still open: an answered probe costs nothing, an unanswered one makes the
    socket degraded and hedges at the suspicion deadline, as for an ordinary silence.
    """
    session = open_measured()
    last = flow(session, every=2.0, until=4.0)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_probe
    for _ in range(3):
        answered_quiet_probe(session, last)
        last = round(last + 2.0, 9)
        session.frame_received(last)
        assert session.poll(last) == []
    assert session.take_events() == []
    unanswered_probe_hedges(session, last)


def test_a_busy_stream_measures_the_round_trip_of_its_interval_pings() -> None:
    """Data between a ping and its pong (every ping of a busy stream) ends the ping's deadline
    but not its measure: the round trip is taken when the pong comes, so the suspicion
    deadline follows it (the floor here) instead of staying at pong_timeout, and a later
    unanswered probe hedges 0.25 s after it, not 1.5 s.
    """
    session = open_session()
    last = flow(session, every=0.01, until=1.0)
    assert session.statistics(last).suspicion == DEFAULTS.pong_timeout  # nothing measured yet
    now = last
    while True:  # frames flow until the interval ping
        now = round(now + 0.01, 9)
        session.frame_received(now)
        if session.poll(now):
            break
    assert now == pytest.approx(DEFAULTS.ping_interval, abs=0.011)
    for step in range(1, 5):  # data comes before the pong
        session.frame_received(round(now + 0.01 * step, 9))
    session.pong_received(now + 0.05)
    assert session.statistics(now + 0.05).suspicion == DEFAULTS.suspicion_floor


def test_a_streaming_socket_measures_a_round_trip_with_its_first_request() -> None:
    """No round trip known yet: the request goes out with a ping, whose pong (data may come
    first) sets the suspicion deadline at once; once one is known, a later socket's request
    goes out without one (the interval pings keep measuring).
    """
    session = open_session()
    assert session.statistics(0.0).suspicion == DEFAULTS.pong_timeout
    session.request_sent(0.01)
    assert session.poll(0.01) == [SendPing("proof")]
    session.frame_received(0.03)  # data first: the path is proved, the ping's deadline ends
    session.pong_received(0.05)
    assert session.statistics(0.05).suspicion == DEFAULTS.suspicion_floor
    last = flow(session, every=0.01, until=1.0, start=0.05)
    at = reconnected(session, last)
    assert session.poll(at) == []  # a round trip is known: no ping with this request


def test_a_false_silence_alarm_raises_the_threshold() -> None:
    """A silence answered by a pong after 0.3 s was a false alarm: one connect, then the
    threshold stays at 2 x 0.3 s even once data flows fast again, so it does not repeat."""
    session = open_session()
    last = flow(session, every=0.01, until=1.0)
    at, actions = run_until_action(session, last, last + 2.0)
    assert at == pytest.approx(last + 0.25) and Hedge in kinds(actions)
    session.pong_received(last + 0.3)
    assert kinds(session.poll(last + 0.3)) == [CancelHedge]
    last = flow(session, every=0.01, until=last + 1.3, start=last + 0.3)
    assert session.statistics(last).silence_threshold == pytest.approx(0.6)
    at, actions = run_until_action(session, last, last + 2.0)
    assert at == pytest.approx(last + 0.6) and Hedge in kinds(actions)
    assert session.statistics(at).hedges == 2


def test_a_false_alarm_raises_the_threshold_but_a_busy_stream_still_hedges_at_it() -> None:
    """A busy stream's 0.6 s silence answered (a false alarm): its threshold is 1 s (2 x 0.6,
    at the ceiling) from then on, but its silences stay news: the next one past 1 s opens a
    spare at once, not 0.25 s later after an unanswered probe.
    """
    session = open_measured()
    last = flow(session, every=0.01, until=1.0)
    at, actions = run_until_action(session, last, last + 2.0)
    assert Hedge in kinds(actions)
    session.pong_received(last + 0.6)
    assert kinds(session.poll(last + 0.6)) == [CancelHedge]
    last = flow(session, every=0.01, until=last + 1.6, start=last + 0.6)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_probe
    at, actions = run_until_action(session, last, last + 2.0)
    assert at == pytest.approx(last + DEFAULTS.silence_probe)
    assert kinds(actions) == [SendPing, Hedge]


def healthy(session: Session, *, start: float, until: float) -> float:
    """Feed a frame every 50 ms and answer each interval ping at once; return the last time."""
    now = start
    while now + 0.05 <= until:
        now = round(now + 0.05, 9)
        session.frame_received(now)
        actions = session.poll(now)
        if actions:
            assert actions == [SendPing("interval")]
            session.pong_received(now)
    return now


def test_what_a_false_alarm_taught_halves_every_ten_minutes_then_is_forgotten() -> None:
    """One hiccup must not slow the detection of real stalls for the process's life: the
    0.6 s learned from a 0.3 s false alarm is 0.3 s after FALSE_ALARM_MEMORY of healthy data
    and gone (the 0.25 s floor again) after twice that."""
    session = open_session()
    last = flow(session, every=0.01, until=1.0)
    _at, actions = run_until_action(session, last, last + 2.0)
    assert Hedge in kinds(actions)
    alarm = last + 0.3
    session.pong_received(alarm)
    session.poll(alarm)
    last = healthy(session, start=alarm, until=alarm + FALSE_ALARM_MEMORY - 1.0)
    assert session.statistics(last).silence_threshold == pytest.approx(0.6)
    last = healthy(session, start=last, until=alarm + FALSE_ALARM_MEMORY + 1.0)
    assert session.statistics(last).silence_threshold == pytest.approx(0.3)
    last = healthy(session, start=last, until=alarm + 2 * FALSE_ALARM_MEMORY + 1.0)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_floor
    at, actions = run_until_action(session, last, last + 2.0)
    assert at == pytest.approx(last + DEFAULTS.silence_floor) and Hedge in kinds(actions)


# --- the quiet (private) connection -------------------------------------------------------


def test_private_pings_every_quiet_interval_and_hedges_past_the_rtt_deadline() -> None:
    """Private: a ping every 0.5 s; before any pong no hedge; after pongs of 0.15 s the deadline
    is 2 x 0.15 = 0.3 s, so a blackhole is acted on within 0.5 + 0.3 s."""
    session = open_session("private")
    assert session.next_deadline(0.0) == DEFAULTS.quiet_ping_interval
    assert session.statistics(0.0).suspicion == DEFAULTS.pong_timeout  # no pong measured
    now = 0.0
    for _ in range(3):
        now, actions = run_until_action(session, now, now + 1.0)
        assert actions == [SendPing("interval")]
        now = round(now + 0.15, 9)
        session.pong_received(now)
        assert session.poll(now) == []
    assert session.statistics(now).suspicion == pytest.approx(0.3)
    ping_at, actions = run_until_action(session, now, now + 1.0)
    assert actions == [SendPing("interval")]
    at, actions = run_until_action(session, ping_at, ping_at + 2.0)
    assert at == pytest.approx(ping_at + 0.3)
    assert kinds(actions) == [Hedge]
    assert session.state == "degraded"
    assert at - now <= DEFAULTS.quiet_ping_interval + 0.3 + 1e-9


def test_a_slow_healthy_link_raises_the_deadline_by_itself() -> None:
    """Pongs taking 0.4 s: the deadline is min(1.5, 2 x 0.4) = 0.8 s, so no false hedge."""
    session = open_session("private")
    now = 0.0
    for _ in range(4):
        now, _actions = run_until_action(session, now, now + 1.0)
        now = round(now + 0.4, 9)
        session.pong_received(now)
        assert session.poll(now) == []
    assert session.statistics(now).suspicion == pytest.approx(0.8)
    assert session.statistics(now).hedges == 0


def test_a_pong_later_than_the_deadline_raises_it_for_good() -> None:
    """Round trips of 0.05 s, then one of 0.4 s: that hedge was a false alarm; the deadline
    becomes 2 x 0.4 s, so the next 0.4 s round trip opens no spare."""
    session = open_session("private")
    now = 0.0
    for _ in range(3):
        now, _actions = run_until_action(session, now, now + 1.0)
        now = round(now + 0.05, 9)
        session.pong_received(now)
        assert session.poll(now) == []
    ping_at, _actions = run_until_action(session, now, now + 1.0)
    at, actions = run_until_action(session, ping_at, ping_at + 2.0)
    assert at == pytest.approx(ping_at + 0.25) and kinds(actions) == [Hedge]
    session.pong_received(ping_at + 0.4)
    assert kinds(session.poll(ping_at + 0.4)) == [CancelHedge]
    assert session.statistics(ping_at + 0.4).suspicion == pytest.approx(0.8)
    ping_at, _actions = run_until_action(session, ping_at + 0.4, ping_at + 2.0)
    session.pong_received(ping_at + 0.4)
    assert session.poll(ping_at + 0.4) == []
    assert session.statistics(ping_at + 0.4).hedges == 1


def test_a_pong_before_the_first_one_was_measured_never_hedges() -> None:
    """No round trip measured yet: the suspicion deadline is the pong deadline (today's path)."""
    session = open_session("private")
    now, actions = run_until_action(session, 0.0, 1.0)
    assert actions == [SendPing("interval")]
    at, actions = run_until_action(session, now, now + 3.0)
    assert kinds(actions) == [DeclareDead, WaitBackoff]
    assert session.statistics(at).hedges == 0


# --- the hedge's outcomes -------------------------------------------------------------------


def suspected(kind: str = "public") -> tuple[Session, float]:
    """Return a busy public session whose silence just opened a spare, and the time."""
    session = open_session(kind)
    last = flow(session, every=0.01, until=1.0)
    at, actions = run_until_action(session, last, last + 2.0)
    assert Hedge in kinds(actions)
    session.take_events()
    return session, at


def test_a_hedge_that_wins_is_a_reconnect_that_overlapped() -> None:
    """hedge_switched: one failure (declared dead), one open, degraded -> open, saying so."""
    session, at = suspected()
    before = session.statistics(at)
    assert session.hedge_switched(at + 0.01)
    after = session.statistics(at + 0.01)
    assert after.failures == before.failures + 1
    assert after.declared_dead == before.declared_dead + 1
    assert after.opens == before.opens + 1 and after.proved
    assert after.hedges_won == 1 and not after.hedging
    assert after.failures_by_cause["timeout"] == 1
    (event,) = session.take_events()
    assert (event.old, event.new) == ("degraded", "open")
    assert event.reason.startswith("hedged") and "overlapped" in event.reason
    assert session.poll(at + 0.01) == []
    assert not session.hedge_switched(at + 0.02)  # no hedge under way any more


def test_the_old_socket_ending_hands_over_to_the_requested_spare_unproved() -> None:
    """hedge_adopted: the old socket reset during the hedge; the spare, open and requested,
    takes over like a reconnect's socket right after its request: one failure (the reset),
    one open, not proved, so a spare that then ends before any data escalates the backoff;
    one that delivers proves the path. A refusal or a key problem keeps the ordinary path.
    """
    session, at = suspected()
    before = session.statistics(at)
    reset = ConnectionClosedError(1006, "")
    assert session.hedge_adopted(at + 0.01, reset)
    after = session.statistics(at + 0.01)
    assert after.failures == before.failures + 1 and after.opens == before.opens + 1
    assert after.declared_dead == before.declared_dead  # it ended; nobody declared it dead
    assert after.hedges_won == 1 and not after.hedging and not after.proved
    (event,) = session.take_events()
    assert (event.old, event.new) == ("degraded", "open")
    assert "its spare took over" in event.reason
    assert session.poll(at + 0.01) == []
    assert not session.hedge_adopted(at + 0.02, reset)  # no hedge under way any more
    attempt = session.backoff.attempt
    session.closed(at + 0.05, code=1006)  # the spare ends before any data: not proved
    assert session.backoff.attempt == attempt + 1
    proving, at = suspected()
    assert proving.hedge_adopted(at + 0.01, reset)
    proving.data_received(at + 0.3)
    assert proving.statistics(at + 0.3).proved
    for refusal in (RateLimitedError(429), AuthError("key refused", status=401)):
        refused, at = suspected()
        assert not refused.hedge_adopted(at + 0.01, refusal)
        assert refused.statistics(at + 0.01).hedging


def test_data_on_the_old_socket_cancels_the_hedge() -> None:
    """A frame on the old socket first: CancelHedge, back to open, nothing else."""
    session, at = suspected()
    session.frame_received(at + 0.05)
    assert session.poll(at + 0.05) == [CancelHedge("data arrived on the old socket first")]
    assert session.state == "open"
    assert not session.hedge_switched(at + 0.06)
    assert session.statistics(at + 0.06).hedges_cancelled == 1


def test_a_failed_hedge_falls_back_to_the_pong_deadline_and_opens_no_second_spare() -> None:
    """hedge_failed: no second spare in this spell; the ping's deadline declares it dead."""
    session, at = suspected()
    session.hedge_failed(at + 0.01)
    assert session.statistics(at + 0.01).hedges_failed == 1
    now, actions = run_until_action(session, at + 0.01, at + 5.0)
    assert now == pytest.approx(at + DEFAULTS.pong_timeout)
    assert kinds(actions) == [DeclareDead, WaitBackoff]
    assert session.statistics(now).hedges == 1


def test_the_old_socket_waits_past_its_pong_deadline_for_a_spare_on_its_way() -> None:
    """A spare slower than the pong deadline (a long link: TLS connect, then a round trip)
    still takes over: declaring the old socket dead at its deadline would drop the spare and
    start a reconnect that can only come later."""
    session, at = suspected()
    assert session.poll(at + DEFAULTS.pong_timeout) == []
    assert session.state == "degraded" and session.statistics(at + 2.0).hedging
    assert session.hedge_switched(at + DEFAULTS.pong_timeout + 0.5)
    assert session.state == "open"
    assert session.statistics(at + 2.0).hedges_won == 1


def test_the_pong_deadline_during_a_hedge_drops_the_spare_too() -> None:
    """Neither socket proved itself by the time the spare's connect and a pong deadline may
    take: the spare is cancelled and the old socket declared dead, then retry."""
    session, at = suspected()
    now, actions = run_until_action(session, at, at + 5.0)
    assert now == pytest.approx(at + session.connect_timeout + DEFAULTS.pong_timeout)
    assert kinds(actions) == [DeclareDead, CancelHedge, WaitBackoff]
    assert "no proof from the spare" in actions[0].reason


def test_closing_during_a_hedge_drops_the_spare() -> None:
    """close(): the socket is closed and the spare cancelled; nothing is left to the shell."""
    session, at = suspected()
    session.close(at + 0.01)
    actions = session.poll(at + 0.01)
    assert kinds(actions) == [CloseSocket, CancelHedge]
    assert not session.hedge_switched(at + 0.02)


def test_hedge_off_or_not_allowed_opens_no_spare() -> None:
    """KeepaliveConfig(hedge=False), or a shell that cannot hedge: probes only, as before."""
    off = open_session(keepalive=KeepaliveConfig(hedge=False))
    unable = open_session()
    unable.allow_hedge(False)  # e.g. a listener that cannot give a spare its request
    for session in (off, unable):
        last = flow(session, every=0.01, until=1.0)
        _at, actions = run_until_action(session, last, last + 2.0)
        assert actions == [SendPing("silence")]


# --- config ----------------------------------------------------------------------------------


def test_new_keepalive_fields_are_validated_with_one_typed_error() -> None:
    """Bad values of every new field are listed together in one ConfigError."""
    with pytest.raises(ConfigError) as info:
        KeepaliveConfig(
            silence_floor=0.0,
            silence_gap_factor=0.5,
            silence_window=0,
            suspicion_floor=-1.0,
            suspicion_rtt_factor=float("nan"),
            rtt_window=2.5,  # type: ignore[arg-type]
            hedge="yes",  # type: ignore[arg-type]
        )
    assert set(info.value.problems) == {
        "keepalive.silence_floor must be > 0 s, got 0.0",
        "keepalive.suspicion_floor must be > 0 s, got -1.0",
        "keepalive.silence_gap_factor must be >= 1 (a factor), got 0.5",
        "keepalive.suspicion_rtt_factor must be a finite number, got nan",
        "keepalive.silence_window must be a whole number >= 1, got 0",
        "keepalive.rtt_window must be a whole number >= 1, got 2.5",
        "keepalive.hedge must be True or False, got 'yes'",
    }


def test_thresholds_are_clamped_between_floor_and_ceiling() -> None:
    """silence_threshold and suspicion stay within [floor, ceiling] whatever was measured."""
    k = KeepaliveConfig()
    assert k.silence_threshold(None) == k.silence_probe
    assert k.silence_threshold(0.001) == k.silence_floor
    assert k.silence_threshold(10.0) == k.silence_probe
    assert k.suspicion(None) == k.pong_timeout
    assert k.suspicion(0.001) == k.suspicion_floor
    assert k.suspicion(10.0) == k.pong_timeout


def test_a_new_socket_waits_the_ceiling_for_its_first_frame_then_the_learned_threshold() -> None:
    """Upbit starts a subscription 150-650 ms after its request (docs/protocol.md section 1.3).

    A busy stream learned a 0.25 s threshold; after a reconnect the new socket's first frame
    may come later than that: no probe until the ceiling (silence_probe, 1 s), and no spare
    with that probe (only once it goes unanswered past the suspicion deadline). Once frames
    flow on it, the learned threshold applies again, with a spare at once.
    """
    session = open_measured()
    last = flow(session, every=0.01, until=1.0)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_floor
    at = reconnected(session, last)
    session.take_events()
    probe, actions = run_until_action(session, at, at + 5.0)
    assert kinds(actions) == [SendPing]
    assert probe == pytest.approx(at + DEFAULTS.silence_probe)  # not at + 0.25 s
    assert session.state == "degraded"  # suspected, but the probe decides: no spare yet
    suspected, actions = run_until_action(session, probe, probe + 5.0)
    assert kinds(actions) == [Hedge]
    assert suspected == pytest.approx(probe + DEFAULTS.suspicion_floor)
    # The subscription started (0.6 s after the request): then the learned threshold again.
    fresh = open_measured()
    last = flow(fresh, every=0.01, until=1.0)
    at = reconnected(fresh, last)
    fresh.frame_received(at + 0.6)
    assert fresh.poll(at + 0.6) == []
    probe, actions = run_until_action(fresh, at + 0.6, at + 5.0)
    assert kinds(actions) == [SendPing, Hedge]
    assert probe == pytest.approx(at + 0.6 + DEFAULTS.silence_floor)


def test_the_wait_for_a_new_socket_s_first_frame_is_not_a_gap_of_the_stream() -> None:
    """Two reconnects whose first frame came 0.6 s after the open (Upbit starting the
    subscriptions) leave the learned threshold at the floor: that wait is not a gap between
    the stream's frames (counted, the two would be the window's p99 and lift it to 1 s).
    """
    session = open_measured()
    last = flow(session, every=0.01, until=1.0)
    for _ in range(2):
        at = reconnected(session, last)
        session.frame_received(at + 0.6)
        last = flow(session, every=0.01, until=at + 0.7, start=at + 0.6)
    assert session.statistics(last).silence_threshold == DEFAULTS.silence_floor
