"""The Lua scripts the relay runs inside Redis (each runs atomically).

Why scripts: the append is *fenced* (it checks the lease token in the same atomic step, so a
relay that lost its lease can never append after the new leader started) and *idempotent* (a
batch whose reply was lost to a broken connection is not appended twice on retry), and it
moves a whole batch in one string per round trip. Readers use plain ``XREAD``/``XREADGROUP``
(src/upbit_ws/relay/feed.py): a Lua script that packed their replies cost Redis about 14 µs
per entry against about 1 µs for ``XREAD`` (benchmarks/README-relay.md), and Redis's one
thread is what every reader shares. Redis 6.2 or newer (``XAUTOCLAIM``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["APPEND", "RELEASE", "RENEW"]

#: KEYS: lease, batch key, stream keys... ARGV: token, batch id, blob, lease ttl ms.
#: A successful append also extends the lease: a leader whose loop is too busy to run its
#: renewal on time keeps the lease as long as its appends get through.
#: The blob is entries framed as (>H key index, >B kind 0 = "m" / 1 = "g" / 2 = "m2",
#: >I4 MAXLEN of the stream for this entry, >I4 length, payload); see codec.py.
#: Returns the number of entries appended, -1 when the lease is not ours, -2 when this batch
#: was appended already (a retry after a lost reply).
APPEND: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) == ARGV[2] then return -2 end
local blob = ARGV[3]
local pos, size, n = 1, #blob, 0
local fields = {'m', 'g', 'm2'}
while pos <= size do
  local index, kind, maxlen, len, at = struct.unpack('>HBI4I4', blob, pos)
  redis.call('XADD', KEYS[index], 'MAXLEN', '~', maxlen, '*', fields[kind + 1],
             string.sub(blob, at, at + len - 1))
  pos = at + len
  n = n + 1
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return n
"""

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
