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
 *   {prefix}run:{pipelineId}:head      hash    the run's entry in the runs-by-name index: name,
 *                                              created (ISO, of its first checkpoint), member (its
 *                                              member in the name's sets), finished ('1' | '0');
 *                                              the newest write: seq, tip (id), sum (checksum);
 *                                              token = the last fencing token issued
 *   {prefix}name:{pipelineName}:runs   zset    every run of that name; all scores 0, member =
 *   {prefix}name:{pipelineName}:open   zset    `<sortable createdAt>|<pipelineId>` (`runMember`),
 *                                              so a reverse lexical range is newest first; `open`
 *                                              holds the unfinished runs only
 *   {prefix}run:{pipelineId}:key       string  the run's key record (encryption at rest): opaque
 *                                              text, never given a TTL; deleted by deleteRun
 *   {prefix}lease:{pipelineId}         string  JSON {owner, token, expiresAt}; expires (PX) with
 *                                              the lease, so the key existing means a live lease
 *   {prefix}lease-token:{pipelineId}   string  written by cairn before the head held the token;
 *                                              read once, folded into the head and deleted
 *   {prefix}feed                       stream  the change feed: one entry per change (type =
 *                                              checkpoint | status | deleted, pid, name, cp, seq
 *                                              ('' when a whole run was deleted), at = server ms),
 *                                              appended by the same script as the change, trimmed
 *                                              with MAXLEN ~ feedRetention (`feed.ts`)
 *   {prefix}feed:id                    string  16 hex chars naming this feed in cursors; set once
 *                                              (SET NX) by setup(), no TTL, never deleted
 *   {prefix}meta                       hash    getMeta/putMeta values (field = key); no TTL
 *   {prefix}layout                     string  the layout version of the keys above ("2"; no
 *                                              TTL), set with SET NX by a writer's setup() and
 *                                              read by every setup(): a value above the one this
 *                                              cairn knows is `FormatTooNewError` ("store
 *                                              layout") before anything else is read or written.
 *                                              Never deleted; not a run (`layout.ts`)
 *
 * Values are JSON or plain text, never an executable or serialized-object format. Ids match
 * `NAME_PATTERN` (no `:`, no `|`), so `run:{a}:index` can never equal a key of another run or kind.
 *
 * TTL (`ttlSeconds`): a run's checkpoint hashes, index, outputs and head get the TTL on every
 * write and every read of the run, all in one script, so they expire together and the index
 * never outlives its data. The head holds the fencing token, so the token lives exactly as long
 * as the run (and at least as long as a lease on it). The name sets are shared by runs: each
 * refresh of a run extends them to at least the run's TTL, and members whose head is gone are
 * pruned when a page reads them and, the two oldest, whenever a run is added. The feed stream
 * gets the TTL on every change written (a feed left alone that long expires, and every cursor
 * into it then meets `FeedTrimmedError`). `runs`, `layout`, `feed:id`, `meta` and the empty
 * stream setup() creates are the keys without a TTL (members of a set cannot expire one by one): run ids whose index
 * and outputs are gone are pruned when `runs` is read and, three sampled at random, whenever a
 * run is added. It also holds {@link RUNS_INDEX_MARKER}, which is no run id.
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
  head: ":head",
  runKey: ":key",
  name: "name:",
  nameRuns: ":runs",
  nameOpen: ":open",
  layout: "layout",
  feed: "feed",
  feedId: "feed:id",
  meta: "meta",
} as const;

/**
 * A member of `runs` (score -1, never a run id: ids start with a letter or digit) saying every
 * run in this prefix has its runs-by-name entry; `setup()` builds the entries once when absent.
 */
export const RUNS_INDEX_MARKER = ":runs-by-name:v1";

/** Milliseconds beyond any Date (±8.64e15), so negative times still sort as 16 digits. */
const DATE_RANGE = 8_640_000_000_000_000;

/**
 * A run's member in its name's sets: `createdAt` as fixed-width digits that sort like the time,
 * then `|` and the run id, so equal times order by id. An unparseable time sorts oldest.
 */
export function runMember(createdAt: string, pipelineId: string): string {
  const ms = Date.parse(createdAt);
  const time = Number.isNaN(ms)
    ? "0".repeat(17)
    : ms >= 0
      ? `1${String(ms).padStart(16, "0")}`
      : `0${String(DATE_RANGE + ms).padStart(16, "0")}`;
  return `${time}|${pipelineId}`;
}

/** The shape of {@link runMember}: what a `listRuns` cursor must be. */
export const RUN_MEMBER_PATTERN = /^[01]\d{16}\|[A-Za-z0-9][A-Za-z0-9._-]*$/;

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

  /** Where cairn before the run head kept the run's fencing-token counter. */
  leaseToken(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.leaseToken}${pipelineId}`;
  }

  /** The run's head: its runs-by-name entry, newest write and fencing token. */
  head(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.run}${pipelineId}${SEGMENTS.head}`;
  }

  /** The run's key record. */
  runKey(pipelineId: string): string {
    return `${this.prefix}${SEGMENTS.run}${pipelineId}${SEGMENTS.runKey}`;
  }

  /** The store's layout version. */
  get layout(): string {
    return `${this.prefix}${SEGMENTS.layout}`;
  }

  /** The change feed (a stream). */
  get feed(): string {
    return `${this.prefix}${SEGMENTS.feed}`;
  }

  /** The feed's id, which cursors carry. */
  get feedId(): string {
    return `${this.prefix}${SEGMENTS.feedId}`;
  }

  /** The hash of meta values. */
  get meta(): string {
    return `${this.prefix}${SEGMENTS.meta}`;
  }

  /** A name's set of runs (`open`: only the unfinished ones). */
  nameRuns(pipelineName: string, open: boolean): string {
    const tail = open ? SEGMENTS.nameOpen : SEGMENTS.nameRuns;
    return `${this.prefix}${SEGMENTS.name}${pipelineName}${tail}`;
  }
}
