"""Every knob and timing of the simulator, in one frozen, validated value.

Defaults follow Upbit as described in ``docs/protocol.md``; where the reference is
**[UNSURE]** the knob picks the most likely behaviour and the alternative stays one keyword
away. Tests of other components shrink the timings (idle timeout, status interval, error-close
delay, rate windows) so scenarios run in milliseconds instead of minutes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Final, Literal

from upbit_ws.core.errors import ConfigError

__all__ = [
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_SECRET_KEY",
    "AuthFailureMode",
    "BothFlagsMode",
    "ExcessAction",
    "FloodMix",
    "IdleMode",
    "NumberSpelling",
    "PrivateOnPublicMode",
    "PublicOnPrivateMode",
    "SequentialIds",
    "SimulatorConfig",
    "StatusStart",
]

#: The key pair every simulator accepts out of the box (``sim.credentials``).
DEFAULT_ACCESS_KEY: Final = "SIMACCESSKEY" + "0" * 28
# 64 bytes, so that HS512 signing with it raises no key-length warning in PyJWT.
DEFAULT_SECRET_KEY: Final = "SIMSECRETKEY" + "0" * 52

#: What happens when a connection exceeds 5 messages/s or 100/min (section 8.1, [UNSURE]).
ExcessAction = Literal["error_close", "drop", "ignore"]
#: How a bad private token is refused (section 5, [UNSURE]): HTTP 401 or INVALID_AUTH frame.
AuthFailureMode = Literal["handshake", "frame"]
#: What counts as activity for the idle kill (section 6): frames both ways, or only inbound.
IdleMode = Literal["both", "inbound"]
#: Private types on the public path (section 1.1: "serve private types only on /private").
PrivateOnPublicMode = Literal["invalid_auth", "unsupported_type", "ignore"]
#: Public types on the private path ([UNSURE]; the docs list only private types there).
PublicOnPrivateMode = Literal["unsupported_type", "serve"]
#: Both ``is_only_snapshot`` and ``is_only_realtime`` set (section 2.2, [UNSURE]).
BothFlagsMode = Literal["nothing", "snapshot", "realtime", "both"]
#: Number spelling in frames: Upbit's real mix (section 4, 15) or plain shortest floats.
NumberSpelling = Literal["upbit", "plain"]
#: When the ``{"status":"UP"}`` cycle a text ``PING`` starts sends its first frame (section 6):
#: on the server's next shared tick (measured 0.6-8.9 s after the PING, one cycle per socket),
#: or at once and again on every PING (what a client may hope; not what Upbit does).
StatusStart = Literal["tick", "immediate"]
#: Trade ``sequential_id`` order (sections 4.2, 11 quirk 16, 15): ``timestamp * 10000 + n``
#: with n counting up within a millisecond, or with n drawn at random, so ids of trades in
#: the same millisecond are not in trade order (REST pages are then not ordered by id).
SequentialIds = Literal["ordered", "unordered"]
#: Data-type weights of a flood buffer, as (ticker, trade, orderbook, candle) shares.
FloodMix = tuple[float, float, float, float]

_MIN_TIMING: Final = 0.001


@dataclass(frozen=True, kw_only=True, slots=True)
class SimulatorConfig:
    """All simulator settings; build with keywords, every default is Upbit's behaviour.

    Times are seconds unless the name says otherwise. ``None`` disables a limit.
    """

    # --- network --------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 0

    # --- market model (section 4; one seeded random walk driven by one clock) ---------------
    seed: int = 0
    krw_markets: int = 200
    btc_markets: int = 30
    usdt_markets: int = 20
    #: Model step; books of busy KRW pairs move on a ~100 ms grid (section 4.3, PROBE).
    tick_interval: float = 0.1
    #: Mean trades per second of the busiest market; others scale down by rank.
    trades_per_second: float = 8.0
    #: Number of "busy" markets that trade at close to the full rate (KRW-BTC, KRW-ETH, ...).
    busy_markets: int = 10
    #: Mean trades per second of the quietest markets.
    quiet_trades_per_second: float = 0.05
    #: Probability per tick that a busy book changes without a trade (size churn).
    book_churn: float = 0.5
    #: Simulated start time (epoch s) when a manual clock is used; real clocks ignore it.
    start_time: float = 1_785_397_200.0
    #: Candles go out at most this often per code and type, and only when changed (4.4).
    candle_min_interval: float = 1.0
    number_spelling: NumberSpelling = "upbit"
    #: Seconds of market history simulated before the start (REST candles and trades to show).
    history_seconds: float = 0.0
    #: Trades kept per market for ``GET /v1/trades/ticks``.
    trade_history: int = 2000
    #: Candles kept per market and unit for ``GET /v1/candles/minutes``.
    candle_history: int = 200
    sequential_ids: SequentialIds = "ordered"

    # --- WebSocket behaviour (sections 2, 3, 6, 7) ----------------------------------------
    #: Idle kill without a close frame: ~60 s measured, 120 s documented (section 6).
    idle_timeout: float | None = 60.0
    idle_mode: IdleMode = "both"
    #: ``{"status":"UP"}`` period after a text ``PING``, on a server-wide tick (section 6).
    status_interval: float = 10.0
    status_start: StatusStart = "tick"
    #: Whether the server's own ``{"status":"UP"}`` frames count as activity for the idle kill
    #: (section 6 does not say; off, so one PING does not keep a socket alive forever).
    status_keeps_alive: bool = False
    #: Delay between an error frame and the close 1000 (section 7.3: ~150-180 ms on KR).
    error_close_delay: float = 0.15
    accept_camel_case_flags: bool = True
    both_flags: BothFlagsMode = "nothing"
    #: Whether a resubscribe re-sends SNAPSHOTs for codes already subscribed (section 3.2).
    resnapshot_existing: bool = True
    #: Elements per frame in JSON_LIST/SIMPLE_LIST ([UNSURE]; samples always show one).
    list_batch: int = 1
    #: Whether LIST_SUBSCRIPTIONS echoes ``.N`` suffixes and ``is_only_*`` flags ([UNSURE]).
    list_echo_depth_suffix: bool = False
    list_echo_flags: bool = False
    #: Whether binary client frames are accepted as requests ([UNSURE]).
    accept_binary_requests: bool = True
    private_on_public: PrivateOnPublicMode = "invalid_auth"
    public_on_private: PublicOnPrivateMode = "unsupported_type"
    #: Frames queued per connection before a too-slow client is dropped.
    send_queue_limit: int = 100_000
    #: Frames of the old subscription still sent after a resubscribe (section 3.2: 0-2 in flight).
    stale_frames_after_resubscribe: int = 0
    #: Delay before the first myAsset frame, counted from the connection's first myAsset
    #: subscription (section 4.6: data may take minutes to start flowing).
    my_asset_start_delay: float = 0.0
    #: Seconds between a subscription request and the moment it takes effect (its snapshots
    #: and realtime frames start): the first data came 150-650 ms after a request (section
    #: 1.3). 0: at once. Requests keep their order; LIST_SUBSCRIPTIONS answers at once.
    subscribe_delay: float = 0.0

    # --- private auth (section 5) ---------------------------------------------------------
    auth_failure: AuthFailureMode = "handshake"
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = field(default=DEFAULT_SECRET_KEY, repr=False)
    #: Days until the default key expires (keys are valid one year, section 5).
    key_valid_days: float = 365.0

    # --- limits (section 8) ---------------------------------------------------------------
    connect_per_second: int | None = 5
    #: 429s in a row (within the block memory) before the server answers 418.
    connect_429s_before_block: int = 3
    #: First 418 block; each further block doubles up to ``connect_block_max``.
    connect_block: float = 1.0
    connect_block_max: float = 60.0
    #: Seconds without excess after which the 418 escalation resets.
    connect_block_memory: float = 30.0
    messages_per_second: int | None = 5
    messages_per_minute: int | None = 100
    message_excess: ExcessAction = "error_close"
    #: Whether text ``PING`` counts toward the message limit (section 14 q5: probably not).
    ping_counts_as_message: bool = False
    #: Second and minute window lengths (shrink them in tests).
    rate_window_second: float = 1.0
    rate_window_minute: float = 60.0
    #: REST per-second limits by group (section 8.2); ``None`` disables REST 429.
    rest_quotation_per_second: int | None = 10
    rest_exchange_per_second: int | None = 30
    rest_order_per_second: int | None = 8

    # --- order engine (section 9) ---------------------------------------------------------
    fee_rate: str = "0.0005"
    min_order_total_krw: str = "5000"
    initial_krw: str = "100000000"
    initial_btc: str = "0.5"

    # --- faults and flood -----------------------------------------------------------------
    #: Every public connection floods pre-encoded frames for its subscription.
    flood: bool = False
    flood_mix: FloodMix = (0.3, 0.5, 0.15, 0.05)
    #: Distinct frames pre-built per flood buffer, and bytes per transport write.
    flood_frames: int = 4096
    flood_chunk_bytes: int = 1 << 20
    #: Control HTTP API under ``/_sim/`` on the same port.
    control_api: bool = True

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ConfigError(problems)

    def replace(self, **changes: object) -> SimulatorConfig:
        """Return a copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _problems(cfg: SimulatorConfig) -> list[str]:
    """List every invalid setting of ``cfg`` (all at once, STYLE lesson 11)."""
    out: list[str] = []
    if not 0 <= cfg.port <= 65535:
        out.append(f"port must be 0..65535, not {cfg.port}")
    if cfg.krw_markets < 3:
        out.append("krw_markets must be at least 3 (KRW-BTC, KRW-ETH, KRW-XRP are always there)")
    for name in (
        "btc_markets",
        "usdt_markets",
        "busy_markets",
        "trade_history",
        "stale_frames_after_resubscribe",
    ):
        if getattr(cfg, name) < 0:
            out.append(f"{name} must be >= 0")
    if cfg.candle_history < 1:
        out.append("candle_history must be >= 1")
    positive = (
        "tick_interval",
        "status_interval",
        "candle_min_interval",
        "rate_window_second",
        "rate_window_minute",
        "connect_block",
        "connect_block_max",
    )
    for name in positive:
        if getattr(cfg, name) < _MIN_TIMING:
            out.append(f"{name} must be >= {_MIN_TIMING} s, not {getattr(cfg, name)}")
    for name in (
        "error_close_delay",
        "connect_block_memory",
        "my_asset_start_delay",
        "subscribe_delay",
        "history_seconds",
    ):
        if getattr(cfg, name) < 0:
            out.append(f"{name} must be >= 0")
    if cfg.idle_timeout is not None and cfg.idle_timeout < _MIN_TIMING:
        out.append(f"idle_timeout must be None or >= {_MIN_TIMING} s")
    if cfg.trades_per_second < 0 or cfg.quiet_trades_per_second < 0:
        out.append("trade rates must be >= 0")
    if not 0 <= cfg.book_churn <= 1:
        out.append("book_churn must be within 0..1")
    for name in (
        "connect_per_second",
        "messages_per_second",
        "messages_per_minute",
        "rest_quotation_per_second",
        "rest_exchange_per_second",
        "rest_order_per_second",
    ):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            out.append(f"{name} must be None (no limit) or >= 1")
    if cfg.connect_429s_before_block < 1:
        out.append("connect_429s_before_block must be >= 1")
    if cfg.list_batch < 1:
        out.append("list_batch must be >= 1")
    if cfg.send_queue_limit < 16:
        out.append("send_queue_limit must be >= 16")
    if not cfg.access_key or not cfg.secret_key:
        out.append("access_key and secret_key must be non-empty")
    if len(cfg.flood_mix) != 4 or any(w < 0 for w in cfg.flood_mix) or sum(cfg.flood_mix) <= 0:
        out.append("flood_mix must be four non-negative weights with a positive sum")
    if cfg.flood_frames < 1 or cfg.flood_chunk_bytes < 1024:
        out.append("flood_frames must be >= 1 and flood_chunk_bytes >= 1024")
    out.extend(_decimal_problems(cfg))
    return out


def _decimal_problems(cfg: SimulatorConfig) -> list[str]:
    """Check the order-engine amounts parse as non-negative decimals."""
    from decimal import Decimal, InvalidOperation

    out: list[str] = []
    for name in ("fee_rate", "min_order_total_krw", "initial_krw", "initial_btc"):
        try:
            value = Decimal(getattr(cfg, name))
        except InvalidOperation:
            out.append(f"{name} must be a decimal string, not {getattr(cfg, name)!r}")
            continue
        if not value.is_finite() or value < 0:
            out.append(f"{name} must be a finite non-negative decimal")
    return out
