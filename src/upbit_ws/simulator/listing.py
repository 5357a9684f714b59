"""The simulated market list: real-looking KRW, BTC and USDT markets with tick sizes.

The list is the same for every seed (the seed drives prices, not listings), so code lists in
tests and demos are stable. The first markets are real Upbit listings (section 9.1 sample rows);
the rest are generated with plausible English and Korean names.

Section numbers cited here refer to the protocol notes, ``docs/protocol.md``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

__all__ = ["PRICE_SCALE", "MarketInfo", "build_listing", "tick_units"]

#: Prices and sizes are integers of 1e-8 (every Upbit tick size is a multiple of it).
PRICE_SCALE: Final = 100_000_000

# (symbol, Korean name, English name, approximate KRW price)
_REAL: Final[tuple[tuple[str, str, str, float], ...]] = (
    ("BTC", "비트코인", "Bitcoin", 109_800_000),
    ("ETH", "이더리움", "Ethereum", 4_100_000),
    ("XRP", "엑스알피(리플)", "XRP", 3_050),
    ("SOL", "솔라나", "Solana", 215_000),
    ("DOGE", "도지코인", "Dogecoin", 310),
    ("ADA", "에이다", "Cardano", 920),
    ("TRX", "트론", "TRON", 330),
    ("AVAX", "아발란체", "Avalanche", 36_000),
    ("LINK", "체인링크", "Chainlink", 21_000),
    ("DOT", "폴카닷", "Polkadot", 6_900),
    ("BCH", "비트코인캐시", "Bitcoin Cash", 640_000),
    ("ETC", "이더리움클래식", "Ethereum Classic", 29_000),
    ("SHIB", "시바이누", "Shiba Inu", 0.021),
    ("NEAR", "니어프로토콜", "NEAR Protocol", 4_800),
    ("SUI", "수이", "Sui", 4_200),
    ("APT", "앱토스", "Aptos", 7_900),
    ("ARB", "아비트럼", "Arbitrum", 690),
    ("XLM", "스텔라루멘", "Stellar Lumens", 410),
    ("HBAR", "헤데라", "Hedera", 260),
    ("ATOM", "코스모스", "Cosmos", 6_100),
    ("SAND", "샌드박스", "The Sandbox", 390),
    ("MANA", "디센트럴랜드", "Decentraland", 420),
    ("AAVE", "에이브", "Aave", 352_000),
    ("EOS", "이오스", "EOS", 810),
    ("1INCH", "1인치네트워크", "1inch Network", 380),
    ("AERGO", "아르고", "Aergo", 148),
    ("ZIL", "질리카", "Zilliqa", 19.5),
    ("SEI", "세이", "Sei", 410),
    ("STX", "스택스", "Stacks", 1_450),
    ("IMX", "이뮤터블엑스", "Immutable", 1_520),
    ("ALGO", "알고랜드", "Algorand", 310),
    ("VET", "비체인", "VeChain", 41.2),
    ("ONDO", "온도파이낸스", "Ondo Finance", 1_320),
    ("PEPE", "페페", "Pepe", 0.0152),
    ("WLD", "월드코인", "Worldcoin", 1_980),
    ("ENS", "이더리움네임서비스", "Ethereum Name Service", 31_500),
    ("GRT", "더그래프", "The Graph", 205),
    ("CHZ", "칠리즈", "Chiliz", 98.4),
    ("QTUM", "퀀텀", "Qtum", 3_020),
    ("NEO", "네오", "NEO", 11_900),
    ("IOTA", "아이오타", "IOTA", 290),
    ("THETA", "쎄타토큰", "Theta Token", 1_480),
    ("FLOW", "플로우", "Flow", 790),
    ("AXS", "엑시인피니티", "Axie Infinity", 6_800),
    ("BAT", "베이직어텐션토큰", "Basic Attention Token", 245),
    ("ZRX", "제로엑스", "0x Protocol", 395),
    ("KNC", "카이버네트워크", "Kyber Network", 610),
    ("STORJ", "스토리지", "Storj", 520),
    ("ICX", "아이콘", "ICON", 198),
    ("ONT", "온톨로지", "Ontology", 245),
    ("GAS", "가스", "Gas", 4_050),
    ("POL", "폴리곤 에코시스템 토큰", "POL (ex-MATIC)", 305),
    ("SIGN", "사인", "Sign", 102),
    ("T", "쓰레스홀드", "Threshold", 29.8),
    ("HIVE", "하이브", "Hive", 305),
    ("STEEM", "스팀", "Steem", 246),
    ("ARDR", "아더", "Ardor", 101),
    ("CVC", "시빅", "Civic", 152),
)

# Latin/Hangul syllable pairs for generated names ("Kanora" / "카노라").
_SYLLABLES: Final[tuple[tuple[str, str], ...]] = (
    ("ka", "카"), ("no", "노"), ("ra", "라"), ("mi", "미"), ("zen", "젠"), ("tor", "토르"),
    ("nex", "넥스"), ("vo", "보"), ("la", "라"), ("ri", "리"), ("sa", "사"), ("to", "토"),
    ("ne", "네"), ("ku", "쿠"), ("bi", "비"), ("da", "다"), ("lo", "로"), ("mo", "모"),
    ("fi", "피"), ("xa", "자"), ("ve", "베"), ("lu", "루"), ("pi", "피"), ("go", "고"),
    ("sol", "솔"), ("ter", "테르"), ("on", "온"), ("ix", "익스"), ("ar", "아르"), ("el", "엘"),
)  # fmt: skip
_SUFFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("", ""), ("", ""), ("", ""), (" Protocol", "프로토콜"), (" Network", "네트워크"),
    (" Chain", "체인"), (" Finance", "파이낸스"), (" Coin", "코인"),
)  # fmt: skip
_BTC_BASES: Final = ("ETH", "XRP", "SOL", "DOGE", "ADA", "TRX", "LINK", "SIGN", "DOT", "ZIL")
_USDT_BASES: Final = ("BTC", "ETH", "XRP", "SOL", "DOGE", "ADA", "TRX", "LINK")
_KRW_PER_USDT: Final = 1_390.0
# Listing generation is fixed, not seeded by the config: the list must not change with --seed.
_LISTING_SEED: Final = 20_240_807


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One listed market as ``GET /v1/market/all`` describes it (section 9.1)."""

    market: str
    korean_name: str
    english_name: str
    #: Price at the start of a run, in quote currency.
    base_price: float
    #: ``market_event.warning`` and the five ``caution`` flags, in wire order.
    warning: bool = False
    caution: tuple[bool, bool, bool, bool, bool] = (False, False, False, False, False)

    @property
    def quote(self) -> str:
        """Return the quote currency (``KRW``, ``BTC``, ``USDT``)."""
        return self.market.split("-", 1)[0]

    @property
    def base(self) -> str:
        """Return the traded coin (``BTC`` for ``KRW-BTC``)."""
        return self.market.split("-", 1)[1]


