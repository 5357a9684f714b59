"""The subscription book: reference counts, merged desired state, routing answers."""

from __future__ import annotations

from typing import Any

import pytest

from upbit_ws.core.book import (
    ALL_CODES,
    SubId,
    Subscription,
    SubscriptionBook,
    WantedStream,
    connection_of,
)
from upbit_ws.core.errors import InvalidInputError


def test_connection_of_routes_private_types_to_private() -> None:
    """myOrder and myAsset belong to the private connection, every other type to public."""
    assert connection_of("myOrder") == "private"
    assert connection_of("myAsset") == "private"
    assert connection_of("ticker") == "public"
    assert connection_of("candle.240m") == "public"


def test_subscribe_returns_distinct_ids_and_records_the_subscription() -> None:
    """Each subscribe call gets its own handle; codes are stored sorted and deduplicated."""
    book = SubscriptionBook()
    a = book.subscribe("coins", "ticker", ["KRW-ETH", "KRW-BTC", "KRW-ETH"])
    b = book.subscribe("coins", "ticker", ["KRW-BTC"])
    assert a != b
    assert book.subscription(a) == Subscription(
        a, "coins", "ticker", ("KRW-BTC", "KRW-ETH"), None, None
    )
    assert book.subscriptions("coins") == (book.subscription(a), book.subscription(b))
    assert book.components() == ("coins",)
    assert len(book) == 2


def test_orderbook_options_default_to_depth_30_and_native_level() -> None:
    """An orderbook subscription without options stores depth 30 and level 0."""
    book = SubscriptionBook()
    sub = book.subscription(book.subscribe("ob", "orderbook", ["KRW-BTC"]))
    assert (sub.depth, sub.level) == (30, 0)


def test_integral_float_level_is_the_same_level_as_the_int() -> None:
    """Level 10000.0 and 10000 are one grouping unit, stored as the int."""
    book = SubscriptionBook()
    a = book.subscribe("a", "orderbook", ["KRW-BTC"], level=10000.0)
    b = book.subscribe("b", "orderbook", ["KRW-BTC"], level=10000)
    assert book.subscription(a).level == 10000
    assert type(book.subscription(a).level) is int
    assert book.subscribers("orderbook", "KRW-BTC", 10000) == {a: 30, b: 30}


def test_wanted_is_the_union_with_refcounts() -> None:
    """The desired state is the union; a stream stays while any holder remains."""
    book = SubscriptionBook()
    a = book.subscribe("coins", "ticker", ["KRW-BTC", "KRW-ETH"])
    b = book.subscribe("chart", "ticker", ["KRW-BTC"])
    assert [w.code for w in book.wanted("public")] == ["KRW-BTC", "KRW-ETH"]
    book.unsubscribe(a)
    assert book.wanted("public") == (WantedStream("ticker", "KRW-BTC"),)
    book.unsubscribe(b)
    assert book.wanted("public") == ()
    assert book.routing_table() == {}
    assert book.refcounts() == {}


def test_refcounts_count_each_subscription_of_a_component() -> None:
    """Two subscriptions of one component to the same stream count 2."""
    book = SubscriptionBook()
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    book.subscribe("coins", "ticker", ["KRW-BTC"])
    assert book.refcounts() == {("coins", "ticker", "KRW-BTC", None, None): 2}


def test_orderbook_depth_merges_to_the_largest() -> None:
    """The merged orderbook depth is the max of live subscribers, and falls when one leaves."""
    book = SubscriptionBook()
    small = book.subscribe("a", "orderbook", ["KRW-BTC"], depth=5)
    big = book.subscribe("b", "orderbook", ["KRW-BTC"], depth=15)
    assert book.wanted("public") == (WantedStream("orderbook", "KRW-BTC", 0, 15),)
    assert book.subscribers("orderbook", "KRW-BTC") == {small: 5, big: 15}
    book.unsubscribe(big)
    assert book.wanted("public") == (WantedStream("orderbook", "KRW-BTC", 0, 5),)


def test_orderbook_levels_are_separate_streams() -> None:
    """Different levels of one code are different streams with their own depth."""
    book = SubscriptionBook()
    native = book.subscribe("a", "orderbook", ["KRW-BTC"], depth=15)
    grouped = book.subscribe("b", "orderbook", ["KRW-BTC"], depth=5, level=10000)
    assert book.wanted("public") == (
        WantedStream("orderbook", "KRW-BTC", 0, 15),
        WantedStream("orderbook", "KRW-BTC", 10000, 5),
    )
    assert book.subscribers("orderbook", "KRW-BTC", 0) == {native: 15}
    assert book.subscribers("orderbook", "KRW-BTC", None) == {native: 15}
    assert book.subscribers("orderbook", "KRW-BTC", 10000.0) == {grouped: 5}


