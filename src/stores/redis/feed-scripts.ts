/**
 * The Lua scripts of the Redis store's change feed that are not part of a mutation: creating
 * the feed, and reading it with the state that tells a trimmed cursor from a live one. Changes
 * themselves are appended by each mutation's own script (`feedAdd` in `lua.ts`).
 */
import { script } from "./lua.js";

/** The feed's scripts, by name. */
export const FEED_SCRIPTS = {
  /**
   * KEYS: feed id, feed, layout. ARGV: a new feed id, the layout version to upgrade from, the
   * one to upgrade to. Sets the feed id once; a feed created here also gets its (empty) stream,
   * so a stream found missing later always means changes were lost. Then moves the layout
   * version up, so an older cairn (which would write without feeding) refuses the keys.
   * Answers the feed id.
   */
  feedSetup: script(
    3,
    `
    if redis.call('SET', KEYS[1], ARGV[1], 'NX') and redis.call('EXISTS', KEYS[2]) == 0 then
      redis.call('XGROUP', 'CREATE', KEYS[2], 'cairn-setup', '$', 'MKSTREAM')
      redis.call('XGROUP', 'DESTROY', KEYS[2], 'cairn-setup')
    end
    if redis.call('GET', KEYS[3]) == ARGV[2] then redis.call('SET', KEYS[3], ARGV[3]) end
    return redis.call('GET', KEYS[1])
    `,
  ),

  /**
   * KEYS: feed id, feed. ARGV: XRANGE start (`-`, or `(` and an entry id), how many entries (0:
   * none). Answers {feedId|nil, stream exists (1 | 0), last-generated-id, max-deleted-entry-id,
   * the oldest entry's id (last-generated-id when empty), how many entries trimming removed
   * (entries-added - length), entries}, read in one step so the trim check and the entries agree.
   */
  feedRead: script(
    2,
    `
    local fid = redis.call('GET', KEYS[1])
    local t = typeOf(KEYS[2])
    if t == 'none' then return {fid, 0, '0-0', '0-0', '0-0', 0, {}} end
    if t ~= 'stream' then return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. t .. ', not the feed stream') end
    local info = redis.call('XINFO', 'STREAM', KEYS[2])
    local f = {}
    for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
    local first = f['last-generated-id']
    if type(f['first-entry']) == 'table' then first = f['first-entry'][1] end
    local entries = {}
    if tonumber(ARGV[2]) > 0 then entries = redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[2]) end
    return {fid, 1, f['last-generated-id'], f['max-deleted-entry-id'], first, f['entries-added'] - f['length'], entries}
    `,
  ),
} as const;
