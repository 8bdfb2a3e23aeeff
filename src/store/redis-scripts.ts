/**
 * The Lua scripts of the Redis store: each one is a single atomic step on the keys of one
 * channel (one Cluster slot, thanks to the hash tag, see redis-keys.ts). Fenced writes
 * check the channel's lease token first and write nothing when it is not current
 * (docs/architecture.md, Store: "its writes are fenced by a token checked in the same atomic step").
 *
 * Values travel as ARGV, so segment bytes stay binary-safe (Lua strings are byte strings).
 * Scripts run by EVALSHA, falling back to EVAL when the server does not know the script
 * yet (a restarted server, another Cluster node); they never mutate the client.
 */
import { createHash } from 'node:crypto';
import { FENCED_REPLY, type RedisClient } from './redis-connection.js';

export interface LuaScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
  readonly sha: string;
}

function script(name: string, numberOfKeys: number, lua: string): LuaScript {
  return { name, numberOfKeys, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

const FENCED = `redis.error_reply('${FENCED_REPLY} the lease token is not current: another packager leads')`;

/** A SET fenced by the lease: segment bytes (with a TTL) or the status (without). */
export const FENCED_SET = script(
  'fenced-set',
  2,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the key to write
-- ARGV[1] the writer's lease token
-- ARGV[2] the value (bytes)
-- ARGV[3] TTL in milliseconds, or 0 for none
-- Returns OK; an error reply FENCED (nothing written) when ARGV[1] is not the current token.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return ${FENCED}
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  return redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
end
return redis.call('SET', KEYS[2], ARGV[2])
`,
);

/** An HSET fenced by the lease: a recording record written by a stitch job. */
export const FENCED_HSET = script(
  'fenced-hset',
  2,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the hash
-- ARGV[1] the writer's lease token
-- ARGV[2] the field
-- ARGV[3] the value
-- Returns HSET's answer; an error reply FENCED (nothing written) when ARGV[1] is not the current token.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return ${FENCED}
end
return redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
`,
);

/**
 * Appends an event once per key, fenced by the lease: a takeover's new leader and a thawed old
 * one can both try to announce a recording; the stream gets one event.
 */
export const APPEND_EVENT_ONCE = script(
  'append-event-once',
  3,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the channel's announced hash (event key -> event id)
-- KEYS[3] the events stream
-- ARGV[1] '1' for a fenced append, '0' for an unfenced one
-- ARGV[2] the writer's lease token (ignored unless fenced)
-- ARGV[3] the event key
-- ARGV[4] the stream's approximate MAXLEN
-- ARGV[5..] event fields and values, alternating
-- Returns the event id: the one appended now, or the one appended before for this key;
-- an error reply FENCED (nothing written) when fenced and ARGV[2] is not the current token.
if ARGV[1] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return ${FENCED}
end
local id = redis.call('HGET', KEYS[2], ARGV[3])
if id then
  return id
end
id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
redis.call('HSET', KEYS[2], ARGV[3], id)
return id
`,
);

/** On a Cluster, APPEND_EVENT_ONCE's first half (the stream is on another slot): the fence and the key. */
export const APPEND_EVENT_ONCE_CHECK = script(
  'append-event-once-check',
  2,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the channel's announced hash (event key -> event id)
-- ARGV[1] '1' for a fenced check, '0' for an unfenced one
-- ARGV[2] the writer's lease token (ignored unless fenced)
-- ARGV[3] the event key
-- Returns the event id appended before for this key, or false; an error reply FENCED when
-- fenced and ARGV[2] is not the current token.
if ARGV[1] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return ${FENCED}
end
return redis.call('HGET', KEYS[2], ARGV[3])
`,
);

/**
 * Replaces the playlists and state of a channel, then announces it (write order:
 * docs/architecture.md, Store). The new playlists are written before the stale ones are removed: the
 * HSET is the script's first write, and when maxmemory is reached (noeviction) Redis refuses
 * a script's first write that may grow memory before anything changed, so a publish refused
 * for memory leaves the previous playlists and state in place. (Once a script has written,
 * Redis lets the rest of it run: a publish is never half applied.)
 */
export const PUBLISH = script(
  'publish',
  3,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the channel's playlists hash
-- KEYS[3] the channel's state key
-- ARGV[1] '1' for a fenced publish, '0' for an unfenced one
-- ARGV[2] the writer's lease token (ignored unless fenced)
-- ARGV[3] the sequence state JSON
-- ARGV[4] the updates pub/sub channel
-- ARGV[5] the channel id to announce
-- ARGV[6..] playlist hash fields and values, alternating
-- Order: HSET the new fields, HDEL the fields this publish does not carry, SET the state,
-- PUBLISH. Returns the number of subscribers notified; an error reply FENCED (nothing
-- written) when fenced and ARGV[2] is not the current token; an OOM error reply (nothing
-- written) when Redis is out of memory under noeviction.
if ARGV[1] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return ${FENCED}
end
local current = {}
for index = 6, #ARGV, 2 do
  current[ARGV[index]] = true
end
if #ARGV > 5 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 6))
end
local stale = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not current[field] then
    stale[#stale + 1] = field
  end
end
for first = 1, #stale, 1000 do
  redis.call('HDEL', KEYS[2], unpack(stale, first, math.min(first + 999, #stale)))
end
redis.call('SET', KEYS[3], ARGV[3])
return redis.call('PUBLISH', ARGV[4], ARGV[5])
`,
);

/** Takes a free lease, or extends the one the owner already holds. */
export const ACQUIRE_LEASE = script(
  'acquire-lease',
  2,
  `-- KEYS[1] the channel's lease key
-- KEYS[2] the channel's lease counter
-- ARGV[1] the owner
-- ARGV[2] TTL in milliseconds
-- Returns the token "<counter>:<owner>": a new one when the lease was free, the current
-- one (extended) when ARGV[1] holds it already; nil when another owner holds it.
local current = redis.call('GET', KEYS[1])
if current then
  local colon = string.find(current, ':', 1, true)
  if colon and string.sub(current, colon + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return current
  end
  return false
end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
`,
);

export const RENEW_LEASE = script(
  'renew-lease',
  1,
  `-- KEYS[1] the channel's lease key
-- ARGV[1] the lease token
-- ARGV[2] TTL in milliseconds
-- Returns 1 when the token is current (the lease now expires in ARGV[2] ms), else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`,
);

export const RELEASE_LEASE = script(
  'release-lease',
  1,
  `-- KEYS[1] the channel's lease key
-- ARGV[1] the lease token
-- Returns 1 when the token was current and the lease is deleted, else 0 (left alone).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`,
);

/**
 * Adds client ids to a listener HyperLogLog and sets its TTL, in one step so no set is left
 * without one. PFADD takes the ids in chunks: Lua's unpack() is limited to a few thousand
 * values, and an access-log batch can carry more.
 */
export const RECORD_LISTENERS = script(
  'record-listeners',
  1,
  `-- KEYS[1] the listener HyperLogLog of one rendition and time bucket
-- ARGV[1] TTL in milliseconds
-- ARGV[2..] client ids
-- Returns 1 when the estimate changed, else 0 (PFADD's answer, over all chunks).
local changed = 0
for first = 2, #ARGV, 1000 do
  changed = math.max(changed, redis.call('PFADD', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV))))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return changed
`,
);

/** Runs `lua` by its SHA1, loading it with EVAL when the server answers NOSCRIPT. */
export async function runScript(
  client: RedisClient,
  lua: LuaScript,
  keys: string[],
  args: (string | Buffer | number)[],
): Promise<unknown> {
  if (keys.length !== lua.numberOfKeys) {
    throw new RangeError(`script ${lua.name} takes ${lua.numberOfKeys} keys, got ${keys.length}`);
  }
  try {
    return await client.evalsha(lua.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(lua.lua, keys.length, ...keys, ...args);
  }
}
