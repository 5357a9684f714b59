"""The relay's pure parts: key names, entry encoding, configuration, the import boundary."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from decimal import Decimal

import msgspec
import pytest

import upbit_ws.relay
from upbit_ws.core.errors import ConfigError, InvalidInputError
from upbit_ws.core.messages import (
    MESSAGE_TYPES,
    AssetBalance,
    Candle,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Ticker,
    Trade,
)
from upbit_ws.relay.codec import (
    EVENT_DECODER,
    FIELD_BATCH,
    EntryFormatError,
    FeedGap,
    Keys,
    LeaseAcquired,
    RedisOutage,
    RelayConfig,
    check_subscriptions,
    decode_entry,
    decoder_for,
    encode_event,
    encode_gap,
    encode_message,
    encode_messages,
    entry_id_seconds,
)

TRADE = Trade(
    code="KRW-BTC",
    trade_price=1.5e8,
    trade_volume=0.01,
    ask_bid="BID",
    prev_closing_price=1.4e8,
    change="RISE",
    change_price=1e7,
    trade_date="2024-01-01",
    trade_time="00:00:00",
    trade_timestamp=1704067200000,
    timestamp=1704067200012,
    sequential_id=17040672000000001,
)


def test_relay_public_names_are_pinned() -> None:
    """upbit_ws.relay exports exactly these names."""
    assert sorted(upbit_ws.relay.__all__) == [
        "FeedGap",
        "FeedStatistics",
        "FeedSubscription",
        "GapCause",
        "Keys",
        "LeaseAcquired",
        "LeaseReleased",
        "RedisCommandError",
        "RedisFeed",
        "RedisOutage",
        "RedisUnavailableError",
        "Relay",
        "RelayConfig",
        "RelayEvent",
        "RelayRole",
        "RelayStatistics",
        "UpstreamStateChanged",
    ]


def test_importing_the_relay_does_not_import_redis() -> None:
    """`import upbit_ws.relay` works without redis-py: it is loaded when a client is built."""
    code = (
        "import json, sys, upbit_ws, upbit_ws.relay, upbit_ws.cli.main\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'redis')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_stream_keys_follow_type_and_code() -> None:
    """Streams are upbit:{type}:{code}; myAsset has no code; other namespaces prefix all keys."""
    keys = Keys()
    assert keys.stream("trade", "KRW-BTC") == "upbit:trade:KRW-BTC"
    assert keys.stream("myAsset", None) == "upbit:myAsset"
    assert keys.events == "upbit:events"
    assert Keys("lab").lease("relay") == "lab:lease:relay"


@pytest.mark.parametrize(
    "message",
    [
        TRADE,
        Ticker(
            code="KRW-BTC",
            opening_price=1.0,
            high_price=2.0,
            low_price=0.5,
            trade_price=1.5,
            prev_closing_price=1.0,
            change="RISE",
            change_price=0.5,
            signed_change_price=0.5,
            change_rate=0.5,
            signed_change_rate=0.5,
            trade_volume=0.1,
            acc_trade_volume=10.0,
            acc_trade_price=15.0,
            trade_date="20240101",
            trade_time="000000",
            trade_timestamp=1704067200000,
            ask_bid="ASK",
            acc_ask_volume=4.0,
            acc_bid_volume=6.0,
            timestamp=1704067200001,
            market_warning="NONE",
            stream_type="REALTIME",
        ),
        MyOrder(
            code="KRW-BTC",
            uuid="u-1",
            ask_bid="BID",
            order_type="limit",
            state="trade",
            timestamp=3,
            price=Decimal("150000000"),
            volume=Decimal("0.00010000"),
            paid_fee=Decimal("7.5"),
            is_maker=True,
            stream_type="REALTIME",
        ),
        Orderbook(
            code="KRW-BTC",
            timestamp=1,
            total_ask_size=1.0,
            total_bid_size=2.0,
            orderbook_units=(
                OrderbookUnit(ask_price=2.0, bid_price=1.0, ask_size=1.0, bid_size=2.0),
            ),
        ),
        Candle(
            type="candle.1m",
            code="KRW-ETH",
            candle_date_time_utc="2024-01-01T00:00:00",
            candle_date_time_kst="2024-01-01T09:00:00",
            opening_price=1.0,
            high_price=2.0,
            low_price=0.5,
            trade_price=1.5,
            candle_acc_trade_volume=3.0,
            candle_acc_trade_price=4.0,
            timestamp=5,
        ),
        MyAsset(
            asset_uuid="u",
            assets=(
                AssetBalance(
                    currency="KRW",
                    balance=Decimal("1386929.37231066771348207123"),
                    locked=Decimal(0),
                ),
            ),
            asset_timestamp=1,
            timestamp=2,
        ),
    ],
)
def test_messages_round_trip_into_the_same_class(message: object) -> None:
    """A message encodes with its type tag and decodes back equal, in its own class."""
    payload = encode_message(message)  # type: ignore[arg-type]
    back = decoder_for(message.type).decode(payload)  # type: ignore[attr-defined]
    assert type(back) is type(message)
    assert back == message
    # Format 2 (what the relay writes): a batch of one stream's messages in one entry; the
    # readers still take format 1 (one message an entry) from older relays.
    batch = [message, msgspec.structs.replace(message, timestamp=7)]  # type: ignore[type-var]
    again = decode_entry(message.type, b"m2", encode_messages(batch))  # type: ignore[attr-defined,arg-type]
    assert again == batch and all(type(m) is type(message) for m in again)  # type: ignore[union-attr]
    assert decode_entry(message.type, b"m", payload) == [message]  # type: ignore[attr-defined]


#: Fingerprint of the message classes' field layout (names in declaration order), which
#: format ``m2`` writes positionally (src/upbit_ws/relay/codec.py).
M2_LAYOUT = "170032f1e8a3f0c3"


def test_the_batch_format_pins_the_message_layout() -> None:
    """Format m2 leaves field names out, so the classes' field order is part of the format:
    a change to it needs a new format (FIELD_BATCH ``m3``), or readers of either version would
    refuse (or misread) the other's entries."""
    layout = {t: [f.name for f in msgspec.structs.fields(c)] for t, c in MESSAGE_TYPES.items()}
    text = json.dumps(layout, sort_keys=True).encode()
    assert hashlib.sha256(text).hexdigest()[:16] == M2_LAYOUT, (
        "the message classes' fields changed: give the relay's batch entries a new format "
        "(codec.FIELD_BATCH), keep reading the old one, then update M2_LAYOUT"
    )
    assert FIELD_BATCH == b"m2"


