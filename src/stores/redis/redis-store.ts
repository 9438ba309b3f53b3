/**
 * The Redis store: checkpoints, run indexes, outputs and leases under one key prefix (layout
 * and TTL rules in `keys.ts`), every operation one Lua script (`scripts.ts`), so a write and
 * its fencing check are one atomic step and one round trip. It uses `ioredis`, an optional peer
 * dependency imported only when a store is opened, never when cairn is imported.
 */

import { createHash } from "node:crypto";
import type { OpenOptions } from "../registry.js";
import type {
  CheckpointRecord,
  CheckpointStore,
  CorruptEntry,
  DeleteCheckpointsOptions,
  ImportedCheckpoint,
  ImportRunOptions,
  Lease,
  LeaseAttempt,
  ListedCheckpoint,
  ListRunsQuery,
  OutputRecord,
  PutOptions,
  RunHead,
  RunPage,
  StatusPatch,
  StoreChange,
} from "../types.js";
import { parseRedisConfig, type RedisClient, type RedisConnection } from "./config.js";
import { connect } from "./connection.js";
import { RedisFeed } from "./feed.js";
import { importRun } from "./import.js";
import { RedisKeys } from "./keys.js";
import { checkLayout, REDIS_LAYOUT_VERSION } from "./layout.js";
import { acquireLease, renewLease } from "./leases.js";
import {
  getCheckpoint,
  getLatestCheckpoint,
  getOutputs,
  getRunHead,
  listCheckpoints,
  listOutputHashes,
  listPipelineIds,
  type RedisReader,
} from "./reads.js";
import { type RedisRepairer, readCorruptEntry, rebuildIndexes, removeCorruptEntry } from "./repair.js";
import { leaseFromValue, storeError } from "./replies.js";
import { putRunKey } from "./run-keys.js";
import { buildMissingEntries, listRunsPage, type ScriptRunner } from "./runs-index.js";
import { SCRIPTS, type ScriptName } from "./scripts.js";
import { deleteIds, deleteRun, putCheckpoint, type RedisWriter, updateCheckpoint } from "./writes.js";

export type { RedisClient, RedisStoreConfig } from "./config.js";
export { REDIS_OPTIONS, redisConfigProblems } from "./config.js";
export { isUnavailableError } from "./connection.js";

/** A checkpoint store on a Redis server, through `ioredis`. */
export class RedisStore implements CheckpointStore {
  readonly strategy = "redis";
  readonly persistent = true;
  private readonly keys: RedisKeys;
  private readonly commands = new Map<ScriptName, string>();
  private readonly feed: RedisFeed;
  private lastError: Error | undefined;
  private readonly onError = (error: Error) => {
    // Kept for messages; the failing command itself rejects, so nothing is lost here.
    this.lastError = error;
  };
  private readonly onReady = () => {
    this.lastError = undefined;
  };

  private constructor(
    private readonly client: RedisClient,
    readonly location: string,
    prefix: string,
    private readonly ttlSeconds: number,
    private readonly feedRetention: number,
    private readonly ownsClient: boolean,
  ) {
    this.keys = new RedisKeys(prefix);
    const run = <T>(operation: string, fn: () => Promise<T>) => this.run(operation, fn);
    this.feed = new RedisFeed({ client, keys: this.keys, location, runScript: this.runScript, run });
    client.on("error", this.onError);
    client.on("ready", this.onReady);
    for (const [name, definition] of Object.entries(SCRIPTS) as [
      ScriptName,
      (typeof SCRIPTS)[ScriptName],
    ][]) {
      // A name per script text: two cairn versions sharing one client never clobber each other.
      const command = `cairn_${name}_${createHash("sha1").update(definition.lua).digest("hex").slice(0, 8)}`;
      client.defineCommand(command, definition);
      this.commands.set(name, command);
    }
  }

  /** Validates the configuration, loads the driver and connects (or adopts the caller's client). */
  static async open(config: Record<string, unknown>, options: OpenOptions = {}): Promise<RedisStore> {
    const settings = parseRedisConfig(config);
    const { prefix, ttlSeconds, location, feedRetention } = settings;
    let store: RedisStore;
    if (settings.client)
      store = new RedisStore(settings.client, location, prefix, ttlSeconds, feedRetention, false);
    else {
      const client = await connect(
        settings.connection as RedisConnection,
        settings.connectTimeoutMs,
        location,
      );
      store = new RedisStore(client, location, prefix, ttlSeconds, feedRetention, true);
    }
    store.readOnly = options.readOnly ?? false;
    return store;
  }

