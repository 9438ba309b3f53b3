import {
  CheckpointConflictError,
  CheckpointNotFoundError,
  InvalidConfigError,
  TipMovedError,
} from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import { applyPatch, compareStored } from "../../core/record.js";
import { assertFence, checkLeaseArgs, decideAcquire, isSameLease } from "../lease.js";
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
  StoredMetadata,
} from "../types.js";
import { DEFAULT_FEED_RETENTION, MemoryFeed } from "./feed.js";
import { copy, newestId, notHeld, type Run } from "./run.js";
import { RunsIndex } from "./runs-index.js";

/** Options of the memory store. */
export interface MemoryStoreConfig {
  /** Label for messages; several managers may share one store instance instead. */
  name?: string;
  /** Changes the feed keeps before trimming the oldest (at least 100; default 100,000). */
  feedRetention?: number;
}

/**
 * Keeps checkpoints in process memory, for tests and development. It stores copies, never
 * live references, so a caller mutating a record cannot change what was checkpointed.
 */
export class MemoryStore implements CheckpointStore {
  readonly strategy = "memory";
  readonly persistent = false;
  readonly location: string;
  private readonly runs = new Map<string, Run>();
  private readonly runOf = new Map<string, string>();
  private readonly leases = new Map<string, Lease>();
  private readonly index = new RunsIndex();
  /** Per run, its head record; outlives the run's checkpoints, so a truncation stays visible. */
  private readonly heads = new Map<string, RunHead>();
  /** Per run, its key record; kept apart from `runs`, so a key alone lists no run. */
  private readonly keys = new Map<string, string>();
  private readonly meta = new Map<string, string>();
  private readonly feed: MemoryFeed;

  constructor(config: MemoryStoreConfig = {}) {
    const unknown = unknownOptionsProblem("the memory store", config, ["name", "feedRetention"]);
    if (unknown !== undefined) throw new InvalidConfigError(unknown);
    const retention = config.feedRetention ?? DEFAULT_FEED_RETENTION;
    if (!Number.isSafeInteger(retention) || retention < 100)
      throw new InvalidConfigError("the memory store: feedRetention must be an integer of at least 100");
    this.feed = new MemoryFeed(retention);
    this.location = `memory:${config.name ?? ""}`;
  }

  async setup(): Promise<void> {}

  private run(pipelineId: string, create: true): Run;
  private run(pipelineId: string, create?: false): Run | undefined;
  private run(pipelineId: string, create = false): Run | undefined {
    let run = this.runs.get(pipelineId);
    if (!run && create) {
      run = { checkpoints: new Map(), outputs: new Map(), latestId: undefined };
      this.runs.set(pipelineId, run);
    }
    return run;
  }

  async putCheckpoint(
    record: CheckpointRecord,
    outputs: readonly OutputRecord[],
    fence?: Lease,
    options?: PutOptions,
  ): Promise<void> {
    const id = record.metadata.checkpoint_id;
    const pipelineId = record.metadata.pipeline_id;
    if (fence) assertFence(this.leases.get(pipelineId), fence);
    if (options?.expectedTip !== undefined) {
      const actual = this.run(pipelineId)?.latestId ?? null;
      if (actual !== options.expectedTip)
        throw new TipMovedError(id, pipelineId, options.expectedTip, actual);
    }
    if (this.runOf.has(id)) throw new CheckpointConflictError(id);
    this.putNow(record, outputs);
  }

  /** Stores a checkpoint whose checks passed; synchronous, so no other call runs in between. */
  private putNow(record: CheckpointRecord, outputs: readonly OutputRecord[]): void {
    const id = record.metadata.checkpoint_id;
    const pipelineId = record.metadata.pipeline_id;
    const run = this.run(pipelineId, true);
    for (const output of outputs) {
      if (!run.outputs.has(output.hash)) run.outputs.set(output.hash, output.body);
    }
    run.checkpoints.set(id, copy(record));
    this.runOf.set(id, record.metadata.pipeline_id);
    const latest = run.latestId === undefined ? undefined : run.checkpoints.get(run.latestId);
    if (!latest || compareStored(record.metadata, latest.metadata) > 0) run.latestId = id;
    const m = record.metadata;
    const head = this.heads.get(pipelineId);
    this.heads.set(pipelineId, {
      ...(head?.pruned ? { pruned: head.pruned } : {}),
      sequence: m.sequence,
      checkpointId: id,
      checksum: m.checksum,
    });
    this.index.noteCheckpoint(pipelineId, m.pipeline_name, m.timestamp, m.stage_name);
    this.feed.record({
      type: "checkpoint",
      pipelineId,
      pipelineName: m.pipeline_name,
      checkpointId: id,
      sequence: m.sequence,
    });
  }

