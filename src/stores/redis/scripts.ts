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
import { FEED_SCRIPTS } from "./feed-scripts.js";
import { IMPORT_SCRIPTS } from "./import-script.js";
import { script } from "./lua.js";
import { KEY_SCRIPTS } from "./run-keys.js";
import { RUNS_SCRIPTS } from "./runs-scripts.js";

/** Every script of the store, by name. */
export const SCRIPTS = {
  ...RUNS_SCRIPTS,
  ...IMPORT_SCRIPTS,
  ...KEY_SCRIPTS,
  ...FEED_SCRIPTS,

  /**
   * KEYS: ckpt, index, outputs, runs, lease, head, feed. ARGV: prefix, ttl, pipelineId,
   * checkpointId, sequence, meta, body, fenceOwner ('' = unfenced), fenceToken, tip check ('1'
   * or '0'), expected tip ('' = the run has none), pipelineName, timestamp, the run's member
   * (`runMember`), finishes ('1' for pipeline_complete), checksum, feed retention, then
   * hash/body pairs. A `checkpoint` change goes to the feed with the write.
   * Answers {'ok'} | {'conflict'} | {'lease_lost', leaseJson|false} | {'tip_moved', newestId|''}
   * | {'wrongtype', key, type}. The run's first checkpoint adds it to its name's sets;
   * pipeline_complete takes it out of the open set.
   */
  put: script(
    7,
    `
    if ARGV[8] ~= '' then
      local raw = redis.call('GET', KEYS[5])
      local lease = decodeLease(raw)
      if not lease or lease.owner ~= ARGV[8] or lease.token ~= tonumber(ARGV[9]) then
        return {'lease_lost', raw or false}
      end
    end
    if typeOf(KEYS[1]) ~= 'none' then return {'conflict'} end
    local expected = {[KEYS[2]] = 'zset', [KEYS[3]] = 'hash', [KEYS[4]] = 'zset', [KEYS[6]] = 'hash',
      [KEYS[7]] = 'stream'}
    for _, key in ipairs({KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7]}) do
      local t = typeOf(key)
      if t ~= 'none' and t ~= expected[key] then return {'wrongtype', key, t} end
    end
    local head = redis.call('HMGET', KEYS[6], 'member', 'name', 'finished', 'seq')
    local name = head[2] or ARGV[12]
    for _, key in ipairs({nameKey(ARGV[1], name, false), nameKey(ARGV[1], name, true)}) do
      local t = typeOf(key)
      if t ~= 'none' and t ~= 'zset' then return {'wrongtype', key, t} end
    end
    if ARGV[10] == '1' then
      local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0)[1] or ''
      if newest ~= ARGV[11] then return {'tip_moved', newest} end
    end
    redis.call('HSET', KEYS[1], 'meta', ARGV[6], 'body', ARGV[7], 'run', ARGV[3])
    redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
    for i = 18, #ARGV, 2 do redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) end
    if redis.call('EXISTS', KEYS[4]) == 0 then redis.call('ZADD', KEYS[4], -1, MARKER) end
    redis.call('ZADD', KEYS[4], 0, ARGV[3])
    local ttl = tonumber(ARGV[2])
    if not head[1] then
      redis.call('HSET', KEYS[6], 'name', ARGV[12], 'created', ARGV[13], 'member', ARGV[14], 'finished', ARGV[15])
      redis.call('ZADD', nameKey(ARGV[1], name, false), 0, ARGV[14])
      if ARGV[15] ~= '1' then redis.call('ZADD', nameKey(ARGV[1], name, true), 0, ARGV[14]) end
      pruneOldest(ARGV[1], name, false)
      pruneOldest(ARGV[1], name, true)
      pruneRuns(ARGV[1], KEYS[4])
      -- A run that never expires keeps its name's sets from expiring.
      if ttl <= 0 then redis.call('PERSIST', nameKey(ARGV[1], name, false)) redis.call('PERSIST', nameKey(ARGV[1], name, true)) end
    elseif ARGV[15] == '1' and head[3] ~= '1' then
      redis.call('HSET', KEYS[6], 'finished', '1')
      redis.call('ZREM', nameKey(ARGV[1], name, true), head[1])
    end
    if not head[4] or tonumber(head[4]) <= tonumber(ARGV[5]) then
      redis.call('HSET', KEYS[6], 'seq', ARGV[5], 'tip', ARGV[4], 'sum', ARGV[16])
    end
    refresh(ARGV[1], ARGV[3], ttl)
    feedAdd(KEYS[7], ARGV[17], ttl, 'checkpoint', ARGV[3], name, ARGV[4], ARGV[5])
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
  pipelineIds: script(
    1,
    `
    local alive = {}
    for _, run in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], 0, 0)) do
      if not string.match(run, RUN_ID) then
        -- Not a run id: left alone.
      elseif redis.call('EXISTS', indexKey(ARGV[1], run), outputsKey(ARGV[1], run)) > 0 then
        table.insert(alive, run)
      else
        redis.call('ZREM', KEYS[1], run)
      end
    end
    return alive
    `,
  ),

  /**
   * KEYS: ckpt, feed. ARGV: prefix, ttl, patch JSON (only the fields to change), feed
   * retention, checkpointId. Answers {'ok'} | {'missing'} | {'corrupt', reason}; on `ok` a
   * `status` change goes to the feed (name and sequence from the metadata, else the run's head
   * and index). cjson re-encodes the metadata: the
   * same JSON value, exact for integers below 1e14 (metadata holds small counters and sizes).
   */
  update: script(
    2,
    `
    local t = typeOf(KEYS[1])
    if t == 'none' then return {'missing'} end
    if t ~= 'hash' then return {'corrupt', 'holds a ' .. t .. ', not a hash'} end
    local wrong = feedWrongType(KEYS[2])
    if wrong then return wrong end
    local patch = cjson.decode(ARGV[3])
    local raw = redis.call('HGET', KEYS[1], 'meta')
    local ok, meta = false, nil
    if raw then ok, meta = pcall(cjson.decode, raw) end
    if not ok or type(meta) ~= 'table' then
      if next(patch) ~= nil then return {'corrupt', 'meta is not a JSON object'} end
      meta = {}
    end
    if next(patch) ~= nil then
      for field, value in pairs(patch) do meta[field] = value end
      redis.call('HSET', KEYS[1], 'meta', cjson.encode(meta))
    end
    local run = redis.call('HGET', KEYS[1], 'run')
    if run then refresh(ARGV[1], run, tonumber(ARGV[2])) end
    local name, seq = meta.pipeline_name, meta.sequence
    if run and type(name) ~= 'string' then name = redis.call('HGET', headKey(ARGV[1], run), 'name') end
    if run and type(seq) ~= 'number' then seq = redis.call('ZSCORE', indexKey(ARGV[1], run), ARGV[5]) or 0 end
    if type(name) ~= 'string' then name = '' end
    local pid = run
    if not pid and type(meta.pipeline_id) == 'string' then pid = meta.pipeline_id end
    feedAdd(KEYS[2], ARGV[4], ARGV[2], 'status', pid or '', name, ARGV[5], seq)
    return {'ok'}
    `,
  ),

  /**
   * KEYS: index, head, feed. ARGV: prefix, pipelineId, retention ('1' | '0'), time (ISO), feed
   * retention ('0': no changes, for removing a corrupt entry), ttl, ids... Answers how many
   * checkpoints existed; each one deleted is a `deleted` change in the feed. The head stays; with retention it gets the tombstone
   * (`pruned`: the highest sequence deleted, `pruned_at`).
   */
  deleteCheckpoints: script(
    3,
    `
    local wrong = feedWrongType(KEYS[3])
    if wrong then return wrong end
    local name = false
    if typeOf(KEYS[2]) == 'hash' then name = redis.call('HGET', KEYS[2], 'name') end
    local deleted = 0
    local through = -1
    for i = 7, #ARGV do
      local key = ckptKey(ARGV[1], ARGV[i])
      local member = redis.call('ZSCORE', KEYS[1], ARGV[i])
      local t = typeOf(key)
      local run = false
      if t == 'hash' then run = redis.call('HGET', key, 'run') end
      -- Another run's checkpoint with that id is not this run's to delete.
      if t ~= 'none' and (member or run == ARGV[2]) then
        local seq = member
        if not seq and t == 'hash' then
          local ok, meta = pcall(cjson.decode, redis.call('HGET', key, 'meta') or '')
          if ok and type(meta) == 'table' and type(meta.sequence) == 'number' then seq = meta.sequence end
        end
        redis.call('DEL', key)
        deleted = deleted + 1
        if member and tonumber(member) > through then through = tonumber(member) end
        if ARGV[5] ~= '0' then feedAdd(KEYS[3], ARGV[5], ARGV[6], 'deleted', ARGV[2], name, ARGV[i], seq or 0) end
      end
      if member then redis.call('ZREM', KEYS[1], ARGV[i]) end
    end
    if ARGV[3] == '1' and through >= 0 and typeOf(KEYS[2]) == 'hash' then
      local before = tonumber(redis.call('HGET', KEYS[2], 'pruned') or '-1') or -1
      if before > through then through = before end
      redis.call('HSET', KEYS[2], 'pruned', tostring(through), 'pruned_at', ARGV[4])
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

  /**
   * KEYS: index, outputs, runs, head, lease, key record, feed. ARGV: prefix, pipelineId, feed
   * retention, ttl. One `deleted` change (no checkpoint) when the run held checkpoints, outputs
   * or a runs-by-name entry. Deletes the run's key record first, then every key of the run and its entries in `runs` and its name's sets. While a lease on the run is live, the
   * head keeps the fencing token, so the holder's successor still gets a larger one.
   */
  deleteRun: script(
    7,
    `
    local wrong = feedWrongType(KEYS[7])
    if wrong then return wrong end
    local name = false
    if typeOf(KEYS[4]) == 'hash' then name = redis.call('HGET', KEYS[4], 'name') end
    local held = redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 or name
    redis.call('DEL', KEYS[6])
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
      local key = ckptKey(ARGV[1], id)
      local run = false
      if typeOf(key) == 'hash' then run = redis.call('HGET', key, 'run') end
      if not run or run == ARGV[2] then redis.call('DEL', key) end
    end
    redis.call('DEL', KEYS[1], KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[2])
    if typeOf(KEYS[4]) == 'hash' then
      local h = redis.call('HMGET', KEYS[4], 'member', 'name')
      if h[1] and h[2] then
        redis.call('ZREM', nameKey(ARGV[1], h[2], false), h[1])
        redis.call('ZREM', nameKey(ARGV[1], h[2], true), h[1])
      end
      if redis.call('EXISTS', KEYS[5]) == 1 then
        redis.call('HDEL', KEYS[4], 'name', 'created', 'member', 'finished', 'seq', 'tip', 'sum', 'pruned', 'pruned_at')
      else
        redis.call('DEL', KEYS[4])
      end
    end
    if held then feedAdd(KEYS[7], ARGV[3], ARGV[4], 'deleted', ARGV[2], name, false, false) end
    return 1
    `,
  ),

  /**
   * KEYS: lease, head, legacy lease-token. ARGV: owner, ttlMs, the run's ttl in seconds. The
   * rules of `decideAcquire` with the server's clock: a live lease of another owner wins; the
   * same owner keeps its token; anyone else gets the head's token plus one (a counter an older
   * cairn kept in lease-token is folded in and deleted). The head lives at least as long as the
   * run and the lease, so the token never goes back while the run exists. Since the script is
   * atomic, the SET below is SET NX PX whenever the key was absent. Answers {1, token,
   * expiresAt} or {0, holderOwner, holderToken, holderExpiresAt}.
   */
  acquire: script(
    3,
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
    if lease then
      token = lease.token
    else
      token = tonumber(redis.call('HGET', KEYS[2], 'token') or '0') or 0
      local legacy = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
      if legacy > token then token = legacy end
      token = token + 1
      redis.call('HSET', KEYS[2], 'token', token)
      redis.call('DEL', KEYS[3])
    end
    holdHead(KEYS[2], tonumber(ARGV[3]), ttl)
    local expiresAt = now + ttl
    redis.call('SET', KEYS[1], cjson.encode({owner = ARGV[1], token = token, expiresAt = expiresAt}), 'PX', ttl)
    return {1, token, expiresAt}
    `,
  ),

  /**
   * KEYS: lease, head. ARGV: owner, token, ttlMs, the run's ttl in seconds. Answers the new
   * expiry, or nil when not held.
   */
  renew: script(
    2,
    `
    local lease = decodeLease(redis.call('GET', KEYS[1]))
    if not lease or lease.owner ~= ARGV[1] or lease.token ~= tonumber(ARGV[2]) then return false end
    local ttl = tonumber(ARGV[3])
    local expiresAt = serverNow() + ttl
    redis.call('SET', KEYS[1], cjson.encode({owner = lease.owner, token = lease.token, expiresAt = expiresAt}), 'PX', ttl)
    if redis.call('EXISTS', KEYS[2]) == 1 then holdHead(KEYS[2], tonumber(ARGV[4]), ttl) end
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
