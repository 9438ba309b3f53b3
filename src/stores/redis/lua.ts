/**
 * The Lua helpers every script of the Redis store starts with: key names (built from the prefix
 * exactly as `keys.ts` builds them), reading a checkpoint, the TTL rules and the runs-by-name
 * entry checks.
 */
import { RUNS_INDEX_MARKER, SEGMENTS } from "./keys.js";

/** Strips the indentation of a script written inside a template literal. */
export const lua = (text: string) => text.replace(/^ {4}/gm, "").trim();

const PRELUDE = lua(`
    local RUN_ID = '^[A-Za-z0-9][A-Za-z0-9._-]*$'
    local MARKER = '${RUNS_INDEX_MARKER}'
    local function ckptKey(prefix, id) return prefix .. '${SEGMENTS.checkpoint}' .. id end
    local function indexKey(prefix, run) return prefix .. '${SEGMENTS.run}' .. run .. '${SEGMENTS.index}' end
    local function outputsKey(prefix, run) return prefix .. '${SEGMENTS.run}' .. run .. '${SEGMENTS.outputs}' end
    local function headKey(prefix, run) return prefix .. '${SEGMENTS.run}' .. run .. '${SEGMENTS.head}' end
    local function nameKey(prefix, name, open)
      local tail = '${SEGMENTS.nameRuns}'
      if open then tail = '${SEGMENTS.nameOpen}' end
      return prefix .. '${SEGMENTS.name}' .. name .. tail
    end
    local function typeOf(key) return redis.call('TYPE', key)['ok'] end
    -- One checkpoint as {id, score, kind, meta|type, run, body}; nil when the key is gone.
    local function readCheckpoint(key, id, score, withBody)
      local t = typeOf(key)
      if t == 'none' then return nil end
      if t ~= 'hash' then return {id, score, 'wrongtype', t, false, false} end
      if withBody then
        local v = redis.call('HMGET', key, 'meta', 'run', 'body')
        return {id, score, 'hash', v[1], v[2], v[3]}
      end
      local v = redis.call('HMGET', key, 'meta', 'run')
      return {id, score, 'hash', v[1], v[2], false}
    end
    -- Extends a key's TTL to at least ms, never shortening it; a key without one gets one.
    local function atLeast(key, ms)
      local pttl = redis.call('PTTL', key)
      if pttl == -1 or (pttl >= 0 and pttl < ms) then redis.call('PEXPIRE', key, ms) end
    end
    -- Gives every key of a run the same TTL; index members whose hash expired are pruned.
    -- The head (and the name sets it is listed in) keep at least that TTL.
    local function refresh(prefix, run, ttl)
      if ttl <= 0 or not string.match(run, RUN_ID) then return end
      local index = indexKey(prefix, run)
      if typeOf(index) == 'zset' then
        for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
          if redis.call('EXPIRE', ckptKey(prefix, id), ttl) == 0 then redis.call('ZREM', index, id) end
        end
        redis.call('EXPIRE', index, ttl)
      end
      redis.call('EXPIRE', outputsKey(prefix, run), ttl)
      local head = headKey(prefix, run)
      if typeOf(head) ~= 'hash' then return end
      atLeast(head, ttl * 1000)
      local name = redis.call('HGET', head, 'name')
      if name then
        atLeast(nameKey(prefix, name, false), ttl * 1000)
        atLeast(nameKey(prefix, name, true), ttl * 1000)
      end
    end
    -- A name-set member's entry {run, created, finished, member}, or nil when the member is dead:
    -- its head is gone, or names another entry (the run expired and its id was used again).
    local function liveEntry(prefix, name, member, open)
      local run = string.match(member, '^[01]%d+|([A-Za-z0-9][A-Za-z0-9._-]*)$')
      if not run then return nil end
      local head = headKey(prefix, run)
      if typeOf(head) ~= 'hash' then return nil end
      local h = redis.call('HMGET', head, 'member', 'name', 'created', 'finished')
      if h[1] ~= member or h[2] ~= name or (open and h[4] == '1') then return nil end
      return {run, h[3], h[4], member}
    end
    -- Drops the name set's oldest members when dead: expired runs are mostly the oldest.
    local function pruneOldest(prefix, name, open)
      local key = nameKey(prefix, name, open)
      for _, member in ipairs(redis.call('ZRANGE', key, 0, 1)) do
        if not liveEntry(prefix, name, member, open) then redis.call('ZREM', key, member) end
      end
    end
    -- Drops sampled ids from runs whose data expired, so runs stays pruned between reads.
    local function pruneRuns(prefix, runs)
      for _, run in ipairs(redis.call('ZRANDMEMBER', runs, 3)) do
        if string.match(run, RUN_ID) and redis.call('EXISTS', indexKey(prefix, run), outputsKey(prefix, run)) == 0 then
          redis.call('ZREM', runs, run)
        end
      end
    end
    -- Keeps the head (the fencing token) for at least the run's TTL and the lease's.
    local function holdHead(head, ttl, leaseMs)
      if ttl <= 0 then return end
      atLeast(head, math.max(ttl * 1000, leaseMs))
    end
    local function decodeLease(raw)
      if not raw then return nil end
      local ok, lease = pcall(cjson.decode, raw)
      if ok and type(lease) == 'table' and type(lease.owner) == 'string' and type(lease.token) == 'number' then
        return lease
      end
      return nil
    end
    local function serverNow()
      local t = redis.call('TIME')
      return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    -- An error reply when the feed's key holds something else: checked before a script's first write.
    local function feedWrongType(key)
      local t = typeOf(key)
      if t ~= 'none' and t ~= 'stream' then return redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not the feed stream') end
      return nil
    end
    -- Appends one change to the feed (trimmed to about maxlen entries; under the run's TTL rule).
    -- A stream that is gone (expired, deleted) took changes no one can read any more with it, and
    -- its successor's entry ids may even repeat the old ones: the feed gets a new id (the key
    -- beside the stream), so every cursor into the lost stream is refused.
    local function feedAdd(key, maxlen, ttl, kind, run, name, id, seq)
      local lost = redis.call('EXISTS', key) == 0
      local now = serverNow()
      local entry = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'type', kind, 'pid', run,
        'name', name or '', 'cp', id or '', 'seq', seq or '', 'at', now)
      if lost then
        -- Built from the stream's key, not declared: it shares the prefix (and any hash tag).
        local idKey = key .. '${SEGMENTS.feedId.slice(SEGMENTS.feed.length)}'
        local old = redis.call('GET', idKey)
        if old then redis.call('SET', idKey, string.sub(redis.sha1hex(old .. '|' .. entry .. '|' .. now), 1, 16)) end
      end
      if tonumber(ttl) > 0 then redis.call('EXPIRE', key, ttl) end
    end
`);

/** A script as ioredis `defineCommand` takes it. */
export interface ScriptDefinition {
  numberOfKeys: number;
  lua: string;
}

/** A script with the shared helpers prepended. */
export const script = (numberOfKeys: number, body: string): ScriptDefinition => ({
  numberOfKeys,
  lua: `${PRELUDE}\n${lua(body)}`,
});
