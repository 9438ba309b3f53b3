/**
 * The Redis store's Lua scripts. A script runs atomically, like MULTI/EXEC: no other client's
 * command runs between its steps. Unlike MULTI/EXEC it can also read and decide, so a fenced
 * write checks the lease and writes in one step, and each operation is one round trip.
 *
 * A script is not rolled back when it fails halfway, so every check (lease, conflict, key
 * types) comes before the first write. Scripts answer with tables whose first element says
 * what happened; errors are left to Redis itself (WRONGTYPE and such).
 *
 * Keys derived from data (a run's checkpoint hashes) are built here from the prefix, which
 * standalone Redis allows; see `keys.ts` for the layout and the TTL rules.
 */
import { SEGMENTS } from "./keys.js";

const lua = (text: string) => text.replace(/^ {4}/gm, "").trim();

// Shared helpers, prepended to every script that needs them.
const PRELUDE = lua(`
    local function ckptKey(prefix, id) return prefix .. '${SEGMENTS.checkpoint}' .. id end
    local function indexKey(prefix, run) return prefix .. '${SEGMENTS.run}' .. run .. '${SEGMENTS.index}' end
    local function outputsKey(prefix, run) return prefix .. '${SEGMENTS.run}' .. run .. '${SEGMENTS.outputs}' end
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
    -- Gives every key of a run the same TTL; index members whose hash expired are pruned.
    local function refresh(prefix, run, ttl)
      if ttl <= 0 or not string.match(run, '^[A-Za-z0-9][A-Za-z0-9._-]*$') then return end
      local index = indexKey(prefix, run)
      if typeOf(index) == 'zset' then
        for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
          if redis.call('EXPIRE', ckptKey(prefix, id), ttl) == 0 then redis.call('ZREM', index, id) end
        end
        redis.call('EXPIRE', index, ttl)
      end
      redis.call('EXPIRE', outputsKey(prefix, run), ttl)
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
`);

/** A script as ioredis `defineCommand` takes it. */
export interface ScriptDefinition {
  numberOfKeys: number;
  lua: string;
}

const script = (numberOfKeys: number, body: string): ScriptDefinition => ({
  numberOfKeys,
  lua: `${PRELUDE}\n${lua(body)}`,
});

