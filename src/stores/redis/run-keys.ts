/**
 * The Redis store's run key records: `{prefix}run:{pipelineId}:key`, a string holding the
 * record. Compare-and-set is one Lua script, so no other client's command runs between the
 * check and the SET. The key has no TTL, even with `ttlSeconds`: a record that expired before
 * its run's data would make that data unreadable (see the README, "Secure deletion").
 */
import type { RedisKeys } from "./keys.js";
import { script } from "./lua.js";
import type { ScriptRunner } from "./runs-index.js";

/** The key record script, by name. */
export const KEY_SCRIPTS = {
  /**
   * KEYS: the run's key record. ARGV: record, '1' when a record is expected ('0': none),
   * expected record. Answers 1 when set, 0 when the stored record was not the expected one. A
   * key of another type is Redis's own WRONGTYPE error.
   */
  putRunKey: script(
    1,
    `
    local current = redis.call('GET', KEYS[1])
    if ARGV[2] == '0' then
      if current then return 0 end
    elseif current ~= ARGV[3] then
      return 0
    end
    redis.call('SET', KEYS[1], ARGV[1])
    return 1
    `,
  ),
} as const;

/** Sets the run's key record if the stored one is still `expected`, in one script. */
export async function putRunKey(
  runScript: ScriptRunner,
  keys: RedisKeys,
  pipelineId: string,
  record: string,
  expected: string | undefined,
): Promise<boolean> {
  const args = [keys.runKey(pipelineId), record, expected === undefined ? "0" : "1", expected ?? ""];
  return (await runScript("putRunKey", "putRunKey", ...args)) === 1;
}