def test_my_order_all_markets_absorbs_per_market_interest() -> None:
    """myOrder with no codes means all markets; the union is then all markets."""
    book = SubscriptionBook()
    one = book.subscribe("strategy", "myOrder", ["KRW-BTC"])
    every = book.subscribe("ledger", "myOrder", [])
    assert book.wanted("private") == (WantedStream("myOrder", ALL_CODES),)
    assert book.subscribers("myOrder", "KRW-BTC") == {one: None, every: None}
    assert book.subscribers("myOrder", "KRW-ETH") == {every: None}
    book.unsubscribe(every)
    assert book.wanted("private") == (WantedStream("myOrder", "KRW-BTC"),)


def test_my_asset_has_no_codes_and_routes_by_type() -> None:
    """myAsset is one stream without codes; every frame goes to every myAsset subscriber."""
    book = SubscriptionBook()
    sub = book.subscribe("wallet", "myAsset")
    assert book.wanted("private") == (WantedStream("myAsset", ALL_CODES),)
    assert book.subscribers("myAsset") == {sub: None}
    assert book.subscribers("myAsset", "ignored") == {sub: None}


def test_connections_are_kept_apart() -> None:
    """Public types never appear in the private desired state and vice versa."""
    book = SubscriptionBook()
    book.subscribe("a", "ticker", ["KRW-BTC"])
    book.subscribe("a", "myAsset")
    assert [w.type for w in book.wanted("public")] == ["ticker"]
    assert [w.type for w in book.wanted("private")] == ["myAsset"]


def test_wanted_order_is_canonical() -> None:
    """Streams come in wire-constant type order, then level, then code, whatever the input order."""
    book = SubscriptionBook()
    book.subscribe("a", "candle.1m", ["KRW-ETH"])
    book.subscribe("b", "orderbook", ["KRW-XRP"], level=1)
    book.subscribe("c", "orderbook", ["KRW-ETH"])
    book.subscribe("d", "ticker", ["KRW-XRP", "KRW-BTC"])
    assert [str(w) for w in book.wanted("public")] == [
        "ticker KRW-BTC",
        "ticker KRW-XRP",
        "orderbook KRW-ETH",
        "orderbook KRW-XRP level=1",
        "candle.1m KRW-ETH",
    ]


def test_update_replaces_codes_and_keeps_options() -> None:
    """update() swaps a subscription's codes; depth and level stay as subscribed."""
    book = SubscriptionBook()
    sub = book.subscribe("ob", "orderbook", ["KRW-BTC"], depth=15, level=1000)
    book.update(sub, ["KRW-ETH"])
    assert book.subscription(sub).codes == ("KRW-ETH",)
    assert book.wanted("public") == (WantedStream("orderbook", "KRW-ETH", 1000, 15),)
    assert book.subscribers("orderbook", "KRW-BTC", 1000) == {}


def test_public_subscription_may_hold_no_codes_for_now() -> None:
    """A public subscription with no codes (a wildcard with no match yet) wants nothing."""
    book = SubscriptionBook()
    sub = book.subscribe("coins", "ticker", [])
    assert book.wanted("public") == ()
    book.update(sub, ["KRW-BTC"])
    assert book.wanted("public") == (WantedStream("ticker", "KRW-BTC"),)


def test_version_bumps_on_every_change_and_only_then() -> None:
    """The version grows on each change of interest and stays on a no-op update."""
    book = SubscriptionBook()
    v0 = book.version
    sub = book.subscribe("a", "ticker", ["KRW-BTC"])
    v1 = book.version
    book.update(sub, ["KRW-BTC"])
    assert book.version == v1 > v0
    book.update(sub, ["KRW-ETH"])
    v2 = book.version
    assert v2 > v1
    book.drop_component("nobody")
    assert book.version == v2
    book.drop_component("a")
    assert book.version > v2


def test_drop_component_removes_all_of_it_and_nothing_else() -> None:
    """drop_component removes every subscription of that component only."""
    book = SubscriptionBook()
    a1 = book.subscribe("a", "ticker", ["KRW-BTC"])
    a2 = book.subscribe("a", "myAsset")
    b = book.subscribe("b", "ticker", ["KRW-BTC"])
    assert set(book.drop_component("a")) == {a1, a2}
    assert book.components() == ("b",)
    assert book.subscribers("ticker", "KRW-BTC") == {b: None}
    assert book.wanted("private") == ()
    assert book.drop_component("a") == ()