/** Every script of the store, by name. */
export const SCRIPTS = {
  /**
   * KEYS: ckpt, index, outputs, runs, lease. ARGV: prefix, ttl, pipelineId, checkpointId,
   * sequence, meta, body, fenceOwner ('' = unfenced), fenceToken, tip check ('1' or '0'),
   * expected tip ('' = the run has none), then hash/body pairs. Answers {'ok'} | {'conflict'} |
   * {'lease_lost', leaseJson|false} | {'tip_moved', newestId|''} | {'wrongtype', key, type}.
   */
  put: script(
    5,
    `
    if ARGV[8] ~= '' then
      local raw = redis.call('GET', KEYS[5])
      local lease = decodeLease(raw)
      if not lease or lease.owner ~= ARGV[8] or lease.token ~= tonumber(ARGV[9]) then
        return {'lease_lost', raw or false}
      end
    end
    if typeOf(KEYS[1]) ~= 'none' then return {'conflict'} end
    local expected = {[KEYS[2]] = 'zset', [KEYS[3]] = 'hash', [KEYS[4]] = 'zset'}
    for _, key in ipairs({KEYS[2], KEYS[3], KEYS[4]}) do
      local t = typeOf(key)
      if t ~= 'none' and t ~= expected[key] then return {'wrongtype', key, t} end
    end
    if ARGV[10] == '1' then
      local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1] or ''
      if newest ~= ARGV[11] then return {'tip_moved', newest} end
    end
    redis.call('HSET', KEYS[1], 'meta', ARGV[6], 'body', ARGV[7], 'run', ARGV[3])
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
    for i = 12, #ARGV, 2 do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) end
    redis.call('ZADD', KEYS[4], 0, ARGV[3])
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return {'ok'}
    `,
  ),

  /** KEYS: ckpt. ARGV: prefix, ttl, checkpointId. Answers an entry or nil. */
  get: script(
    1,
    `
    local entry = readCheckpoint(KEYS[1], ARGV[3], '', true)
    if not entry then return false end
    if entry[5] then refresh(ARGV[1], entry[5], tonumber(ARGV[2])) end
    return entry
    `,
  ),

  /** KEYS: index. ARGV: prefix, ttl, pipelineId. Answers the entries with the top score. */
  latest: script(
    1,
    `
    local found = {}
    while #found == 0 do
      local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
      if #top == 0 then break end
      for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], top[2], top[2])) do
        local entry = readCheckpoint(ckptKey(ARGV[1], id), id, top[2], true)
        if entry then table.insert(found, entry) else redis.call('ZREM', KEYS[1], id) end
      end
    end
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return found
    `,
  ),

  /** KEYS: index. ARGV: prefix, ttl, pipelineId. Answers every entry, bodies left out. */
  list: script(
    1,
    `
    local listed = {}
    local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
      local entry = readCheckpoint(ckptKey(ARGV[1], members[i]), members[i], members[i + 1], false)
      if entry then table.insert(listed, entry) else redis.call('ZREM', KEYS[1], members[i]) end
    end
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return listed
    `,
  ),

  /** KEYS: outputs. ARGV: prefix, ttl, pipelineId, hashes... Answers bodies (nil if absent). */
  getOutputs: script(
    1,
    `
    local values = {}
    for i = 4, #ARGV do values[i - 3] = redis.call('HGET', KEYS[1], ARGV[i]) end
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return values
    `,
  ),

  /** KEYS: outputs. ARGV: prefix, ttl, pipelineId. Answers every output hash. */
  outputHashes: script(
    1,
    `
    local hashes = redis.call('HKEYS', KEYS[1])
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return hashes
    `,
  ),

  /** KEYS: runs. ARGV: prefix. Answers the run ids that still hold data; prunes the rest. */
  listRuns: script(
    1,
    `
    local alive = {}
    for _, run in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      if redis.call('EXISTS', indexKey(ARGV[1], run), outputsKey(ARGV[1], run)) > 0 then
        table.insert(alive, run)
      else
        redis.call('ZREM', KEYS[1], run)
      end
    end
    return alive
    `,
  ),

  /**
   * KEYS: ckpt. ARGV: prefix, ttl, patch JSON (only the fields to change).
   * Answers {'ok'} | {'missing'} | {'corrupt', reason}. cjson re-encodes the metadata: the
   * same JSON value, exact for integers below 1e14 (metadata holds small counters and sizes).
   */
  update: script(
    1,
    `
    local t = typeOf(KEYS[1])
    if t == 'none' then return {'missing'} end
    if t ~= 'hash' then return {'corrupt', 'holds a ' .. t .. ', not a hash'} end
    local patch = cjson.decode(ARGV[3])
    if next(patch) ~= nil then
      local raw = redis.call('HGET', KEYS[1], 'meta')
      local ok, meta = false, nil
      if raw then ok, meta = pcall(cjson.decode, raw) end
      if not ok or type(meta) ~= 'table' then return {'corrupt', 'meta is not a JSON object'} end
      for field, value in pairs(patch) do meta[field] = value end
      redis.call('HSET', KEYS[1], 'meta', cjson.encode(meta))
    end
    local run = redis.call('HGET', KEYS[1], 'run')
    if run then refresh(ARGV[1], run, tonumber(ARGV[2])) end
    return {'ok'}
    `,
  ),

  /** KEYS: index. ARGV: prefix, pipelineId, ids... Answers how many checkpoints existed. */
  deleteCheckpoints: script(
    1,
    `
    local deleted = 0
    for i = 3, #ARGV do
      local key = ckptKey(ARGV[1], ARGV[i])
      local member = redis.call('ZSCORE', KEYS[1], ARGV[i])
      local t = typeOf(key)
      local run = false
      if t == 'hash' then run = redis.call('HGET', key, 'run') end
      -- Another run's checkpoint with that id is not this run's to delete.
      if t ~= 'none' and (member or run == ARGV[2]) then
        redis.call('DEL', key)
        deleted = deleted + 1
      end
      if member then redis.call('ZREM', KEYS[1], ARGV[i]) end
    end
    return deleted
    `,
  ),

  /**
   * KEYS: ckpt, index, runs. ARGV: prefix, ttl, pipelineId, checkpointId. Puts a checkpoint
   * hash of this run back in the run index when the index lacks it (score: its sequence, or 0
   * when its meta does not parse, so it is listed as corrupt). Answers 1 when re-added, else 0.
   */
  reindex: script(
    3,
    `
    if typeOf(KEYS[1]) ~= 'hash' or redis.call('HGET', KEYS[1], 'run') ~= ARGV[3] then return 0 end
    if redis.call('ZSCORE', KEYS[2], ARGV[4]) then return 0 end
    local score = 0
    local ok, meta = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'meta') or '')
    if ok and type(meta) == 'table' and type(meta.sequence) == 'number' then score = meta.sequence end
    redis.call('ZADD', KEYS[2], score, ARGV[4])
    redis.call('ZADD', KEYS[3], 0, ARGV[3])
    refresh(ARGV[1], ARGV[3], tonumber(ARGV[2]))
    return 1
    `,
  ),

  /** KEYS: index, outputs, runs. ARGV: prefix, pipelineId. Deletes every key of the run. */
  deleteRun: script(
    3,
    `
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local key = ckptKey(ARGV[1], id)
      local run = false
      if typeOf(key) == 'hash' then run = redis.call('HGET', key, 'run') end
      if not run or run == ARGV[2] then redis.call('DEL', key) end
    end
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    return 1
    `,
  ),

  /**
   * KEYS: lease, lease-token. ARGV: owner, ttlMs. The rules of `decideAcquire` with the
   * server's clock: a live lease of another owner wins; the same owner keeps its token;
   * anyone else gets a fresh token from INCR. Since the script is atomic, the SET below is
   * SET NX PX whenever the key was absent. Answers {1, token, expiresAt} or
   * {0, holderOwner, holderToken, holderExpiresAt}.
   */
  acquire: script(
    2,
    `
    local now = serverNow()
    local ttl = tonumber(ARGV[2])
    -- An unreadable lease value fences every writer out; it is replaced like an absent one.
    local lease = decodeLease(redis.call('GET', KEYS[1]))
    if lease and lease.owner ~= ARGV[1] then
      local pttl = redis.call('PTTL', KEYS[1])
      local expiresAt = now + pttl
      if pttl < 0 then expiresAt = tonumber(lease.expiresAt) or now end
      return {0, lease.owner, lease.token, expiresAt}
    end
    local token
    if lease then token = lease.token else token = redis.call('INCR', KEYS[2]) end
    local expiresAt = now + ttl
    redis.call('SET', KEYS[1], cjson.encode({owner = ARGV[1], token = token, expiresAt = expiresAt}), 'PX', ttl)
    return {1, token, expiresAt}
    `,
  ),

  /** KEYS: lease. ARGV: owner, token, ttlMs. Answers the new expiry, or nil when not held. */
  renew: script(
    1,
    `
    local lease = decodeLease(redis.call('GET', KEYS[1]))
    if not lease or lease.owner ~= ARGV[1] or lease.token ~= tonumber(ARGV[2]) then return false end
    local ttl = tonumber(ARGV[3])
    local expiresAt = serverNow() + ttl
    redis.call('SET', KEYS[1], cjson.encode({owner = lease.owner, token = lease.token, expiresAt = expiresAt}), 'PX', ttl)
    return expiresAt
    `,
  ),

  /** KEYS: lease. ARGV: owner, token. Deletes the lease when still held; the counter stays. */
  release: script(
    1,
    `
    local lease = decodeLease(redis.call('GET', KEYS[1]))
    if not lease or lease.owner ~= ARGV[1] or lease.token ~= tonumber(ARGV[2]) then return 0 end
    return redis.call('DEL', KEYS[1])
    `,
  ),
} as const;

/** The name of one of {@link SCRIPTS}. */
export type ScriptName = keyof typeof SCRIPTS;
