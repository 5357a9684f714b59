"""The Lua scripts of the relay's lease (each runs atomically in Redis).

Renewal and release compare the token and act in one step, so a relay never extends or deletes
a lease another relay took. Appends are not a script: they are a ``MULTI``/``EXEC``
transaction under ``WATCH`` of the lease (``RedisClient.fenced_append`` in
src/upbit_ws/relay/redis_client.py), which costs Redis about a third of what a Lua loop of
``XADD`` over one framed string did (benchmarks/README-relay.md). Readers use plain
``XREAD``/``XREADGROUP`` (src/upbit_ws/relay/feed.py): a Lua script that packed their replies
cost Redis about 14 µs per entry against about 1 µs for ``XREAD``, and Redis's one thread is
what every reader shares. Redis 6.2 or newer (``XAUTOCLAIM``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["RELEASE", "RENEW"]

#: KEYS: lease. ARGV: token, ttl ms. Extends the lease only if it is still ours (1, else 0).
RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS: lease. ARGV: token. Deletes the lease only if it is still ours (1, else 0).
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