  /** Checks everything first, then replaces and stores synchronously: nothing runs in between. */
  async importRun(
    pipelineId: string,
    checkpoints: readonly ImportedCheckpoint[],
    options: ImportRunOptions,
  ): Promise<void> {
    if (this.runs.has(pipelineId) && !options.replace) {
      throw new CheckpointConflictError(pipelineId, `Run ${pipelineId} already exists in the store`);
    }
    for (const { record } of checkpoints) {
      const owner = this.runOf.get(record.metadata.checkpoint_id);
      if (owner !== undefined && owner !== pipelineId)
        throw new CheckpointConflictError(record.metadata.checkpoint_id);
    }
    // A replaced run's key goes with it; a new run keeps the key its writer may have made.
    if (this.runs.has(pipelineId)) this.keys.delete(pipelineId);
    this.deleteNow(pipelineId);
    if (options.runKey !== undefined) this.keys.set(pipelineId, options.runKey);
    for (const { record, outputs } of checkpoints) this.putNow(record, outputs);
  }

  /** The run's key record; undefined when it has none. */
  async getRunKey(pipelineId: string): Promise<string | undefined> {
    return this.keys.get(pipelineId);
  }

  /** Compare-and-set, synchronous: no other call runs between the check and the write. */
  async putRunKey(pipelineId: string, record: string, expected: string | undefined): Promise<boolean> {
    if (this.keys.get(pipelineId) !== expected) return false;
    this.keys.set(pipelineId, record);
    return true;
  }

  async acquireLease(pipelineId: string, owner: string, ttlMs: number): Promise<LeaseAttempt> {
    checkLeaseArgs(owner, ttlMs);
    const attempt = decideAcquire(pipelineId, this.leases.get(pipelineId), owner, ttlMs, Date.now());
    if (attempt.acquired) this.leases.set(pipelineId, attempt.lease);
    return attempt.acquired
      ? { acquired: true, lease: { ...attempt.lease } }
      : { acquired: false, holder: { ...attempt.holder } };
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | undefined> {
    checkLeaseArgs(lease.owner, ttlMs);
    if (!isSameLease(this.leases.get(lease.pipelineId), lease)) return undefined;
    const renewed = { ...lease, expiresAt: new Date(Date.now() + ttlMs) };
    this.leases.set(lease.pipelineId, renewed);
    return { ...renewed };
  }

  async releaseLease(lease: Lease): Promise<void> {
    const current = this.leases.get(lease.pipelineId);
    if (current && isSameLease(current, lease))
      this.leases.set(lease.pipelineId, { ...current, expiresAt: new Date(0) });
  }
  /** The run's lease while unexpired by this process's clock; released leases have expired. */
  async getLease(pipelineId: string): Promise<Lease | undefined> {
    const current = this.leases.get(pipelineId);
    return current && current.expiresAt.getTime() > Date.now() ? { ...current } : undefined;
  }

  async getCheckpoint(checkpointId: string): Promise<CheckpointRecord | undefined> {
    const pipelineId = this.runOf.get(checkpointId);
    const record =
      pipelineId === undefined ? undefined : this.runs.get(pipelineId)?.checkpoints.get(checkpointId);
    return record && copy(record);
  }

  async getLatestCheckpoint(pipelineId: string): Promise<CheckpointRecord | undefined> {
    const run = this.run(pipelineId);
    const latest = run?.latestId === undefined ? undefined : run.checkpoints.get(run.latestId);
    return latest && copy(latest);
  }

  async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    const records = [...(this.run(pipelineId)?.checkpoints.values() ?? [])];
    const metadata: StoredMetadata[] = records.map((r) => ({ ...r.metadata }));
    return metadata.sort(compareStored).map((m) => ({ ok: true, metadata: m }));
  }

  async listPipelineIds(): Promise<string[]> {
    return [...this.runs.keys()].sort();
  }

  async listRuns(query: ListRunsQuery): Promise<RunPage> {
    return this.index.list(query);
  }

  async updateCheckpoint(checkpointId: string, patch: StatusPatch): Promise<void> {
    const pipelineId = this.runOf.get(checkpointId);
    const run = pipelineId === undefined ? undefined : this.runs.get(pipelineId);
    const record = run?.checkpoints.get(checkpointId);
    if (!run || !record) throw new CheckpointNotFoundError(checkpointId);
    run.checkpoints.set(checkpointId, { metadata: applyPatch(record.metadata, patch), body: record.body });
    const m = record.metadata;
    this.feed.record({
      type: "status",
      pipelineId: m.pipeline_id,
      pipelineName: m.pipeline_name,
      checkpointId,
      sequence: m.sequence,
    });
  }

  async deleteCheckpoints(
    pipelineId: string,
    checkpointIds: readonly string[],
    options: DeleteCheckpointsOptions = {},
  ): Promise<number> {
    const run = this.run(pipelineId);
    if (!run) return 0;
    let deleted = 0;
    let through = -1;
    for (const id of checkpointIds) {
      const record = run.checkpoints.get(id);
      if (record && run.checkpoints.delete(id)) {
        this.runOf.delete(id);
        deleted++;
        through = Math.max(through, record.metadata.sequence);
        const m = record.metadata;
        this.feed.record({
          type: "deleted",
          pipelineId,
          pipelineName: m.pipeline_name,
          checkpointId: id,
          sequence: m.sequence,
        });
      }
    }
    const head = this.heads.get(pipelineId);
    if (options.retention && head && through >= 0) {
      const previous = head.pruned?.throughSequence ?? -1;
      const at = new Date().toISOString();
      this.heads.set(pipelineId, { ...head, pruned: { throughSequence: Math.max(previous, through), at } });
    }
    if (run.latestId !== undefined && !run.checkpoints.has(run.latestId)) run.latestId = newestId(run);
    this.dropIfEmpty(pipelineId, run);
    return deleted;
  }

