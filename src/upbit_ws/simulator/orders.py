"""A small order engine over the simulated books, producing the events a real account sees.

Orders (section 9.4): ``limit`` bid/ask, ``price`` (market buy by amount) and ``market``
(market sell by volume). Marketable orders fill at once against the best price (taker);
resting limit orders fill at their price (maker) when the random walk trades through them.
Every change produces the WebSocket ``myOrder`` events (``wait``, ``trade``, ``done`` or
``cancel``; section 4.5) and one ``myAsset`` event per changed currency (section 4.6), and the
REST bodies use the REST shapes (strings, ``side``/``ord_type``, null fields omitted; 9.4 and
the vectors: a filled market buy ends ``cancel``; a market sell has no ``price`` and no
``executed_funds``). Amounts are :class:`~decimal.Decimal` throughout.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Final, Literal

from upbit_ws.simulator.config import SimulatorConfig
from upbit_ws.simulator.listing import PRICE_SCALE, tick_units
from upbit_ws.simulator.market import MarketModel

__all__ = ["Account", "Order", "OrderEngine", "PrivateEvent", "RestError"]

Side = Literal["bid", "ask"]
OrdType = Literal["limit", "price", "market"]
State = Literal["wait", "done", "cancel"]

_EIGHT: Final = Decimal("0.00000001")
_SCALE: Final = Decimal(PRICE_SCALE)
_KST: Final = 9 * 3600


@dataclass(frozen=True, slots=True)
class RestError:
    """A REST error: HTTP ``status`` and the body ``{"error":{"name","message"}}`` (9.7)."""

    status: int
    name: str | int
    message: str

    def body(self) -> dict[str, object]:
        """Return the JSON body."""
        return {"error": {"name": self.name, "message": self.message}}


@dataclass(frozen=True, slots=True)
class PrivateEvent:
    """A myOrder or myAsset object for the private connections of ``access_key``."""

    access_key: str
    type: Literal["myOrder", "myAsset"]
    code: str
    data: dict[str, object]


@dataclass(slots=True)
class Fill:
    """One execution of an order."""

    uuid: str
    price: Decimal
    volume: Decimal
    funds: Decimal
    fee: Decimal
    is_maker: bool
    created_at: float


@dataclass(slots=True)
class Order:
    """One order and its running totals."""

    uuid: str
    access_key: str
    market: str
    side: Side
    ord_type: OrdType
    price: Decimal | None
    volume: Decimal | None
    identifier: str | None
    created_at: float
    state: State = "wait"
    remaining_volume: Decimal = Decimal(0)
    reserved_fee: Decimal = Decimal(0)
    remaining_fee: Decimal = Decimal(0)
    paid_fee: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)
    executed_volume: Decimal = Decimal(0)
    executed_funds: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)
    done_at: float | None = None


@dataclass(slots=True)
class Account:
    """Balances by currency: ``[balance, locked, avg_buy_price]``."""

    balances: dict[str, list[Decimal]] = field(default_factory=dict)

    def row(self, currency: str) -> list[Decimal]:
        """Return the mutable balance row of ``currency`` (created at zero)."""
        return self.balances.setdefault(currency, [Decimal(0), Decimal(0), Decimal(0)])


def _s(value: Decimal) -> str:
    """Spell a decimal as REST does: no exponent, no trailing zeros (``"5002.5"``, ``"0"``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _iso_kst(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+09:00", time.gmtime(int(epoch) + _KST))


def _bad(message: str = "잘못된 API 요청입니다.") -> RestError:
    return RestError(400, "validation_error", message)


class OrderEngine:
    """Accounts and orders of every API key, matched against a :class:`MarketModel`."""

    def __init__(self, config: SimulatorConfig, model: MarketModel) -> None:
        self._config = config
        self._model = model
        self._fee = Decimal(config.fee_rate)
        self._min_total = Decimal(config.min_order_total_krw)
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}

    # --- accounts ----------------------------------------------------------------------

    def account(self, access_key: str) -> Account:
        """Return the account of ``access_key``, opened with the configured balances."""
        acct = self.accounts.get(access_key)
        if acct is None:
            acct = Account()
            acct.row("KRW")[0] = Decimal(self._config.initial_krw)
            btc = acct.row("BTC")
            btc[0] = Decimal(self._config.initial_btc)
            btc[2] = Decimal(self._model.states["KRW-BTC"].last_price) / _SCALE
            self.accounts[access_key] = acct
        return acct

    def accounts_body(self, access_key: str) -> list[dict[str, object]]:
        """Return ``GET /v1/accounts`` (section 9.3): amounts as strings."""
        out: list[dict[str, object]] = []
        for currency, (balance, locked, avg) in self.account(access_key).balances.items():
            if balance == 0 and locked == 0 and currency != "KRW":
                continue
            out.append(
                {
                    "currency": currency,
                    "balance": _s(balance),
                    "locked": _s(locked),
                    "avg_buy_price": _s(avg),
                    "avg_buy_price_modified": currency == "KRW",
                    "unit_currency": "KRW",
                }
            )
        return out

    # --- orders ------------------------------------------------------------------------

    def create(
        self, access_key: str, params: Mapping[str, str], *, now: float
    ) -> tuple[Order | RestError, list[PrivateEvent]]:
        """Validate and place an order (``POST /v1/orders``); return it and its events."""
        checked = self._validate(access_key, params)
        if isinstance(checked, RestError):
            return checked, []
        market, side, ord_type, price, volume, identifier = checked
        order = Order(
            uuid=str(uuidlib.uuid4()),
            access_key=access_key,
            market=market,
            side=side,
            ord_type=ord_type,
            price=price,
            volume=volume,
            identifier=identifier,
            created_at=now,
        )
        acct = self.account(access_key)
        quote, base = market.split("-", 1)
        if side == "bid":
            amount = price * volume if ord_type == "limit" else price  # type: ignore[operator]
            assert amount is not None
            fee = amount * self._fee
            row = acct.row(quote)
            if row[0] < amount + fee:
                return RestError(
                    400, "insufficient_funds_bid", f"주문가능한 금액({quote})이 부족합니다."
                ), []
            row[0] -= amount + fee
            row[1] += amount + fee
            order.reserved_fee = order.remaining_fee = fee
            order.locked = amount + fee
        else:
            assert volume is not None
            row = acct.row(base)
            if row[0] < volume:
                return RestError(
                    400, "insufficient_funds_ask", f"주문가능한 금액({base})이 부족합니다."
                ), []
            row[0] -= volume
            row[1] += volume
            order.locked = volume
        order.remaining_volume = volume if volume is not None else Decimal(0)
        self.orders[order.uuid] = order
        self._open[order.uuid] = order
        events = [self._asset_event(access_key, quote if side == "bid" else base, now)]
        events.append(self._order_event(order, now))
        self._model.take_trade_range(market)  # only trades after placement may fill it
        events.extend(self._match_now(order, now))
        return order, events

    def _validate(
        self, access_key: str, params: Mapping[str, str]
    ) -> tuple[str, Side, OrdType, Decimal | None, Decimal | None, str | None] | RestError:
        market = params.get("market", "")
        if not market:
            return _bad()
        if market not in self._model.states:
            return RestError(404, "market_does_not_exist", "마켓 정보가 존재하지 않습니다.")
        side = params.get("side")
        ord_type = params.get("ord_type")
        if side not in ("bid", "ask") or ord_type not in ("limit", "price", "market"):
            return _bad()
        try:
            price = Decimal(params["price"]) if params.get("price") else None
            volume = Decimal(params["volume"]) if params.get("volume") else None
        except InvalidOperation:
            return _bad()
        for value in (price, volume):
            if value is not None and (not value.is_finite() or value <= 0):
                return _bad()
        if volume is not None and volume != volume.quantize(_EIGHT, rounding=ROUND_DOWN):
            return _bad()
        if ord_type == "limit" and (price is None or volume is None):
            return _bad()
        if ord_type == "price" and (side != "bid" or price is None or volume is not None):
            return _bad()
        if ord_type == "market" and (side != "ask" or volume is None or price is not None):
            return _bad()
        identifier = params.get("identifier") or None
        if identifier is not None and any(
            o.identifier == identifier and o.access_key == access_key for o in self.orders.values()
        ):
            return _bad()
        quote = market.split("-", 1)[0]
        if ord_type == "limit" and price is not None:
            units = int(price * _SCALE)
            if Decimal(units) != price * _SCALE or units % tick_units(quote, units):
                return RestError(
                    400,
                    f"invalid_price_{side}",
                    "주문 가격 단위를 잘못 입력하셨습니다. 확인 후 시도해주세요.",
                )
        total = (price or Decimal(0)) * (volume or Decimal(1)) if ord_type != "market" else None
        if ord_type == "market":
            total = self._best(market, "bid") * (volume or Decimal(0))
        if quote == "KRW" and total is not None and total < self._min_total:
            return RestError(400, f"under_min_total_{side}", "최소주문금액 이상으로 주문해주세요")
        return market, side, ord_type, price, volume, identifier  # type: ignore[return-value]

    def find(self, access_key: str, *, uuid: str | None, identifier: str | None) -> Order | None:
        """Return an order of ``access_key`` by uuid or identifier."""
        if uuid:
            order = self.orders.get(uuid)
            return order if order is not None and order.access_key == access_key else None
        for order in self.orders.values():
            if order.access_key == access_key and order.identifier == identifier:
                return order
        return None

    def cancel(
        self, access_key: str, *, uuid: str | None, identifier: str | None, now: float
    ) -> tuple[Order | RestError, list[PrivateEvent], dict[str, object] | None]:
        """Cancel a waiting order (``DELETE /v1/order``).

        Returns the order, its events and the REST body, which shows the order as it was when
        the cancel was accepted (state ``wait``), as Upbit's cancel answer does.
        """
        if not uuid and not identifier:
            return _bad(), [], None
        order = self.find(access_key, uuid=uuid, identifier=identifier)
        if order is None:
            return RestError(404, "order_not_found", "주문을 찾지 못했습니다."), [], None
        if order.state != "wait":
            return _bad("이미 체결되었거나 취소된 주문입니다."), [], None
        body = self.rest_body(order, with_trades=False)
        events = self._close(order, "cancel", now)
        return order, events, body

    def fill_part(self, uuid: str, volume: Decimal | None, *, now: float) -> list[PrivateEvent]:
        """Fill ``volume`` of a resting limit order at its price (all that remains: None).

        A test's lever (``Simulator.fill_order``): the random walk fills whole orders only,
        and a partial fill is how an order trades and then still changes (cancel, done).
        """
        order = self._open.get(uuid)
        if order is None or order.state != "wait" or order.ord_type != "limit":
            raise ValueError(f"no resting limit order {uuid!r}")
        assert order.price is not None
        amount = order.remaining_volume if volume is None else volume
        if not 0 < amount <= order.remaining_volume:
            raise ValueError(f"volume must be in (0, {order.remaining_volume}], got {amount}")
        return self._fill(order, order.price, amount, now, maker=True)

    def on_market(self, now: float) -> list[PrivateEvent]:
        """Fill resting limit orders the random walk traded through since the last call."""
        events: list[PrivateEvent] = []
        by_market: dict[str, list[Order]] = {}
        for order in self._open.values():
            by_market.setdefault(order.market, []).append(order)
        for market, orders in by_market.items():
            span = self._model.take_trade_range(market)
            if span is None:
                continue
            low, high = (Decimal(x) / _SCALE for x in span)
            for order in orders:
                assert order.price is not None
                crossed = order.price >= low if order.side == "bid" else order.price <= high
                if crossed and order.state == "wait":
                    events.extend(
                        self._fill(order, order.price, order.remaining_volume, now, maker=True)
                    )
        return events

    def open_orders(self, access_key: str) -> list[Order]:
        """Return the waiting orders of ``access_key``, oldest first."""
        return [o for o in self._open.values() if o.access_key == access_key]

    def closed_orders(self, access_key: str) -> list[Order]:
        """Return the finished orders of ``access_key``, oldest first."""
        return [o for o in self.orders.values() if o.access_key == access_key and o.state != "wait"]

    # --- matching ----------------------------------------------------------------------

    def _best(self, market: str, side: Side) -> Decimal:
        state = self._model.states[market]
        levels = state.asks if side == "ask" else state.bids
        if not levels:
            return Decimal(state.last_price) / _SCALE
        return Decimal(levels[0][0]) / _SCALE

    def _match_now(self, order: Order, now: float) -> list[PrivateEvent]:
        if order.ord_type == "price":
            ask = self._best(order.market, "ask")
            assert order.price is not None
            volume = (order.price / ask).quantize(_EIGHT, rounding=ROUND_DOWN)
            events = self._fill(order, ask, volume, now, maker=False)
            # A filled market buy ends in "cancel": its dust amount is released (vectors).
            return events + self._close(order, "cancel", now)
        if order.ord_type == "market":
            return self._fill(
                order, self._best(order.market, "bid"), order.remaining_volume, now, maker=False
            )
        assert order.price is not None
        if order.side == "bid" and order.price >= (ask := self._best(order.market, "ask")):
            return self._fill(order, ask, order.remaining_volume, now, maker=False)
        if order.side == "ask" and order.price <= (bid := self._best(order.market, "bid")):
            return self._fill(order, bid, order.remaining_volume, now, maker=False)
        return []

    def _fill(
        self, order: Order, price: Decimal, volume: Decimal, now: float, *, maker: bool
    ) -> list[PrivateEvent]:
        acct = self.account(order.access_key)
        quote, base = order.market.split("-", 1)
        funds = price * volume
        fee = funds * self._fee
        fill = Fill(str(uuidlib.uuid4()), price, volume, funds, fee, maker, now)
        order.fills.append(fill)
        order.executed_volume += volume
        order.executed_funds += funds
        order.paid_fee += fee
        if order.ord_type != "price":
            order.remaining_volume -= volume
        if order.side == "bid":
            cost = funds + fee
            quote_row, base_row = acct.row(quote), acct.row(base)
            quote_row[1] -= cost
            order.locked -= cost
            order.remaining_fee -= fee
            held = base_row[0] + base_row[1]
            base_row[2] = (base_row[2] * held + funds) / (held + volume)
            base_row[0] += volume
        else:
            acct.row(base)[1] -= volume
            order.locked -= volume
            acct.row(quote)[0] += funds - fee
        events = [self._order_event(order, now, fill=fill)]
        events.append(self._asset_event(order.access_key, quote, now))
        events.append(self._asset_event(order.access_key, base, now))
        if order.ord_type != "price" and order.remaining_volume <= 0:
            events.extend(self._close(order, "done", now))
        return events

    def _close(self, order: Order, state: State, now: float) -> list[PrivateEvent]:
        """Finish an order, release what it still locks, and report it."""
        acct = self.account(order.access_key)
        quote, base = order.market.split("-", 1)
        currency = quote if order.side == "bid" else base
        events: list[PrivateEvent] = []
        if order.locked > 0:
            row = acct.row(currency)
            row[1] -= order.locked
            row[0] += order.locked
            order.locked = Decimal(0)
            events.append(self._asset_event(order.access_key, currency, now))
        if order.side == "bid":
            order.remaining_fee = Decimal(0) if state == "done" else order.remaining_fee
        order.state = state
        order.done_at = now
        self._open.pop(order.uuid, None)
        events.insert(0, self._order_event(order, now))
        return events

    # --- event and body shapes ---------------------------------------------------------

    def _order_event(self, order: Order, now: float, *, fill: Fill | None = None) -> PrivateEvent:
        """Build a myOrder object; WebSocket objects keep null fields (section 4.5)."""
        by_amount = order.ord_type == "price"
        avg = order.executed_funds / order.executed_volume if order.executed_volume else Decimal(0)
        ms = int(now * 1000)
        data: dict[str, object] = {
            "type": "myOrder",
            "code": order.market,
            "uuid": order.uuid,
            "ask_bid": order.side.upper(),
            "order_type": order.ord_type,
            "state": "trade" if fill else order.state,
            "trade_uuid": fill.uuid if fill else None,
            "price": fill.price if fill else order.price,
            "avg_price": avg,
            "volume": None if by_amount else order.volume,
            "remaining_volume": None if by_amount else order.remaining_volume,
            "executed_volume": None if by_amount and not fill else order.executed_volume,
            "trades_count": len(order.fills),
            "reserved_fee": order.reserved_fee,
            "remaining_fee": order.remaining_fee,
            "paid_fee": order.paid_fee,
            "locked": order.locked,
            "executed_funds": order.executed_funds,
            "time_in_force": None,
            "trade_fee": fill.fee if fill else None,
            "is_maker": fill.is_maker if fill else None,
            "identifier": order.identifier,
            "smp_type": None,
            "prevented_volume": None if by_amount else Decimal(0),
            "prevented_locked": Decimal(0),
            "trade_timestamp": int(fill.created_at * 1000) if fill else None,
            "order_timestamp": int(order.created_at * 1000),
            "timestamp": ms,
            "stream_type": "REALTIME",
        }
        return PrivateEvent(order.access_key, "myOrder", order.market, data)

    def _asset_event(self, access_key: str, currency: str, now: float) -> PrivateEvent:
        """Build a myAsset object for one changed currency (section 4.6)."""
        balance, locked, _avg = self.account(access_key).row(currency)
        ms = int(now * 1000)
        data: dict[str, object] = {
            "type": "myAsset",
            "asset_uuid": str(uuidlib.uuid4()),
            "assets": [{"currency": currency, "balance": balance, "locked": locked}],
            "asset_timestamp": ms,
            "timestamp": ms,
            "stream_type": "REALTIME",
        }
        return PrivateEvent(access_key, "myAsset", currency, data)

    def rest_body(self, order: Order, *, with_trades: bool) -> dict[str, object]:
        """Return an order in the REST shape: strings, nulls omitted (section 9.4, vectors)."""
        body: dict[str, object] = {
            "uuid": order.uuid,
            "side": order.side,
            "ord_type": order.ord_type,
        }
        if order.price is not None:
            body["price"] = _s(order.price)
        body["state"] = order.state
        body["market"] = order.market
        body["created_at"] = _iso_kst(order.created_at)
        if order.ord_type != "price":
            body["volume"] = _s(order.volume or Decimal(0))
            body["remaining_volume"] = _s(order.remaining_volume)
            body["prevented_volume"] = "0"
        body["reserved_fee"] = _s(order.reserved_fee)
        body["remaining_fee"] = _s(order.remaining_fee)
        body["paid_fee"] = _s(order.paid_fee)
        body["locked"] = _s(order.locked)
        body["prevented_locked"] = "0"
        body["executed_volume"] = _s(order.executed_volume)
        if order.ord_type == "limit":
            body["executed_funds"] = _s(order.executed_funds)
        body["trades_count"] = len(order.fills)
        if order.identifier is not None:
            body["identifier"] = order.identifier
        if with_trades:
            body["trades"] = [
                {
                    "market": order.market,
                    "uuid": f.uuid,
                    "price": _s(f.price),
                    "volume": _s(f.volume),
                    "funds": _s(f.funds),
                    "trend": "up" if order.side == "bid" else "down",
                    "created_at": _iso_kst(f.created_at),
                    "side": order.side,
                }
                for f in order.fills
            ]
        return body
