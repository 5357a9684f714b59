"""``upbit-ws relay``: relay Upbit to Redis Streams until interrupted (docs/relay.md).

``upbit-ws relay --redis redis://127.0.0.1:6379 trade KRW-BTC KRW-ETH`` appends every trade of
the two markets to ``upbit:trade:KRW-BTC`` and ``upbit:trade:KRW-ETH``. TYPE may list several
types (``ticker,trade``), each for the same codes. Start the same command twice (on two
machines) for high availability: one streams, the other takes over when it stops.

Bad input and an unreachable Redis print one line to stderr and exit 2 and 1; SIGINT and SIGTERM
flush, release the lease and exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import NoReturn

import click

from upbit_ws.core.constants import DEFAULT_BASE_URL
from upbit_ws.core.errors import ConfigError, InvalidInputError, UpbitWsError

__all__ = ["relay"]


def _fail(message: str, status: int) -> NoReturn:
    click.echo(f"upbit-ws relay: {message}", err=True)
    sys.exit(status)


@click.command()
@click.option("--redis", "redis_url", required=True, help="Redis URL: redis://HOST:PORT[/DB].")
@click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="Upbit REST base URL (the simulator's URL for tests).",
)
@click.option("--maxlen", type=int, default=None, help="Messages kept per stream, about.")
@click.option("--lease", "lease_seconds", type=float, default=None, help="Lease time to live, s.")
@click.option(
    "--buffer-size",
    type=int,
    default=None,
    help="Entries held while Redis is down (default 65536); past it the oldest are dropped.",
)
@click.option("--lease-name", default=None, help="Lease of this relay set (default: relay).")
@click.option("--namespace", default=None, help="Key prefix (default: upbit).")
@click.option("--relay-id", default=None, help="This relay's name in events.")
@click.option("-v", "--verbose", is_flag=True, help="Log role changes and outages to stderr.")
@click.argument("type_", metavar="TYPE")
@click.argument("codes", nargs=-1)
def relay(
    *,
    redis_url: str,
    base_url: str,
    maxlen: int | None,
    lease_seconds: float | None,
    buffer_size: int | None,
    lease_name: str | None,
    namespace: str | None,
    relay_id: str | None,
    verbose: bool,
    type_: str,
    codes: tuple[str, ...],
) -> None:
    """Relay TYPE (e.g. trade, or ticker,trade) for CODE... from Upbit to Redis Streams."""
    from upbit_ws.relay import RedisUnavailableError, Relay, RelayConfig

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    options: dict[str, object] = {
        name: value
        for name, value in (
            ("maxlen", maxlen),
            ("lease_seconds", lease_seconds),
            ("buffer_size", buffer_size),
            ("lease_name", lease_name),
            ("namespace", namespace),
        )
        if value is not None
    }
    try:
        config = RelayConfig(**options)  # type: ignore[arg-type]
        types = [t.strip() for t in type_.split(",") if t.strip()]
        relay = Relay(
            redis_url,
            dict.fromkeys(types, codes),
            base_url=base_url,
            config=config,
            relay_id=relay_id,
        )
    except (InvalidInputError, ConfigError) as exc:
        _fail(str(exc), 2)
    try:
        asyncio.run(_serve(relay))
    except RedisUnavailableError as exc:
        _fail(str(exc), 1)
    except InvalidInputError as exc:
        _fail(str(exc), 2)
    except UpbitWsError as exc:
        _fail(str(exc), 1)


async def _serve(relay: object) -> None:
    from upbit_ws.relay import Relay

    assert isinstance(relay, Relay)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    await relay.start()
    streams = ", ".join(f"{t} {','.join(c) or '-'}" for t, c in relay.subscriptions.items())
    target = f"{relay.config.namespace}:* at {relay.redis_url}"
    click.echo(f"relay {relay.relay_id}: {streams} -> {target}")
    try:
        await relay.wait_closed()
    except asyncio.CancelledError:
        pass
    finally:
        await relay.aclose()
        stats = relay.statistics()
        click.echo(
            f"relay {relay.relay_id}: stopped; {stats.received} received, "
            f"{stats.appended} appended, {stats.dropped} dropped"
        )


if __name__ == "__main__":
    relay()
