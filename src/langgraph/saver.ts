/**
 * `CairnSaver`: a LangGraph.js checkpointer over any cairn store. LangGraph's base class is the
 * optional peer `@langchain/langgraph-checkpoint`, loaded when this entry is imported (never by
 * the package root); without it the import fails with `MissingDriverError`.
 *
 * A thread namespace is one cairn run; each checkpoint and each `putWrites` call is one verified
 * record in it (see thread-store.ts and docs/ARCHITECTURE.md, "LangGraph threads").
 */
import type { RunnableConfig } from "@langchain/core/runnables";
import type {
  ChannelVersions,
  Checkpoint,
  CheckpointListOptions,
  CheckpointMetadata,
  CheckpointTuple,
  DeltaChannelHistory,
  PendingWrite,
  SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import { encode } from "../core/codec.js";
import { InvalidArgumentError } from "../core/errors.js";
import { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { CheckpointManagerOptions } from "../manager/manager-options.js";
import { loadDriver } from "../stores/driver.js";
import { deltaChannelHistory } from "./delta-history.js";
import {
  assertThreadId,
  threadCheckpointId,
  threadPipelineName,
  threadRunId,
  writesRecordId,
} from "./ids.js";
import { listTuples } from "./list.js";
import { PutOrder, settledLater } from "./put-order.js";
import {
  type CheckpointState,
  channelKey,
  toSerdeValue,
  type Version,
  valueOutput,
  writeKey,
} from "./records.js";
import {
  type ChannelMap,
  deriveMap,
  FULL_MAP_CHANNELS,
  isIdTaken,
  MAX_DEPTH,
  type ReadRecord,
  ThreadStore,
} from "./thread-store.js";
import { buildTuple, type ReadThread } from "./tuple.js";

type Peer = typeof import("@langchain/langgraph-checkpoint");

const peer: Peer = await loadDriver(
  "langgraph",
  "@langchain/langgraph-checkpoint",
  () => import("@langchain/langgraph-checkpoint"),
  (m) => (typeof m.BaseCheckpointSaver === "function" ? (m as unknown as Peer) : undefined),
  "CairnSaver (cairn-pipelines/langgraph)",
);

/** How a `CairnSaver` reaches its store: store options as everywhere in cairn, or a manager. */
export type CairnSaverOptions = CheckpointManagerOptions | { manager: CheckpointManager };

/** Pending-writes records a checkpoint may get before `putWrites` gives up looking for a free slot. */
const MAX_WRITE_RECORDS = 10_000;

function configurable(config: RunnableConfig | undefined, what: string) {
  const c = config?.configurable;
  if (c === undefined || c === null)
    throw new InvalidArgumentError(`${what}: config.configurable is missing`);
  return c as { thread_id?: unknown; checkpoint_ns?: unknown; checkpoint_id?: unknown };
}

function namespaceOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value !== "string")
    throw new InvalidArgumentError(`checkpoint_ns must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/** A LangGraph checkpointer storing threads in cairn, every read verified. */
export class CairnSaver extends peer.BaseCheckpointSaver<number> {
  /** The manager whose store holds the threads. */
  readonly manager: CheckpointManager;
  private readonly ownsManager: boolean;
  private threads: ThreadStore | undefined;
  /** The order of puts and writes in progress: what a put's children and writes wait for. */
  private readonly order = new PutOrder((id) => this.threads?.isKnown(id) ?? false);

  constructor(options: CairnSaverOptions = {}, serde?: SerializerProtocol) {
    super(serde);
    if ("manager" in options && options.manager instanceof CheckpointManager) {
      this.manager = options.manager;
      this.ownsManager = false;
    } else {
      this.manager = new CheckpointManager(options as CheckpointManagerOptions);
      this.ownsManager = true;
    }
  }

  private async store(): Promise<ThreadStore> {
    if (!this.threads) this.threads = new ThreadStore(await this.manager.getStore());
    return this.threads;
  }

  private reader(threads: ThreadStore): ReadThread {
    return { threads, serde: this.serde, peer, nextVersion: () => this.getNextVersion(undefined) };
  }

  /** The checkpoint record a config names (`checkpoint_id`), or the thread namespace's latest. */
  private async find(
    config: RunnableConfig,
    threads: ThreadStore,
  ): Promise<{ found: ReadRecord<CheckpointState>; writes?: number } | undefined> {
    const c = configurable(config, "getTuple");
    if (c.thread_id === undefined) return undefined;
    const threadId = assertThreadId(c.thread_id);
    const ns = namespaceOf(c.checkpoint_ns);
    const runId = threadRunId(threadId, ns);
    let found: ReadRecord | undefined;
    let writes: number | undefined;
    if (c.checkpoint_id !== undefined && c.checkpoint_id !== null) {
      found = await threads.read(threadCheckpointId(runId, String(c.checkpoint_id)));
    } else {
      // Every record carries the run's greatest checkpoint id as of its write: one read finds it.
      const newest = await threads.newest(runId);
      const latest = newest?.state.latest[1];
      if (!newest || !latest) return undefined;
      const tipId = newest.record.metadata.checkpoint_id;
      found = latest === tipId ? newest : await threads.read(latest);
      // Nothing is newer than the tip: if it is the latest checkpoint or its n-th writes record,
      // the checkpoint has exactly 0 or n pending-writes records.
      if (latest === tipId) writes = (newest.state as CheckpointState).prior_writes ?? 0;
      else if (tipId.startsWith(`${latest}.w`) && /^\d+$/.test(tipId.slice(latest.length + 2)))
        writes = Number(tipId.slice(latest.length + 2));
    }
    if (found?.state.kind !== "checkpoint") return undefined;
    // The run id is a hash of thread and namespace: a record of another thread is not this one's.
    if (found.state.thread_id !== threadId || found.state.checkpoint_ns !== ns) return undefined;
    return { found: found as ReadRecord<CheckpointState>, ...(writes === undefined ? {} : { writes }) };
  }

  /** The checkpoint a config names (`checkpoint_id`), or the thread namespace's latest. */
  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const threads = await this.store();
    const hit = await this.find(config, threads);
    return hit && buildTuple(this.reader(threads), hit.found, hit.writes);
  }

  /** Pending writes and seed of each channel along the config's ancestors (LangGraph's delta channels). */
  override async getDeltaChannelHistory(options: {
    config: RunnableConfig;
    channels: string[];
  }): Promise<Record<string, DeltaChannelHistory>> {
    const threads = await this.store();
    const start = await this.find(options.config, threads);
    return deltaChannelHistory(this.reader(threads), start?.found, options.channels);
  }

  /** The checkpoints of a thread (or of every thread), newest first, with `before`, `limit`, `filter`. */
  async *list(config: RunnableConfig, options: CheckpointListOptions = {}): AsyncGenerator<CheckpointTuple> {
    const c = config?.configurable ?? {};
    const threadId = c.thread_id === undefined ? undefined : assertThreadId(c.thread_id);
    const ns = c.checkpoint_ns === undefined ? undefined : namespaceOf(c.checkpoint_ns);
    const threads = await this.store();
    yield* listTuples(this.reader(threads), { threadId, ns, ...options });
  }

  /** Stores a checkpoint as the child of the one the config names; returns its config. */
  async put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    newVersions: ChannelVersions,
  ): Promise<RunnableConfig> {
    const c = configurable(config, "put");
    const threadId = assertThreadId(c.thread_id);
    const ns = namespaceOf(c.checkpoint_ns);
    if (typeof checkpoint?.id !== "string" || checkpoint.id === "")
      throw new InvalidArgumentError("put: the checkpoint has no id");
    const runId = threadRunId(threadId, ns);
    const id = threadCheckpointId(runId, checkpoint.id);
    const parentLg =
      c.checkpoint_id === undefined || c.checkpoint_id === null ? null : String(c.checkpoint_id);
    const parentId = parentLg === null ? null : threadCheckpointId(runId, parentLg);
    // Serialized now, as the caller's objects are at the call: the write may wait for its parent.
    const plain = this.serde.constructor === peer.JsonPlusSerializer;
    const { channel_values: values, ...rest } = checkpoint;
    const serialized = settledLater(
      Promise.all([
        toSerdeValue(this.serde, rest, plain),
        toSerdeValue(this.serde, metadata, plain),
        Promise.all(
          Object.keys(newVersions)
            .filter((channel) => (values as Record<string, unknown>)[channel] !== undefined)
            .map(async (channel) => {
              const value = (values as Record<string, unknown>)[channel];
              return [channel, await valueOutput(this.serde, value, `channel ${channel}`, plain)] as const;
            }),
        ),
      ]),
    );
    // LangGraph does not wait for a put before the next put or the checkpoint's writes: each
    // waits here for the put it builds on, so a record is always written after its parent.
    return this.order.sequenced(parentId, id, async () => {
      const threads = await this.store();
      const [stored, meta, channelOutputs] = await serialized;
      const fresh = new Map(channelOutputs);
      await threads.exclusive(runId, async () => {
        // A parent this store does not hold (LangGraph does not insist on one) is named, not linked.
        const parent = parentId === null ? undefined : await threads.knownCheckpoint(parentId);
        // Writes this process stored for the checkpoint before its put (see afterPut).
        const prior = threads.cachedWriteCount(id) ?? 0;
        let written: { map: ChannelMap; depth: number } | undefined;
        try {
          const record = await threads.append(runId, (latest, key) => {
            const own: [string, readonly [Version, string | null]][] = Object.entries(newVersions).map(
              ([channel, version]) => [channel, [version, fresh.get(channel)?.addressIn(key) ?? null]],
            );
            const map = deriveMap(parent?.map, checkpoint.channel_versions, own);
            const full = !parent || parent.depth + 1 >= MAX_DEPTH || map.size <= FULL_MAP_CHANNELS;
            const entries = full ? [...map] : own;
            const refs = new Map<string, string>();
            for (const [channel, [, address]] of entries) if (address) refs.set(channelKey(channel), address);
            const outputs = new Map([...fresh].map(([channel, out]) => [channelKey(channel), out]));
            written = { map, depth: full ? 0 : (parent?.depth ?? 0) + 1 };
            const step = (metadata as { step?: unknown })?.step;
            const source = (metadata as { source?: unknown })?.source;
            const state: CheckpointState = {
              kind: "checkpoint",
              thread_id: threadId,
              checkpoint_ns: ns,
              checkpoint_id: checkpoint.id,
              parent_id: parentLg,
              checkpoint: stored,
              metadata: meta,
              channels: Object.fromEntries(entries.map(([channel, [version]]) => [channel, version])),
              full,
              depth: written.depth,
              ...(prior > 0 ? { prior_writes: prior } : {}),
              latest: latest && latest[0] > checkpoint.id ? latest : [checkpoint.id, id],
            };
            return {
              id,
              pipelineName: threadPipelineName(threadId),
              stageName: typeof source === "string" && /^[a-z_]{1,32}$/.test(source) ? source : "checkpoint",
              stageIndex: typeof step === "number" && Number.isInteger(step) ? Math.max(0, step + 1) : 0,
              parent: parent && parentId ? { id: parentId, checksum: parent.checksum } : null,
              state,
              refs,
              outputs,
            };
          });
          if (written) {
            threads.remember(id, {
              checksum: record.metadata.checksum,
              stageIndex: record.metadata.stage_index,
              ...written,
            });
            threads.countWrite(id, prior);
          }
        } catch (error) {
          if (!isIdTaken(error)) throw error;
          await this.assertSameCheckpoint(threads, id, stored, meta, parentLg, error);
        }
      });
      return { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: checkpoint.id } };
    });
  }

  /** A second `put` of a stored checkpoint is a no-op when it is the same checkpoint. */
  private async assertSameCheckpoint(
    threads: ThreadStore,
    id: string,
    stored: unknown,
    meta: unknown,
    parentLg: string | null,
    error: unknown,
  ): Promise<void> {
    const existing = await threads.read(id);
    const same =
      existing?.state.kind === "checkpoint" &&
      // Canonical text on both sides: the stored state comes back with its keys sorted.
      encode(existing.state.checkpoint) === encode(stored) &&
      encode(existing.state.metadata) === encode(meta) &&
      existing.state.parent_id === parentLg;
    if (!same) throw error;
  }

  /** Stores the writes of one task against the checkpoint the config names. */
  async putWrites(
    config: RunnableConfig,
    writes: PendingWrite[],
    taskId: string,
    taskPath = "",
  ): Promise<void> {
    const c = configurable(config, "putWrites");
    const threadId = assertThreadId(c.thread_id);
    const ns = namespaceOf(c.checkpoint_ns);
    if (c.checkpoint_id === undefined || c.checkpoint_id === null)
      throw new InvalidArgumentError("putWrites: config.configurable.checkpoint_id is missing");
    if (typeof taskId !== "string") throw new InvalidArgumentError("putWrites: taskId must be a string");
    const checkpointLg = String(c.checkpoint_id);
    const runId = threadRunId(threadId, ns);
    const checkpointId = threadCheckpointId(runId, checkpointLg);
    const plain = this.serde.constructor === peer.JsonPlusSerializer;
    const serialized = settledLater(
      Promise.all(
        writes.map(
          async ([channel, value], i) =>
            [writeKey(i), await valueOutput(this.serde, value, `write ${i} (${channel})`, plain)] as const,
        ),
      ),
    );
    return this.order.afterPut(runId, checkpointId, async () => {
      const threads = await this.store();
      const outputs = new Map(await serialized);
      const entries = writes.map(([channel], i): [string, number] => [
        channel,
        peer.WRITES_IDX_MAP[channel] ?? i,
      ]);
      await threads.exclusive(runId, async () => {
        // LangGraph may write to a checkpoint not stored (yet): the writes then name it, unlinked.
        const target = await threads.knownCheckpoint(checkpointId);
        const parent = target ? { id: checkpointId, checksum: target.checksum } : null;
        for (let n = (await threads.writeCount(checkpointId)) + 1; n <= MAX_WRITE_RECORDS; n++) {
          try {
            await threads.append(runId, (latest, key) => ({
              id: writesRecordId(checkpointId, n),
              pipelineName: threadPipelineName(threadId),
              stageName: "writes",
              stageIndex: target?.stageIndex ?? 0,
              parent,
              state: {
                kind: "writes",
                thread_id: threadId,
                checkpoint_ns: ns,
                checkpoint_id: checkpointLg,
                task_id: taskId,
                task_path: taskPath,
                writes: entries,
                latest: latest ?? ["", ""],
              },
              refs: new Map([...outputs].map(([k, out]) => [k, out.addressIn(key)])),
              outputs,
            }));
            threads.countWrite(checkpointId, n);
            return;
          } catch (error) {
            // Another process took this slot: the next one is free.
            if (!isIdTaken(error)) throw error;
          }
        }
        throw new InvalidArgumentError(
          `putWrites: checkpoint ${checkpointLg} has ${MAX_WRITE_RECORDS} write records`,
        );
      });
    });
  }

  /** Deletes every namespace of a thread: its checkpoints, pending writes and values. */
  async deleteThread(threadId: string): Promise<void> {
    assertThreadId(threadId);
    const threads = await this.store();
    const store = threads.store;
    const pipelineName = threadPipelineName(threadId);
    const runs = new Set<string>([threadRunId(threadId)]);
    let cursor: string | undefined;
    do {
      const page = await store.listRuns({ pipelineName, limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const run of page.runs) runs.add(run.pipelineId);
      cursor = page.nextCursor;
    } while (cursor);
    // Subgraph namespaces first: a kill half-way leaves the root, so the thread is still listed.
    for (const runId of [...runs].sort((a, b) => b.length - a.length)) {
      await threads.exclusive(runId, async () => {
        await store.deleteRun(runId);
        threads.forget(runId);
      });
    }
  }

  /** Closes the store when this saver opened it. */
  async close(): Promise<void> {
    if (this.ownsManager) await this.manager.close();
  }
}

export type { ChannelVersions, CheckpointTuple };
export const { TASKS } = peer;
/** @internal */
export const peerModule = (): Peer => peer;
