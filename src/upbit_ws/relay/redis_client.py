"""The one place that imports redis-py: a small typed client and the error translation.

redis-py is the optional ``redis`` extra (``pip install 'upbit-ws[redis]'``); it is imported
when a relay or feed opens its client, so ``import upbit_ws`` and ``import upbit_ws.relay`` work
without it. Every Redis failure reaches the relay's code as :class:`RedisUnavailableError`
(Redis cannot be reached or the connection broke: retried) or :class:`RedisCommandError`
(Redis answered with an error: a bug or a misconfigured server), raised ``from`` redis-py's
exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from upbit_ws.core.errors import InvalidInputError, TransportError, UpbitWsError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "RedisClient",
    "RedisCommandError",
    "RedisUnavailableError",
    "check_redis_url",
]

#: Seconds to wait for a connection or a reply before calling Redis unreachable. Blocking
#: reads add their block time to it.
SOCKET_TIMEOUT: Final = 5.0
CONNECT_TIMEOUT: Final = 2.0
#: Stream reads whose replies the feed takes as hiredis built them (see RedisClient.xread).
_RAW_REPLIES: Final = ("XREAD", "XREADGROUP", "XAUTOCLAIM")
#: Tries of a fenced append whose watched keys keep changing (our own lease renewals).
_WATCH_TRIES: Final = 8


def _raw(response: Any, **options: Any) -> Any:
    """A redis-py reply callback that leaves the reply as it is."""
    return response


class RedisUnavailableError(TransportError):
    """Redis cannot be reached, or the connection to it broke; ``url`` has no password."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"Redis at {url} is unavailable: {reason}")


