"""The Lua scripts the relay and its readers run inside Redis (each runs atomically).

Why scripts: the append is *fenced* (it checks the lease token in the same atomic step, so a
relay that lost its lease can never append after the new leader started) and *idempotent* (a
batch whose reply was lost to a broken connection is not appended twice on retry); and both
sides move many entries per round trip in one string, because parsing Redis replies in Python
costs several microseconds per element (a stream entry is six), which would cap a reader far
below the relay. The read scripts wrap the stored msgpack payloads into one msgpack array that
msgspec decodes into typed messages in one C call. Redis 6.2 or newer (exclusive ``XRANGE``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["APPEND", "GROUP_READ", "READ", "RELEASE", "RENEW"]

#: KEYS: lease, batch key, stream keys... ARGV: token, batch id, maxlen, blob, lease ttl ms.
#: A successful append also extends the lease: a leader whose loop is too busy to run its
#: renewal on time keeps the lease as long as its appends get through.
#: The blob is entries framed as (>H key index, >B kind 0 = "m" / 1 = "g", >I4 length, payload).
#: Returns the number of entries appended, -1 when the lease is not ours, -2 when this batch
#: was appended already (a retry after a lost reply).
APPEND: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) == ARGV[2] then return -2 end
local maxlen, blob = ARGV[3], ARGV[4]
local pos, size, n = 1, #blob, 0
local fields = {'m', 'g'}
while pos <= size do
  local index, kind, len, at = struct.unpack('>HBI4', blob, pos)
  redis.call('XADD', KEYS[index], 'MAXLEN', '~', maxlen, '*', fields[kind + 1],
             string.sub(blob, at, at + len - 1))
  pos = at + len
  n = n + 1
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
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

# Shared tail of the read scripts: wrap an entry as msgpack [index, id, message|nil, gap|nil].
_PACK: Final = """
local parts, n = {}, 0
local function add(i, e)
  local id, f = e[1], e[2]
  if not f then return end
  local head = string.char(0x94, 0xcd, math.floor(i / 256), i % 256, 0xd9, #id) .. id
  n = n + 1
  if f[1] == 'm' then
    parts[n] = head .. f[2] .. '\\192'
  else
    parts[n] = head .. '\\192' .. f[2]
  end
end
"""

#: KEYS: streams. ARGV: the last id read of each stream (exclusive), then the most entries per
#: stream. Returns one msgpack array of [key index, id, message or nil, gap or nil].
READ: Final = (
    _PACK
    + """
local count = ARGV[#KEYS + 1]
for i = 1, #KEYS do
  local entries = redis.call('XRANGE', KEYS[i], '(' .. ARGV[i], '+', 'COUNT', count)
  for _, e in ipairs(entries) do add(i, e) end
end
return struct.pack('>BI4', 0xdd, n) .. table.concat(parts)
"""
)

#: KEYS: streams. ARGV: group, consumer, most entries per stream, claim idle ms (0: no claim),
#: then per stream the read id (">" for new entries; an id: this consumer's own pending entries
#: after it, so a restarted consumer gets back what it had not acknowledged). Claims entries
#: other consumers left unacknowledged longer than the idle bound (XAUTOCLAIM), then reads.
#: Same answer as READ.
GROUP_READ: Final = (
    _PACK
    + """
local group, consumer, count, idle = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
for i = 1, #KEYS do
  if idle > 0 then
    local claimed = redis.call('XAUTOCLAIM', KEYS[i], group, consumer, idle, '0-0',
                               'COUNT', count)
    for _, e in ipairs(claimed[2]) do add(i, e) end
  end
  local got = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
                         'STREAMS', KEYS[i], ARGV[4 + i])
  if got then
    for _, e in ipairs(got[1][2]) do add(i, e) end
  end
end
return struct.pack('>BI4', 0xdd, n) .. table.concat(parts)
"""
)
