"""The public surface of upbit_ws is deliberate: __all__ is pinned here."""

from __future__ import annotations

import upbit_ws

# Extend this list (sorted) in the same commit that adds a public name.
EXPECTED_ALL = [
    "AssetBalance",
    "AuthError",
    "Candle",
    "ConfigError",
    "ConnectionClosedError",
    "DecodeError",
    "ErrorFrame",
    "InvalidInputError",
    "KeepAlive",
    "Message",
    "MyAsset",
    "MyOrder",
    "Orderbook",
    "OrderbookUnit",
    "RateLimitedError",
    "ServerRejectedError",
    "SubscriptionList",
    "Ticker",
    "Trade",
    "TransportError",
    "UnknownCodeError",
    "UnknownMessage",
    "UpbitWsError",
    "__version__",
    "decode",
    "decode_all",
]


def test_all_is_pinned() -> None:
    """upbit_ws.__all__ is exactly the reviewed list, sorted, without duplicates."""
    assert list(upbit_ws.__all__) == EXPECTED_ALL
    assert sorted(set(EXPECTED_ALL)) == EXPECTED_ALL


def test_every_exported_name_exists() -> None:
    """Each name in __all__ is importable from the package."""
    missing = [name for name in upbit_ws.__all__ if not hasattr(upbit_ws, name)]
    assert missing == []


def test_no_public_name_is_left_out_of_all() -> None:
    """Public classes and functions defined at package level are all listed in __all__."""
    public = {
        name
        for name, value in vars(upbit_ws).items()
        if not name.startswith("_") and (isinstance(value, type) or callable(value))
    }
    assert public <= set(upbit_ws.__all__)


def test_decode_is_the_package_level_entry_point() -> None:
    """upbit_ws.decode turns one server frame into a typed message."""
    message = upbit_ws.decode(b'{"status":"UP"}')
    assert message == upbit_ws.KeepAlive(status="UP")
