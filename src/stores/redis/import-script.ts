/**
 * The Redis store's whole-run import as one Lua script: every check first (key types, the run
 * already held, ids of other runs), then the old run's keys removed when replacing and the new
 * run's written, with its head and name-set entries as `put` would leave them. A script runs
 * atomically, so no reader sees the run half-imported; killing the client that sent it does not
 * stop it half-way.
 */
import { script } from "./lua.js";

/** The import script, by name. */
export const IMPORT_SCRIPTS = {
  /**
   * KEYS: index, outputs, runs, head, key record, feed. ARGV: prefix, ttl, pipelineId, replace
   * ('1' | '0'), n (checkpoints), name, created, member, finished ('1' | '0'), tip id, tip
   * sequence, tip checksum, has a key record ('1' | '0'), key record, feed retention, then n
   * times (id, sequence, meta, body), then hash/body pairs. The feed gets one `deleted` change
   * for a replaced run, then one `checkpoint` change per checkpoint, in the order given. Answers {'ok'} | {'exists'} | {'conflict', id} | {'wrongtype', key,
   * type}. A replaced run's key record goes with it (unless one is given); a run that has only a
   * key record is a new run, and keeps it.
   */
  importRun: script(
    6,
    `
    local n = tonumber(ARGV[5])
    local first, pairsAt = 16, 16 + 4 * n
    local expected = {[KEYS[1]] = 'zset', [KEYS[2]] = 'hash', [KEYS[3]] = 'zset', [KEYS[4]] = 'hash',
      [KEYS[5]] = 'string', [KEYS[6]] = 'stream'}
    for _, key in ipairs(KEYS) do
      local t = typeOf(key)
      if t ~= 'none' and t ~= expected[key] then return {'wrongtype', key, t} end
    end
    local h = {false, false}
    if typeOf(KEYS[4]) == 'hash' then h = redis.call('HMGET', KEYS[4], 'member', 'name') end
    local held = redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 or h[1]
    if held and ARGV[4] ~= '1' then return {'exists'} end
    local names = {nameKey(ARGV[1], ARGV[6], false), nameKey(ARGV[1], ARGV[6], true)}
    if h[2] then
      table.insert(names, nameKey(ARGV[1], h[2], false))
      table.insert(names, nameKey(ARGV[1], h[2], true))
    end
    for _, key in ipairs(names) do
      local t = typeOf(key)
      if t ~= 'none' and t ~= 'zset' then return {'wrongtype', key, t} end
    end
    for i = first, pairsAt - 1, 4 do
      local key = ckptKey(ARGV[1], ARGV[i])
      local t = typeOf(key)
      if t ~= 'none' and not redis.call('ZSCORE', KEYS[1], ARGV[i]) then
        local run = false
        if t == 'hash' then run = redis.call('HGET', key, 'run') end
        if run ~= ARGV[3] then return {'conflict', ARGV[i]} end
      end
    end
    -- The old run goes as deleteRun removes it, key record first; the head keeps its fencing token.
    local ttl = tonumber(ARGV[2])
    if held then
      redis.call('DEL', KEYS[5])
      feedAdd(KEYS[6], ARGV[15], ttl, 'deleted', ARGV[3], h[2], false, false)
    end
    if ARGV[13] == '1' then redis.call('SET', KEYS[5], ARGV[14]) end
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local key = ckptKey(ARGV[1], id)
      local run = false
      if typeOf(key) == 'hash' then run = redis.call('HGET', key, 'run') end
      if not run or run == ARGV[3] then redis.call('DEL', key) end
    end
    redis.call('DEL', KEYS[1], KEYS[2])
    if h[1] and h[2] then
      redis.call('ZREM', nameKey(ARGV[1], h[2], false), h[1])
      redis.call('ZREM', nameKey(ARGV[1], h[2], true), h[1])
    end
    for i = first, pairsAt - 1, 4 do
      redis.call('HSET', ckptKey(ARGV[1], ARGV[i]), 'meta', ARGV[i + 2], 'body', ARGV[i + 3], 'run', ARGV[3])
      redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
      feedAdd(KEYS[6], ARGV[15], ttl, 'checkpoint', ARGV[3], ARGV[6], ARGV[i], ARGV[i + 1])
    end
    for i = pairsAt, #ARGV, 2 do redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1]) end
    if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('ZADD', KEYS[3], -1, MARKER) end
    redis.call('ZADD', KEYS[3], 0, ARGV[3])
    redis.call('HDEL', KEYS[4], 'pruned', 'pruned_at')
    redis.call('HSET', KEYS[4], 'name', ARGV[6], 'created', ARGV[7], 'member', ARGV[8], 'finished', ARGV[9],
      'tip', ARGV[10], 'seq', ARGV[11], 'sum', ARGV[12])
    redis.call('ZADD', nameKey(ARGV[1], ARGV[6], false), 0, ARGV[8])
    if ARGV[9] ~= '1' then redis.call('ZADD', nameKey(ARGV[1], ARGV[6], true), 0, ARGV[8]) end
    pruneOldest(ARGV[1], ARGV[6], false)
    pruneOldest(ARGV[1], ARGV[6], true)
    pruneRuns(ARGV[1], KEYS[3])
    if ttl <= 0 then
      redis.call('PERSIST', nameKey(ARGV[1], ARGV[6], false))
      redis.call('PERSIST', nameKey(ARGV[1], ARGV[6], true))
    end
    refresh(ARGV[1], ARGV[3], ttl)
    return {'ok'}
    `,
  ),
} as const;
