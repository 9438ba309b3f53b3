/**
 * The Lua scripts of the runs-by-name index (layout in `keys.ts`): reading a page, and building
 * a run's entry from its checkpoints (for data an older cairn wrote, and `rebuildIndexes`). The
 * entry itself is kept by the `put` and `deleteRun` scripts, atomically with the checkpoints.
 */
import { script } from "./lua.js";

/** The scripts of the runs-by-name index, by name. */
export const RUNS_SCRIPTS = {
  /**
   * KEYS: the name's set (all runs, or the open ones). ARGV: prefix, pipelineName, range start
   * (`+`, or `(` and the previous page's last member), how many entries to answer, open ('1' or
   * '0'). Answers up to that many live entries {run, created, finished, member}, newest first;
   * dead members met on the way are removed, so a page costs its size plus what it prunes.
   */
  runsPage: script(
    1,
    `
    local found = {}
    local want = tonumber(ARGV[4])
    local start = ARGV[3]
    local open = ARGV[5] == '1'
    while #found < want do
      local members = redis.call('ZRANGE', KEYS[1], start, '-', 'BYLEX', 'REV', 'LIMIT', 0, want - #found)
      if #members == 0 then break end
      for _, member in ipairs(members) do
        local entry = liveEntry(ARGV[1], ARGV[2], member, open)
        if entry then table.insert(found, entry) else redis.call('ZREM', KEYS[1], member) end
        start = '(' .. member
      end
    end
    return found
    `,
  ),

  /**
   * KEYS: index. ARGV: prefix. Reads a run's checkpoints (no bodies) for its entry. Answers
   * {name|false, created|false, finished, tip|false, seq|false, sum|false}: name and created of
   * the oldest checkpoint that parses, finished (1 | 0) when any is pipeline_complete, and the
   * newest checkpoint's id, sequence and checksum.
   */
  scanRun: script(
    1,
    `
    local name, created, finished = false, false, 0
    local tip, seq, sum = false, false, false
    local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
      local key = ckptKey(ARGV[1], members[i])
      local meta = nil
      if typeOf(key) == 'hash' then
        local ok, value = pcall(cjson.decode, redis.call('HGET', key, 'meta') or '')
        if ok and type(value) == 'table' then meta = value end
      end
      if meta and not name and type(meta.pipeline_name) == 'string' and type(meta.timestamp) == 'string' then
        name, created = meta.pipeline_name, meta.timestamp
      end
      if meta and meta.stage_name == 'pipeline_complete' then finished = 1 end
      tip, seq, sum = members[i], members[i + 1], false
      if meta and type(meta.checksum) == 'string' then sum = meta.checksum end
    end
    return {name, created, finished, tip, seq, sum}
    `,
  ),

  /**
   * KEYS: head, index, legacy lease-token. ARGV: prefix, pipelineId, replace ('1': always;
   * '0': only when the run has no entry yet), name, created, member, finished, seq, tip, sum
   * (name '' = the run has no readable checkpoint: its entry is removed); seq, tip and sum are
   * written only to a head without them. Folds a legacy token counter into the head. The
   * entry's keys get the TTL the run's index has (none: none). Answers 1 when the entry was
   * written or removed, 0 when it was already so.
   */
  setEntry: script(
    3,
    `
    local t = typeOf(KEYS[1])
    if t ~= 'none' and t ~= 'hash' then return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' holds a ' .. t) end
    local legacy = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
    if legacy > (tonumber(redis.call('HGET', KEYS[1], 'token') or '0') or 0) then
      redis.call('HSET', KEYS[1], 'token', legacy)
    end
    redis.call('DEL', KEYS[3])
    local h = redis.call('HMGET', KEYS[1], 'member', 'name', 'finished', 'created')
    if h[1] and ARGV[3] ~= '1' then return 0 end
    -- Finished is for good: the pipeline_complete checkpoint may have been deleted since.
    local finished = ARGV[7]
    if h[3] == '1' then finished = '1' end
    local all, open = nameKey(ARGV[1], ARGV[4], false), nameKey(ARGV[1], ARGV[4], true)
    if ARGV[4] ~= '' and h[1] == ARGV[6] and h[2] == ARGV[4] and h[3] == finished and h[4] == ARGV[5]
      and redis.call('ZSCORE', all, h[1]) and (redis.call('ZSCORE', open, h[1]) ~= false) == (finished ~= '1') then
      return 0
    end
    if h[1] and h[2] then
      redis.call('ZREM', nameKey(ARGV[1], h[2], false), h[1])
      redis.call('ZREM', nameKey(ARGV[1], h[2], true), h[1])
    end
    if ARGV[4] == '' then
      redis.call('HDEL', KEYS[1], 'name', 'created', 'member', 'finished')
      return h[1] and 1 or 0
    end
    redis.call('HSET', KEYS[1], 'name', ARGV[4], 'created', ARGV[5], 'member', ARGV[6], 'finished', finished)
    -- The newest write is what a later write is checked against: a rebuild never rewinds it.
    if ARGV[8] ~= '' and not redis.call('HGET', KEYS[1], 'seq') then
      redis.call('HSET', KEYS[1], 'seq', ARGV[8], 'tip', ARGV[9], 'sum', ARGV[10])
    end
    redis.call('ZADD', all, 0, ARGV[6])
    if finished == '1' then redis.call('ZREM', open, ARGV[6]) else redis.call('ZADD', open, 0, ARGV[6]) end
    local pttl = redis.call('PTTL', KEYS[2])
    if pttl > 0 then
      for _, key in ipairs({KEYS[1], all, open}) do atLeast(key, pttl) end
    else
      redis.call('PERSIST', all)
      redis.call('PERSIST', open)
    end
    return 1
    `,
  ),
} as const;