class RedisCommandError(UpbitWsError):
    """Redis answered a command with an error (``message`` is Redis's text)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"Redis refused a command: {message}")


def check_redis_url(url: str) -> str:
    """Return ``url`` if it is a redis:// or rediss:// URL, else raise InvalidInputError."""
    from urllib.parse import urlsplit

    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("redis", "rediss", "unix")
        or not (parts.netloc or parts.path)
    ):
        raise InvalidInputError(f"Redis URL must look like redis://HOST:PORT[/DB], got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidInputError(f"Redis URL has a bad port: {url!r}") from exc
    return url


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


class RedisClient:
    """An asyncio Redis connection pool with the few typed commands the relay needs."""

    __slots__ = ("_redis", "_scripts", "url")

    def __init__(self, url: str) -> None:
        check_redis_url(url)
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
        except ImportError as exc:  # pragma: no cover - the extra is installed in the venv
            raise InvalidInputError(
                "the relay needs redis-py: pip install 'upbit-ws[redis]'"
            ) from exc
        self.url = _redacted(url)
        self._redis: Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            # Our own loops retry with backoff and report outages; none inside redis-py.
            retry=Retry(NoBackoff(), 0),
            protocol=2,
        )
        for command in _RAW_REPLIES:
            self._redis.set_response_callback(command, _raw)
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<RedisClient {self.url}>"

    @contextlib.asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Translate redis-py's exceptions (the only place that names them)."""
        from redis import exceptions as rex

        try:
            yield
        except (rex.ConnectionError, rex.TimeoutError, OSError) as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # redis-py can turn a cancelled read into a ConnectionError; a cancellation
                # must stay one, or the caller's retry loop would swallow it.
                raise asyncio.CancelledError from exc
            raise RedisUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
        except rex.ResponseError as exc:
            raise RedisCommandError(str(exc)) from exc
        except rex.RedisError as exc:
            raise RedisUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        """Close every pooled connection."""
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    async def ping(self) -> None:
        """Raise RedisUnavailableError unless Redis answers."""
        async with self._translated():
            await cast(Any, self._redis.ping())

    async def script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a Lua script (cached by SHA, loaded again after a Redis restart)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis.register_script(source)
        async with self._translated():
            return await script(keys=list(keys), args=list(args))

    async def fenced_append(
        self,
        lease: tuple[str, str],
        batch: tuple[str, str],
        entries: Sequence[tuple[str, bytes, int, bytes]],
        lease_ms: int,
    ) -> int:
        """Append stream entries if the lease is ours, once per batch id; extend the lease.

        ``lease`` is (key, our token), ``batch`` (key holding the last batch id, this batch's
        id), ``entries`` (stream, field, MAXLEN, payload). ``MULTI``/``EXEC`` under ``WATCH``
        of both keys: the lease checked, the entries appended (``XADD MAXLEN ~``), the batch id
        recorded and the lease extended in one transaction, which Redis refuses if another
        relay took the lease (or it expired) after the check. Returns the entries appended, -1
        when the lease is not ours, -2 when this batch was appended already (a retry after a
        lost reply). Our own lease renewal touching the lease meanwhile only means another try.
        """
        from redis.exceptions import WatchError

        (lease_key, token), (batch_key, batch_id) = lease, batch
        async with self._translated():
            pipe: Any = self._redis.pipeline(transaction=True)
            try:
                for _ in range(_WATCH_TRIES):
                    try:
                        await pipe.watch(lease_key, batch_key)
                        holder, last = await pipe.mget(lease_key, batch_key)
                        if holder != token.encode():
                            return -1
                        if last == batch_id.encode():
                            return -2
                        pipe.multi()
                        for key, field, maxlen, payload in entries:
                            pipe.execute_command(
                                "XADD", key, "MAXLEN", "~", maxlen, "*", field, payload
                            )
                        pipe.execute_command("SET", batch_key, batch_id)
                        pipe.execute_command("PEXPIRE", lease_key, lease_ms)
                        await pipe.execute()
                        return len(entries)
                    except WatchError:
                        continue  # a key we watch changed: look at the lease again
                return -1  # the lease keeps changing under us: treat it as not ours
            finally:
                await pipe.reset()

    async def set_nx(self, key: str, value: str, *, px: int) -> bool:
        """``SET key value NX PX px``: return whether it was set."""
        async with self._translated():
            return bool(await cast(Any, self._redis.set(key, value, nx=True, px=px)))

    async def pttl(self, key: str) -> int:
        """Return the key's time to live in ms (-2: no key, -1: no expiry)."""
        async with self._translated():
            return int(await cast(Any, self._redis.pttl(key)))

    async def last_entries(
        self, keys: Sequence[str], count: int
    ) -> list[list[tuple[bytes, dict[bytes, bytes]]]]:
        """Return up to ``count`` newest entries of each stream, newest first (pipelined)."""
        async with self._translated():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.xrevrange(key, count=count)
            replies = await pipe.execute()
        return [list(r or []) for r in replies]

    async def last_ids(self, keys: Sequence[str]) -> list[str]:
        """Return the newest entry id of each stream ("0-0" for an empty or missing one)."""
        async with self._translated():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.xrevrange(key, count=1)
            replies = await pipe.execute()
        return [r[0][0].decode() if r else "0-0" for r in replies]

    async def xread(
        self, streams: Mapping[str, str], *, count: int, block_ms: int | None
    ) -> list[Any]:
        """``XREAD [BLOCK]``: entries after the given ids, as Redis sent them (raw, below).

        Raw: ``[[key, [[id, [field, value]], ...]], ...]`` (bytes), or ``[]`` when the block
        ran out. redis-py's reply callback (a Python dict per entry) is not applied: hiredis
        builds the lists in C and the feed decodes the payloads itself.
        """
        args: list[Any] = ["XREAD", "COUNT", count]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", *streams, *streams.values()]
        async with self._translated():
            return list(await cast(Any, self._redis).execute_command(*args) or [])

    async def xreadgroup(
        self,
        group: str,
        consumer: str,
        streams: Mapping[str, str],
        *,
        count: int,
        block_ms: int | None,
    ) -> list[Any]:
        """``XREADGROUP [BLOCK]`` for ``consumer`` of ``group``; raw, as :meth:`xread`.

        An id of ``>`` asks for new entries; any other id for this consumer's own pending
        entries after it (an entry trimmed since comes back as ``[id, None]``).
        """
        args: list[Any] = ["XREADGROUP", "GROUP", group, consumer, "COUNT", count]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        args += ["STREAMS", *streams, *streams.values()]
        async with self._translated():
            return list(await cast(Any, self._redis).execute_command(*args) or [])

    async def autoclaim(
        self, keys: Sequence[str], group: str, consumer: str, *, idle_ms: int, count: int
    ) -> list[list[Any]]:
        """``XAUTOCLAIM`` per stream (pipelined): the raw entries claimed from each."""
        async with self._translated():
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command(
                    "XAUTOCLAIM", key, group, consumer, idle_ms, "0-0", "COUNT", count
                )
            replies = await pipe.execute()
        return [list(r[1] or []) for r in replies]

    async def create_group(self, key: str, group: str, start: str) -> None:
        """Create consumer ``group`` on stream ``key`` at ``start`` (and the stream); idempotent."""
        try:
            async with self._translated():
                await cast(Any, self._redis.xgroup_create(key, group, id=start, mkstream=True))
        except RedisCommandError as exc:
            if "BUSYGROUP" not in exc.message:
                raise

    async def ack(self, acks: dict[str, list[str]], group: str) -> int:
        """``XACK`` the given ids per stream; return how many were acknowledged."""
        async with self._translated():
            pipe = self._redis.pipeline(transaction=False)
            for key, ids in acks.items():
                pipe.xack(key, group, *ids)
            replies = await pipe.execute()
        return sum(int(r) for r in replies)

    async def ack_each(self, entries: Sequence[tuple[str, str]], group: str) -> list[int]:
        """``XACK`` each (stream, id) of ``entries`` (pipelined): 1 or 0 per entry, in order."""
        if not entries:
            return []
        async with self._translated():
            pipe = self._redis.pipeline(transaction=False)
            for key, entry_id in entries:
                pipe.xack(key, group, entry_id)
            replies = await pipe.execute()
        return [int(r) for r in replies]

    async def range_all(self, key: str, start: str = "-") -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Return every entry of a stream from ``start`` (tests and small streams)."""
        async with self._translated():
            got = await cast(Any, self._redis.xrange(key, min=start))
        return list(got or [])