def test_a_batch_entry_is_checked_field_by_field() -> None:
    """The arrays are decoded with the fields' types: a value of the wrong type is an error,
    never a message with a string where a price belongs."""
    row = list(msgspec.structs.astuple(TRADE))
    row[1] = "not a price"
    with pytest.raises(msgspec.ValidationError):
        decode_entry("trade", b"m2", msgspec.msgpack.encode([row]))
    with pytest.raises(msgspec.ValidationError):
        decode_entry("trade", b"m2", msgspec.msgpack.encode([row[:5]]))  # too short
    # Smaller than the format 1 map of the same trade, and equal once decoded.
    assert len(encode_messages([TRADE])) < len(encode_message(TRADE)) / 2
    assert decode_entry("trade", b"m2", encode_messages([TRADE])) == [TRADE]


def test_an_entry_format_this_reader_does_not_know_is_refused() -> None:
    """A newer relay's entry is refused with an error naming its field and what to do, never
    read as something else; a gap still decodes as a gap."""
    with pytest.raises(EntryFormatError) as caught:
        decode_entry("trade", b"m3", encode_messages([TRADE]))
    assert caught.value.field == "m3"
    assert "newer relay" in str(caught.value) and "upgrade upbit-ws" in str(caught.value)
    gap = FeedGap(at=2.0, relay="r", type="trade", code="KRW-BTC", cause="takeover", since=1.0)
    assert decode_entry("trade", b"g", encode_gap(gap)) == gap
    with pytest.raises(msgspec.DecodeError):
        decode_entry("trade", b"m2", encode_message(TRADE))  # one message where a list belongs


def test_events_decode_by_their_tag() -> None:
    """Relay events carry an ``event`` tag and decode back into their class."""
    event = LeaseAcquired(at=3.0, relay="r", since=2.5, refilled=4)
    assert EVENT_DECODER.decode(encode_event(event)) == event
    assert msgspec.to_builtins(event)["event"] == "lease_acquired"
    assert entry_id_seconds(b"1700000000123-4") == 1700000000.123
    outage = RedisOutage(at=9.0, relay="r", since=4.0, retries=7, dropped=0)
    assert EVENT_DECODER.decode(encode_event(outage)) == outage


def test_config_reports_every_problem_at_once() -> None:
    """RelayConfig validates all fields and names each bad one."""
    with pytest.raises(ConfigError) as info:
        RelayConfig(maxlen=0, lease_seconds=0.01, namespace="a b")
    text = str(info.value)
    assert "relay.maxlen" in text and "relay.lease_seconds" in text and "relay.namespace" in text
    assert RelayConfig(lease_seconds=0.5).lease_ms == 500


def test_subscriptions_are_checked_and_normalised() -> None:
    """Types must be Upbit's; codes are upper-cased; a public type needs codes."""
    assert check_subscriptions({"trade": ["krw-btc"]}) == {"trade": ("KRW-BTC",)}
    with pytest.raises(InvalidInputError, match="unknown type 'trades'"):
        check_subscriptions({"trades": ["KRW-BTC"]})
    with pytest.raises(InvalidInputError, match="needs at least one code"):
        check_subscriptions({"ticker": []})
