"""The public surface of upbit_ws is deliberate: __all__ is pinned here."""

from __future__ import annotations

import importlib.metadata
import typing

import upbit_ws

# Extend this list (sorted) in the same commit that adds a public name.
EXPECTED_ALL = [
    "AssetBalance",
    "AuthError",
    "BackoffConfig",
    "BufferOverflowed",
    "Candle",
    "Component",
    "ConfigError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ConnectionConfig",
    "ConnectionHandle",
    "ConnectionHealth",
    "ConnectionMisconfigured",
    "ConnectionStateChanged",
    "ConnectionView",
    "Credentials",
    "DecodeError",
    "ErrorFrame",
    "Event",
    "EventStream",
    "Gap",
    "GapEvent",
    "Health",
    "InvalidInputError",
    "KeepAlive",
    "KeepaliveConfig",
    "KeyExpiringSoon",
    "KeyHealthConfig",
    "KeyProblem",
    "KeyRecovered",
    "ManagerStatistics",
    "Message",
    "MyAsset",
    "MyOrder",
    "NotReadyError",
    "Orderbook",
    "OrderbookUnit",
    "OverflowPolicy",
    "RateLimitedError",
    "RateLimits",
    "ReconcileConfig",
    "ReconciliationFinished",
    "ReconciliationStarted",
    "RequestRejected",
    "ServerRejectedError",
    "SubscribedType",
    "Subscription",
    "SubscriptionConfig",
    "SubscriptionInfo",
    "SubscriptionList",
    "SubscriptionStatistics",
    "SubscriptionsView",
    "Ticker",
    "Timeouts",
    "Trade",
    "TransportConfig",
    "TransportError",
    "UnknownCodeError",
    "UnknownMessage",
    "UpbitWsError",
    "WebSocketManager",
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
    frame = (
        b'{"type":"trade","code":"KRW-BTC","timestamp":1787728554853,"trade_date":"2026-08-26",'
        b'"trade_time":"07:15:54","trade_timestamp":1787728554797,"trade_price":1.09847E8,'
        b'"trade_volume":0.00509799,"ask_bid":"ASK","prev_closing_price":109165000.0,'
        b'"change":"RISE","change_price":682000.0,"sequential_id":17877285547970000,'
        b'"stream_type":"SNAPSHOT"}'
    )
    message = upbit_ws.decode(frame)
    assert isinstance(message, upbit_ws.Trade)
    assert (message.code, message.trade_price, message.sequential_id) == (
        "KRW-BTC",
        109_847_000.0,
        17877285547970000,
    )


def test_import_does_not_load_the_simulator() -> None:
    """`import upbit_ws` leaves the simulator (and its aiohttp server) unloaded."""
    import subprocess
    import sys

    code = (
        "import sys, upbit_ws; print(any(m.startswith('upbit_ws.simulator') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_version_is_the_installed_distributions() -> None:
    """Issue 16.10: one version string, read from the package metadata (pyproject.toml)."""
    assert upbit_ws.__version__ == importlib.metadata.version("upbit-ws")


def test_what_the_facade_returns_is_exported() -> None:
    """Issue 16.10: the types the manager's public methods return can be imported from upbit_ws."""
    exported = set(upbit_ws.__all__)
    missing = []
    for cls in (upbit_ws.WebSocketManager, upbit_ws.Component, upbit_ws.Subscription):
        for name, member in vars(cls).items():
            advanced = ("rest", "keys", "integrity", "subscription_service")
            if name.startswith("_") or name in advanced:
                continue  # the advanced parts stay in their modules
            target = member.fget if isinstance(member, property) else member
            if not callable(target):
                continue
            returned = typing.get_type_hints(target).get("return")
            for arg in (returned, *typing.get_args(returned)):
                module = getattr(arg, "__module__", "")
                ours = isinstance(arg, type) and module.startswith("upbit_ws")
                if ours and arg.__name__ not in exported:
                    missing.append(f"{cls.__name__}.{name} -> {arg.__name__}")
    assert missing == []


def test_the_facade_offers_no_raw_send() -> None:
    """Issue 16.10: ws.public cannot send a request that would replace the merged one."""
    ws = upbit_ws.WebSocketManager()
    assert not hasattr(ws.public, "send")
    assert isinstance(ws.public, upbit_ws.ConnectionHandle)