def test_wanted_cache_follows_changes() -> None:
    """A cached desired state is never served after a change."""
    book = SubscriptionBook()
    sub = book.subscribe("a", "ticker", ["KRW-BTC"])
    first = book.wanted("public")
    assert book.wanted("public") is first
    book.update(sub, ["KRW-ETH"])
    assert book.wanted("public") == (WantedStream("ticker", "KRW-ETH"),)


def test_subscribers_of_unknown_keys_is_empty() -> None:
    """Routing questions about streams nobody wants answer with an empty mapping."""
    book = SubscriptionBook()
    assert book.subscribers("ticker", "KRW-BTC") == {}
    assert book.subscribers("nonsense", "KRW-BTC") == {}  # type: ignore[arg-type]


def test_statistics_and_repr() -> None:
    """statistics() counts components, subscriptions and streams; repr says the same."""
    book = SubscriptionBook()
    book.subscribe("a", "ticker", ["KRW-BTC", "KRW-ETH"])
    book.subscribe("b", "myOrder")
    stats = book.statistics()
    assert (stats.components, stats.subscriptions) == (2, 2)
    assert (stats.public_streams, stats.private_streams) == (2, 1)
    assert "subscriptions=2" in repr(book)


@pytest.mark.parametrize(
    ("args", "kwargs", "needle"),
    [
        (("a", "tickers", ["KRW-BTC"]), {}, "unknown data type"),
        (("a", "myAsset", ["KRW-BTC"]), {}, "myAsset takes no codes"),
        (("a", "ticker", ["KRW-BTC"]), {"depth": 15}, "orderbook only"),
        (("a", "trade", ["KRW-BTC"]), {"level": 1000}, "orderbook only"),
        (("a", "orderbook", ["KRW-BTC"]), {"depth": 20}, "depth 20"),
        (("a", "orderbook", ["KRW-BTC"]), {"depth": True}, "depth True"),
        (("a", "orderbook", ["KRW-BTC"]), {"level": -1}, "level -1"),
        (("a", "orderbook", ["KRW-BTC"]), {"level": float("nan")}, "level nan"),
        (("a", "orderbook", ["KRW-BTC.15"]), {}, "depth suffix"),
        (("a", "ticker", "KRW-BTC"), {}, "list of market codes"),
        (("a", "ticker", [42]), {}, "must be a string"),
        (("", "ticker", ["KRW-BTC"]), {}, "component"),
    ],
)
def test_misuse_raises_invalid_input(
    args: tuple[Any, ...], kwargs: dict[str, Any], needle: str
) -> None:
    """Obvious misuse raises InvalidInputError naming the problem, and changes nothing."""
    book = SubscriptionBook()
    with pytest.raises(InvalidInputError, match=needle):
        book.subscribe(*args, **kwargs)
    assert len(book) == 0
    assert book.version == 0


def test_unknown_sub_id_raises_invalid_input() -> None:
    """update/unsubscribe/subscription with an id never issued or already gone is misuse."""
    book = SubscriptionBook()
    sub = book.subscribe("a", "ticker", ["KRW-BTC"])
    book.unsubscribe(sub)
    for call in (
        lambda: book.unsubscribe(sub),
        lambda: book.update(sub, ["KRW-BTC"]),
        lambda: book.subscription(SubId(999)),
        lambda: book.update(["x"], ["KRW-BTC"]),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidInputError, match="unknown subscription id"):
            call()


def test_failed_update_leaves_the_subscription_unchanged() -> None:
    """An update with bad codes raises and keeps the previous codes and routing."""
    book = SubscriptionBook()
    sub = book.subscribe("a", "ticker", ["KRW-BTC"])
    with pytest.raises(InvalidInputError):
        book.update(sub, ["KRW-ETH", "not a code"])
    assert book.subscription(sub).codes == ("KRW-BTC",)
    assert book.subscribers("ticker", "KRW-BTC") == {sub: None}


def test_update_on_my_asset_with_codes_is_refused() -> None:
    """myAsset stays without codes even through update()."""
    book = SubscriptionBook()
    sub = book.subscribe("wallet", "myAsset")
    with pytest.raises(InvalidInputError, match="myAsset"):
        book.update(sub, ["KRW-BTC"])


def test_wanted_rejects_unknown_connection() -> None:
    """Asking for a connection that does not exist is misuse."""
    with pytest.raises(InvalidInputError, match="unknown connection"):
        SubscriptionBook().wanted("info")  # type: ignore[arg-type]