  /** Set by a read-only open: setup() leaves an older cairn's data without its runs-by-name entries. */
  private readOnly = false;

  /**
   * Checks that the server answers and the key layout is not a newer cairn's (`layout.ts`),
   * setting it unless read-only. Data an older cairn wrote gets its runs-by-name entries here,
   * once; the change feed is created here (`feed.ts`), and with it the layout moves to 2.
   */
  async setup(): Promise<void> {
    await this.run("setup", () => this.client.call("PING"));
    // Before anything else is read or written: a newer cairn's key layout is refused, not misread.
    await this.run("setup", () => checkLayout(this.client, this.keys, this.readOnly));
    // A keyspace cannot tell "no store here" from an empty store: a reader only writes nothing.
    if (this.readOnly) return;
    await this.run("setup", () => buildMissingEntries(this.client, this.runScript, this.keys));
    await this.feed.setup(REDIS_LAYOUT_VERSION);
  }

  private async run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw storeError(operation, this.location, this.lastError, error);
    }
  }

  private readonly runScript: ScriptRunner = (operation, name, ...args) =>
    this.script(operation, name, ...args);

  private script(operation: string, name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    const command = this.commands.get(name) as string;
    const fn = (this.client as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[
      command
    ] as (...a: (string | number)[]) => Promise<unknown>;
    return this.run(operation, () => fn.apply(this.client, args));
  }

  /**
   * Writes the checkpoint, its outputs, the run index, the run's head (its runs-by-name entry)
   * and its `checkpoint` change in one script; fenced when `fence` is given.
   */
  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    await putCheckpoint(this.writer, record, outputs, fence, options);
  }

  /** Stores a whole run with one script; see `import-script.ts`. */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    const { runScript, keys, ttlSeconds, feedRetention } = this;
    await importRun(runScript, keys, ttlSeconds, feedRetention, pipelineId, checkpoints, options);
  }

  /** Takes the run's lease in one script, with the server's clock. */
  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    return acquireLease(this.runScript, this.keys, this.ttlSeconds, pipelineId, owner, ttlMs);
  }

  /** Extends a lease still held; undefined once it expired or changed hands. */
  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    return renewLease(this.runScript, this.keys, this.ttlSeconds, lease, ttlMs);
  }

  /** Deletes a lease still held; the token counter (in the run's head) stays, so its token is never reused. */
  async releaseLease(lease: Lease): Promise<void> {
    await this.script("releaseLease", "release", this.keys.lease(lease.pipelineId), lease.owner, lease.token);
  }

  /**
   * The run's lease: its key exists only while the lease lives (PX expiry on the server's clock).
   * A plain GET, so reading refreshes no TTL; an unreadable value counts as absent, as acquiring does.
   */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    const key = this.keys.lease(pipelineId);
    const raw = (await this.run("getLease", () => this.client.call("GET", key))) as string | null;
    return raw === null ? undefined : leaseFromValue(pipelineId, raw);
  }

  /** One checkpoint by id; reading it refreshes its run's TTL. */
  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    return getCheckpoint(this.reader, checkpointId);
  }

  /** The run's newest checkpoint: only the entries with the top score are read. */
  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    return getLatestCheckpoint(this.reader, pipelineId);
  }

  /** The run's checkpoints, oldest first; unreadable ones are listed as corrupt. */
  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    return listCheckpoints(this.reader, pipelineId);
  }

  /** Every run id that still holds checkpoints or outputs, sorted; ids of expired runs are pruned. */
  async listPipelineIds(): Promise<string[]> {
    return listPipelineIds(this.reader);
  }

  /** A page of the name's runs from its name set: one script, whatever else the store holds. */
  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return listRunsPage(this.runScript, this.keys, query);
  }

  /** Patches the mutable fields and records a `status` change in one script; `CheckpointNotFoundError` when absent. */
  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    await updateCheckpoint(this.writer, checkpointId, patch);
  }

  /** Deletes the listed checkpoints of a run; returns how many existed. The head stays. */
  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    return deleteIds(this.writer, pipelineId, checkpointIds, options.retention === true, true);
  }

  /** The run's head hash: its newest write and retention's tombstone. */
  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    return getRunHead(this.reader, pipelineId);
  }

  /** The run's outputs with the given hashes; reading them refreshes the run's TTL. */
  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    return getOutputs(this.reader, pipelineId, hashes);
  }

  /** Every output hash stored for the run, sorted. */
  async listOutputHashes(pipelineId: string): Promise<string[]> {
    return listOutputHashes(this.reader, pipelineId);
  }

  /** Deletes the listed outputs of a run; returns how many existed. */
  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    if (hashes.length === 0) return 0;
    const key = this.keys.outputs(pipelineId);
    return (await this.run("deleteOutputs", () =>
      this.client.call("HDEL", key, ...new Set(hashes)),
    )) as number;
  }

  /** The run's key record (`run:{id}:key`); undefined when it has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    const key = this.keys.runKey(pipelineId);
    return ((await this.run("getRunKey", () => this.client.call("GET", key))) as string | null) ?? undefined;
  }

  /** Compare-and-set of the run's key record, in one script. */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    return putRunKey(this.runScript, this.keys, pipelineId, record, expected);
  }

  /**
   * Deletes the run's key record, then every key of the run (corrupt entries included) and its
   * index entries, with one `deleted` change, in one script.
   */
  async deleteRun(pipelineId: string): Promise<void> {
    await deleteRun(this.writer, pipelineId);
  }

  /** What a corrupt entry's key holds (the hash's fields, or the value of another type) as JSON. */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    return readCorruptEntry(this.repairer, entry);
  }

  /** DELs a corrupt entry's key and ZREMs it from the run index, once sure it still does not parse. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    await removeCorruptEntry(this.repairer, entry);
  }

  /**
   * Puts back in the run index every checkpoint hash of this run it lacks (found by SCAN), then
   * recomputes the run's runs-by-name entry from its checkpoints. See `repair.ts`.
   */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    return rebuildIndexes(this.repairer, pipelineId);
  }

  private get writer(): RedisWriter {
    const { runScript, keys, ttlSeconds, feedRetention } = this;
    return { runScript, keys, ttlSeconds, feedRetention };
  }

  private get reader(): RedisReader {
    const { client, keys, ttlSeconds, runScript } = this;
    return { client, keys, ttlSeconds, runScript, run: (operation, fn) => this.run(operation, fn) };
  }

  private get repairer(): RedisRepairer {
    const deleteCheckpoints = (pipelineId: string, ids: readonly string[]) =>
      deleteIds(this.writer, pipelineId, ids, false, false);
    return { ...this.reader, deleteCheckpoints };
  }

  /** Changes after `since`, oldest first (see `feed.ts`). */
  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    return this.feed.readChanges(since, limit);
  }

  /** The newest change's cursor: the stream's last-generated-id (`<feedId>:0-0` when empty). */
  async feedCursor(): Promise<string> {
    return this.feed.feedCursor();
  }

  /**
   * Blocks on XREAD (its own connection) until the stream has an entry after `since`; a cursor
   * of another feed answers true at once, so the caller's read meets the `FeedTrimmedError`.
   */
  async waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.feed.waitForChanges(since, timeoutMs, signal);
  }

  /** A meta value from the `{prefix}meta` hash. */
  async getMeta(key: string): Promise<string | undefined> {
    return this.feed.getMeta(key);
  }

  /** Sets a meta value in the `{prefix}meta` hash. */
  async putMeta(key: string, value: string): Promise<void> {
    await this.feed.putMeta(key, value);
  }

  /** Quits the connection this store opened; a caller's client is left open. */
  async close(): Promise<void> {
    this.feed.close();
    this.client.removeListener("error", this.onError);
    this.client.removeListener("ready", this.onReady);
    if (!this.ownsClient) return;
    if (this.client.status === "ready") {
      try {
        await this.client.quit();
        return;
      } catch {
        // The connection broke while quitting: dropping it is all that is left to do.
      }
    }
    this.client.disconnect();
  }
}
