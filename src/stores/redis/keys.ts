/**
 * The Redis store's key layout. Everything cairn writes lives under one prefix (default
 * `cairn:`), so several deployments can share a server and an admin can find them by prefix:
 *
 *   {prefix}ckpt:{checkpointId}        hash    meta = StoredMetadata as JSON,
 *                                              body = the record's body text exactly as given,
 *                                              run  = pipelineId (lets a read by id find the run)
 *   {prefix}run:{pipelineId}:index     zset    member = checkpointId, score = sequence
 *                                              (ties are ordered by `compareStored` when read)
 *   {prefix}run:{pipelineId}:outputs   hash    field = output SHA-256, value = output body text
 *   {prefix}runs                       zset    member = pipelineId, every score 0, so members
 *                                              come back in byte order
 *   {prefix}lease:{pipelineId}         string  JSON {owner, token, expiresAt}; expires (PX) with
 *                                              the lease, so the key existing means a live lease
 *   {prefix}lease-token:{pipelineId}   string  the last fencing token issued (INCR); never
 *                                              expires and is never reset, so a token is never
 *                                              reused, even after the lease key expired
 *
 * Values are JSON or plain text, never an executable or serialized-object format. Ids match
 * `NAME_PATTERN` (no `:`), so `run:{a}:index` can never equal a key of another run or kind.
 *
 * TTL (`ttlSeconds`): a run's checkpoint hashes, index and outputs get the same TTL on every
 * write and every read of the run, all in one script, so they expire together and the index
 * never outlives its data. `runs` has no TTL (members of a set cannot expire one by one): run
 * ids whose index and outputs are gone are pruned when `runs` is read. Lease keys carry the
 * lease's own expiry; `lease-token` keys never expire.
 *
 * No code path uses `KEYS`; `SCAN` only in tests and admin tooling.
 */

/** The prefix used when none is configured. */
export const DEFAULT_KEY_PREFIX = "cairn:";

/** Characters a prefix may hold: no spaces, quotes or glob characters (`*?[]\`). */
export const KEY_PREFIX_PATTERN = /^[A-Za-z0-9._:{}/-]{1,100}$/;

/** The fixed parts of every key, shared with the Lua scripts so both build the same names. */
export const SEGMENTS = {
  checkpoint: "ckpt:",
  run: "run:",
  index: ":index",
  outputs: ":outputs",
  runs: "runs",
  lease: "lease:",
  leaseToken: "lease-token:",
} as const;

/** Appends the `:` separator when a prefix lacks it. */
export function normalizeKeyPrefix(prefix: string): string {
  return prefix.endsWith(":") ? prefix : `${prefix}:`;
}

/** Builds the keys of one store (one prefix). */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** The hash of one checkpoint. */
  checkpoint(checkpointId: string): string {
    return `${this.prefix}${SEGMENTS.checkpoint}${checkpointId}`;
  }

  /** The sorted set of a run's checkpoint ids, by sequence. */
  index(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.run}${pipelineId}${SEGMENTS.index}`;
  }

  /** The hash of a run's outputs, by content hash. */
  outputs(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.run}${pipelineId}${SEGMENTS.outputs}`;
  }

  /** The set of every run id. */
  get runs(): string {
    return `${this.prefix}${SEGMENTS.runs}`;
  }

  /** The run's current lease. */
  lease(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.lease}${pipelineId}`;
  }

  /** The run's fencing-token counter. */
  leaseToken(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.leaseToken}${pipelineId}`;
  }
}
