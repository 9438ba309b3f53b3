/**
 * The Redis store's runs-by-name index, read side and (re)building: a page is one script over
 * one name set (a reverse lexical range from the cursor), never a read of other runs. Entries
 * are written by the `put` and `deleteRun` scripts; `buildEntry` recomputes one from the run's
 * checkpoints, for data written before the index existed and for `rebuildIndexes`.
 */
import { InvalidArgumentError } from "../../core/errors.js";
import { isValidName } from "../../core/ids.js";
import type { ListRunsQuery, RunPage } from "../types.js";
import type { RedisClient } from "./config.js";
import { type RedisKeys, RUN_MEMBER_PATTERN, RUNS_INDEX_MARKER, runMember } from "./keys.js";
import type { ScriptName } from "./scripts.js";

/** Runs one of the store's scripts, mapping failures to cairn errors. */
export type ScriptRunner = (
  operation: string,
  name: ScriptName,
  ...args: (string | number)[]
) => Promise<unknown>;

const DEFAULT_LIMIT = 100;

/** One page of a name's runs, newest first. */
export async function listRunsPage(
  script: ScriptRunner,
  keys: RedisKeys,
  query: ListRunsQuery,
): Promise<RunPage> {
  const { pipelineName, cursor } = query;
  if (cursor !== undefined && !RUN_MEMBER_PATTERN.test(cursor))
    throw new InvalidArgumentError(`listRuns cursor ${JSON.stringify(cursor)} is not one this store gave`);
  const limit = query.limit ?? DEFAULT_LIMIT;
  const open = query.unfinished === true;
  // One entry more than the page tells whether another page follows.
  const found = (await script(
    "listRuns",
    "runsPage",
    keys.nameRuns(pipelineName, open),
    keys.prefix,
    pipelineName,
    cursor === undefined ? "+" : `(${cursor}`,
    limit + 1,
    open ? "1" : "0",
  )) as [string, string, string, string][];
  const page = found.slice(0, limit);
  const runs = page.map(([pipelineId, createdAt, finished]) => ({
    pipelineId,
    pipelineName,
    createdAt,
    finished: finished === "1",
  }));
  const last = page.at(-1);
  return found.length > limit && last ? { runs, nextCursor: last[3] } : { runs };
}

/**
 * Computes the run's entry from its checkpoints and writes it (`replace`: over an existing one;
 * otherwise only when it has none). Returns what was done, or undefined when nothing was.
 */
export async function buildEntry(
  script: ScriptRunner,
  keys: RedisKeys,
  pipelineId: string,
  replace: boolean,
): Promise<string | undefined> {
  const operation = replace ? "rebuildIndexes" : "setup";
  const [name, created, finished, tip, seq, sum] = (await script(
    operation,
    "scanRun",
    keys.index(pipelineId),
    keys.prefix,
  )) as [string | null, string | null, number, string | null, string | null, string | null];
  const entry =
    name === null || created === null
      ? ["", "", "", "0"]
      : [name, created, runMember(created, pipelineId), finished === 1 ? "1" : "0"];
  const written = await script(
    operation,
    "setEntry",
    ...[keys.head(pipelineId), keys.index(pipelineId), keys.leaseToken(pipelineId)],
    ...[keys.prefix, pipelineId, replace ? "1" : "0", ...entry, seq ?? "", tip ?? "", sum ?? ""],
  );
  if (written !== 1) return undefined;
  return name === null
    ? `removed the runs-by-name entry of ${pipelineId}: no checkpoint of it is readable`
    : `rebuilt the runs-by-name entry of ${pipelineId} (${name}, created ${created})`;
}

/**
 * Builds the entry of every run in `runs` that lacks one (data an older cairn wrote), once:
 * the marker in `runs` says it is done. Runs are taken in batches, each run's entry in its own
 * atomic script, so a writer racing the build never loses an entry (the build skips runs that
 * have one).
 */
export async function buildMissingEntries(
  client: RedisClient,
  script: ScriptRunner,
  keys: RedisKeys,
): Promise<void> {
  if ((await client.call("ZSCORE", keys.runs, RUNS_INDEX_MARKER)) !== null) return;
  if ((await client.call("EXISTS", keys.runs)) === 0) return; // nothing stored yet: put adds the marker
  const batch = 500;
  for (let start = 0; ; start += batch) {
    const ids = (await client.call("ZRANGEBYSCORE", keys.runs, 0, 0, "LIMIT", start, batch)) as string[];
    // cairn writes only valid ids; anything else in `runs` names no run of its own.
    await Promise.all(ids.filter(isValidName).map((id) => buildEntry(script, keys, id, false)));
    if (ids.length < batch) break;
  }
  await client.call("ZADD", keys.runs, -1, RUNS_INDEX_MARKER);
}