def tick_units(quote: str, price_units: int) -> int:
    """Return the tick size, in 1e-8 units, for a price (Upbit's KRW price bands)."""
    if quote == "BTC":
        return 1
    price = price_units / PRICE_SCALE
    if quote == "USDT":
        # USDT markets quote three significant decimals below the leading digit group.
        for floor, tick in ((10_000, 1.0), (100, 0.01), (1, 0.0001), (0.0, 0.00000001)):
            if price >= floor:
                return max(1, round(tick * PRICE_SCALE))
    bands = (
        (2_000_000, 1_000),
        (1_000_000, 500),
        (500_000, 100),
        (100_000, 50),
        (10_000, 10),
        (1_000, 1),
        (100, 0.1),
        (10, 0.01),
        (1, 0.001),
        (0.1, 0.0001),
        (0.0, 0.000001),
    )
    for floor, tick in bands:
        if price >= floor:
            return max(1, round(tick * PRICE_SCALE))
    return 1  # pragma: no cover - the last band catches everything


def _generated_names(count: int, rng: random.Random, taken: set[str]) -> list[MarketInfo]:
    """Invent ``count`` plausible coins with unique symbols."""
    out: list[MarketInfo] = []
    while len(out) < count:
        parts = rng.sample(_SYLLABLES, rng.choice((2, 2, 3)))
        latin = "".join(p[0] for p in parts)
        hangul = "".join(p[1] for p in parts)
        suffix = rng.choice(_SUFFIXES)
        symbol = latin.upper()[: rng.choice((3, 4, 4, 5))]
        if symbol in taken:
            continue
        taken.add(symbol)
        price = 10 ** rng.uniform(0.5, 5.0)
        warning = rng.random() < 0.06
        caution = tuple(rng.random() < 0.03 for _ in range(5))
        out.append(
            MarketInfo(
                market=f"KRW-{symbol}",
                korean_name=hangul + suffix[1],
                english_name=latin.capitalize() + suffix[0],
                base_price=price,
                warning=warning,
                caution=caution,  # type: ignore[arg-type]
            )
        )
    return out


def build_listing(*, krw: int, btc: int, usdt: int) -> tuple[MarketInfo, ...]:
    """Return the market list: ``krw`` KRW markets (busiest first), then BTC and USDT ones."""
    rng = random.Random(_LISTING_SEED)
    real = [
        MarketInfo(market=f"KRW-{sym}", korean_name=ko, english_name=en, base_price=price)
        for sym, ko, en, price in _REAL
    ]
    krw_list = real[:krw]
    taken = {sym for sym, *_ in _REAL}
    krw_list += _generated_names(max(0, krw - len(krw_list)), rng, taken)
    prices = {m.base: m.base_price for m in krw_list}
    btc_price = prices["BTC"]
    btc_list = [
        MarketInfo(
            market=f"BTC-{base}",
            korean_name=next(m.korean_name for m in krw_list if m.base == base),
            english_name=next(m.english_name for m in krw_list if m.base == base),
            base_price=prices[base] / btc_price,
        )
        for base in _pick_bases(_BTC_BASES, krw_list, btc, exclude="BTC")
    ]
    usdt_list = [
        MarketInfo(
            market=f"USDT-{base}",
            korean_name=next(m.korean_name for m in krw_list if m.base == base),
            english_name=next(m.english_name for m in krw_list if m.base == base),
            base_price=prices[base] / _KRW_PER_USDT,
        )
        for base in _pick_bases(_USDT_BASES, krw_list, usdt, exclude="")
    ]
    return tuple(krw_list + btc_list + usdt_list)


def _pick_bases(
    preferred: tuple[str, ...], krw_list: list[MarketInfo], count: int, *, exclude: str
) -> list[str]:
    """Choose ``count`` coin symbols for a non-KRW quote: real favourites first."""
    available = [m.base for m in krw_list if m.base != exclude]
    chosen = [b for b in preferred if b in available][:count]
    for base in available:
        if len(chosen) >= count:
            break
        if base not in chosen:
            chosen.append(base)
    return chosen