  async getRunHead(pipelineId: string): Promise<RunHead | undefined> {
    const head = this.heads.get(pipelineId);
    return head && { ...head, ...(head.pruned ? { pruned: { ...head.pruned } } : {}) };
  }

  async getOutputs(pipelineId: string, hashes: readonly string[]): Promise<Map<string, string>> {
    const run = this.run(pipelineId);
    const found = new Map<string, string>();
    for (const hash of hashes) {
      const body = run?.outputs.get(hash);
      if (body !== undefined) found.set(hash, body);
    }
    return found;
  }

  async listOutputHashes(pipelineId: string): Promise<string[]> {
    return [...(this.run(pipelineId)?.outputs.keys() ?? [])].sort();
  }

  async deleteOutputs(pipelineId: string, hashes: readonly string[]): Promise<number> {
    const run = this.run(pipelineId);
    if (!run) return 0;
    let deleted = 0;
    for (const hash of hashes) if (run.outputs.delete(hash)) deleted++;
    this.dropIfEmpty(pipelineId, run);
    return deleted;
  }

  /** Drops the key record first (memory cannot be overwritten from JavaScript), then the run. */
  async deleteRun(pipelineId: string): Promise<void> {
    this.keys.delete(pipelineId);
    this.deleteNow(pipelineId);
  }

  private deleteNow(pipelineId: string): void {
    const held = this.heads.delete(pipelineId);
    const run = this.run(pipelineId);
    if (held || run)
      this.feed.record({
        type: "deleted",
        pipelineId,
        pipelineName: this.index.get(pipelineId)?.pipelineName ?? "",
      });
    if (!run) return;
    for (const id of run.checkpoints.keys()) this.runOf.delete(id);
    this.runs.delete(pipelineId);
    this.index.delete(pipelineId);
  }

  /** Recomputes the run's `listRuns` entry from its checkpoints: its oldest one names and dates it. */
  async rebuildIndexes(pipelineId: string): Promise<string[]> {
    const records = [...(this.run(pipelineId)?.checkpoints.values() ?? [])].map((r) => r.metadata);
    const first = records.sort(compareStored)[0];
    const before = this.index.get(pipelineId);
    const entry = first && {
      pipelineId,
      pipelineName: first.pipeline_name,
      createdAt: first.timestamp,
      // Finished is for good: its pipeline_complete checkpoint may have been deleted since.
      finished: before?.finished === true || records.some((m) => m.stage_name === "pipeline_complete"),
    };
    const same =
      entry && before
        ? entry.pipelineName === before.pipelineName &&
          entry.createdAt === before.createdAt &&
          entry.finished === before.finished
        : entry === before;
    if (same) return [];
    this.index.set(pipelineId, entry);
    if (!entry) return [`removed the runs-by-name entry of ${pipelineId}: it has no checkpoints`];
    return [
      `rebuilt the runs-by-name entry of ${pipelineId} (${entry.pipelineName}, created ${entry.createdAt})`,
    ];
  }

  /** Never found: this store keeps parsed records, so it can never hold a corrupt entry. */
  async readCorruptEntry(entry: CorruptEntry): Promise<string> {
    throw notHeld(entry);
  }

  /** Never found: this store keeps parsed records, so it can never hold a corrupt entry. */
  async removeCorruptEntry(entry: CorruptEntry): Promise<void> {
    throw notHeld(entry);
  }

  async readChanges(since: string | undefined, limit: number): Promise<StoreChange[]> {
    return this.feed.read(since, limit);
  }

  async feedCursor(): Promise<string> {
    return this.feed.cursor();
  }

  waitForChanges(since: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.feed.wait(since, timeoutMs, signal);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.meta.get(key);
  }

  async putMeta(key: string, value: string): Promise<void> {
    this.meta.set(key, value);
  }

  async close(): Promise<void> {}

  private dropIfEmpty(pipelineId: string, run: Run): void {
    if (run.checkpoints.size > 0 || run.outputs.size > 0) return;
    this.runs.delete(pipelineId);
    // The run is gone as a whole, so its next checkpoint starts a new entry.
    this.index.delete(pipelineId);
  }
}

const shared = new Map<string, MemoryStore>();

/** The process-wide memory store of that name (`memory:name`), so several managers share it. */
export function sharedMemoryStore(name: string): MemoryStore {
  let store = shared.get(name);
  if (!store) {
    store = new MemoryStore({ name });
    shared.set(name, store);
  }
  return store;
}
