/**
 * `compareStores`: what differs between two stores, run by run, on the records as stored (below
 * the at-rest layer), so encrypted and compressed runs compare without keys. It is the check
 * after a replication or a failover: a replica equal to its source reports nothing.
 */
import { CheckpointCorruptError, KeyMissingError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";
import { DEFAULT_MAX_RECORD_BYTES } from "../manager/limits.js";
import { rawStore } from "../manager/sealed-transfer.js";
import { openStore, type StoreSpec } from "../stores/registry.js";
import type { CheckpointStore, ListedCheckpoint } from "../stores/types.js";
import { AtRestStore } from "../transforms/at-rest-store.js";
import { readOutline } from "../transforms/envelope.js";

/** Which runs `compareStores` looks at. */
export interface CompareStoresFilters {
  /** Only this run. */
  pipelineId?: string;
  /** Only runs of this pipeline name. */
  name?: string;
}

/** A run, or a checkpoint, held by one side only. */
export interface OneSidedRun {
  pipelineId: string;
  pipelineName: string;
  checkpoints: number;
}

/** A checkpoint of one side, by id and sequence. */
export interface CheckpointRef {
  checkpointId: string;
  sequence: number;
  stageName: string;
}

/** The same checkpoint id holding different content on each side. */
export interface DivergedCheckpoint extends CheckpointRef {
  checksumA: string;
  checksumB: string;
}

/** A mutable field (`status`, `error_message`, `resume_count`) that differs. */
export interface StatusDifference {
  checkpointId: string;
  field: "status" | "error_message" | "resume_count";
  a: unknown;
  b: unknown;
}

/** A stored entry that cannot be parsed, on one side. */
export interface CorruptRef {
  checkpointId: string | undefined;
  location: string;
  reason: string;
}

/** What differs in a run both stores hold. */
export interface RunDifference {
  pipelineId: string;
  pipelineName: string;
  checkpointsOnlyInA: CheckpointRef[];
  checkpointsOnlyInB: CheckpointRef[];
  diverged: DivergedCheckpoint[];
  status: StatusDifference[];
  outputsOnlyInA: string[];
  outputsOnlyInB: string[];
  corruptInA: CorruptRef[];
  corruptInB: CorruptRef[];
  /** The run's key record (encrypted runs): absent on one side, or different. */
  runKey?: "only in A" | "only in B" | "different";
}

/** What `compareStores` found. */
export interface StoreComparison {
  /** Where each store is (`location`). */
  a: string;
  b: string;
  /** True when nothing differs. */
  equal: boolean;
  /** Runs looked at (present on either side and matching the filters). */
  runsCompared: number;
  onlyInA: OneSidedRun[];
  onlyInB: OneSidedRun[];
  /** Runs on both sides that differ (runs that are equal are not listed). */
  runs: RunDifference[];
}

/** One side of a run as listed: readable checkpoints by id, and corrupt entries. */
interface Side {
  byId: Map<string, StoredMetadata>;
  corrupt: CorruptRef[];
  name: string;
}

async function side(store: CheckpointStore, pipelineId: string): Promise<Side> {
  const listed: ListedCheckpoint[] = await store.listCheckpoints(pipelineId);
  const byId = new Map<string, StoredMetadata>();
  const corrupt: CorruptRef[] = [];
  for (const entry of listed) {
    if (entry.ok) byId.set(entry.metadata.checkpoint_id, entry.metadata);
    else {
      const { checkpointId, location, reason } = entry.corrupt;
      corrupt.push({ checkpointId, location, reason });
    }
  }
  const first = byId.values().next().value;
  return { byId, corrupt, name: first?.pipeline_name ?? "" };
}

const ref = (m: StoredMetadata): CheckpointRef => ({
  checkpointId: m.checkpoint_id,
  sequence: m.sequence,
  stageName: m.stage_name,
});

const STATUS_FIELDS = ["status", "error_message", "resume_count"] as const;

function difference(a: readonly string[], b: ReadonlySet<string>): string[] {
  return a.filter((x) => !b.has(x)).sort();
}

async function runKeyDifference(
  a: CheckpointStore,
  b: CheckpointStore,
  pipelineId: string,
): Promise<RunDifference["runKey"]> {
  const [keyA, keyB] = await Promise.all([a.getRunKey?.(pipelineId), b.getRunKey?.(pipelineId)]);
  if (keyA === keyB) return undefined;
  if (keyB === undefined) return "only in A";
  if (keyA === undefined) return "only in B";
  return "different";
}

/** Compares one run both stores hold; undefined when it is the same on both. */
async function compareRun(
  a: CheckpointStore,
  b: CheckpointStore,
  pipelineId: string,
  sideA: Side,
  sideB: Side,
): Promise<RunDifference | undefined> {
  const diff: RunDifference = {
    pipelineId,
    pipelineName: sideA.name || sideB.name,
    checkpointsOnlyInA: [],
    checkpointsOnlyInB: [],
    diverged: [],
    status: [],
    outputsOnlyInA: [],
    outputsOnlyInB: [],
    corruptInA: sideA.corrupt,
    corruptInB: sideB.corrupt,
  };
  for (const [id, ma] of sideA.byId) {
    const mb = sideB.byId.get(id);
    if (!mb) {
      diff.checkpointsOnlyInA.push(ref(ma));
      continue;
    }
    if (ma.checksum !== mb.checksum) {
      diff.diverged.push({ ...ref(ma), checksumA: ma.checksum, checksumB: mb.checksum });
      continue;
    }
    for (const field of STATUS_FIELDS) {
      if (ma[field] !== mb[field]) diff.status.push({ checkpointId: id, field, a: ma[field], b: mb[field] });
    }
  }
  for (const [id, mb] of sideB.byId) if (!sideA.byId.has(id)) diff.checkpointsOnlyInB.push(ref(mb));
  const [hashesA, hashesB] = await Promise.all([
    a.listOutputHashes(pipelineId),
    b.listOutputHashes(pipelineId),
  ]);
  const onlyA = difference(hashesA, new Set(hashesB));
  const onlyB = difference(hashesB, new Set(hashesA));
  if (onlyA.length + onlyB.length > 0) {
    // An output no checkpoint refers to (left by a checkpoint deletion) is not copied by a
    // replication: only outputs some checkpoint of either side needs are differences.
    const needed = new Set([
      ...(await referencedOutputs(a, sideA.byId.keys())),
      ...(await referencedOutputs(b, sideB.byId.keys())),
    ]);
    const all = needed.has(EVERY_OUTPUT);
    diff.outputsOnlyInA = onlyA.filter((h) => all || needed.has(h));
    diff.outputsOnlyInB = onlyB.filter((h) => all || needed.has(h));
  }
  const runKey = await runKeyDifference(a, b, pipelineId);
  if (runKey !== undefined) diff.runKey = runKey;
  const differs =
    diff.checkpointsOnlyInA.length +
      diff.checkpointsOnlyInB.length +
      diff.diverged.length +
      diff.status.length >
      0 ||
    diff.outputsOnlyInA.length +
      diff.outputsOnlyInB.length +
      diff.corruptInA.length +
      diff.corruptInB.length >
      0 ||
    runKey !== undefined;
  return differs ? diff : undefined;
}

/** Stands for "every output": a checkpoint whose references cannot be read without its key. */
const EVERY_OUTPUT = "*";

/** The output addresses the checkpoints `ids` refer to, read from their outlines (no key needed). */
async function referencedOutputs(store: CheckpointStore, ids: Iterable<string>): Promise<Set<string>> {
  // Decompressed, still sealed: the outline of an encrypted record is in clear.
  const view = new AtRestStore(await openStore(store), { maxBytes: DEFAULT_MAX_RECORD_BYTES });
  const refs = new Set<string>();
  for (const id of ids) {
    try {
      const record = await view.getCheckpoint(id);
      if (!record) continue;
      for (const hash of Object.values(readOutline(record.metadata, record.body).output_refs)) refs.add(hash);
    } catch (error) {
      if (!(error instanceof CheckpointCorruptError || error instanceof KeyMissingError)) throw error;
      refs.add(EVERY_OUTPUT);
    }
  }
  return refs;
}

function oneSided(pipelineId: string, s: Side): OneSidedRun {
  return { pipelineId, pipelineName: s.name, checkpoints: s.byId.size + s.corrupt.length };
}

/** Opens a spec as a raw store for reading (closed by `close` unless it was an instance). */
async function openRaw(spec: StoreSpec): Promise<{ store: CheckpointStore; close: () => Promise<void> }> {
  if (typeof spec === "object" && "putCheckpoint" in spec) {
    return { store: rawStore(spec), close: async () => undefined };
  }
  const store = await openStore(spec, { readOnly: true });
  return { store, close: () => store.close() };
}

/**
 * Compares two stores run by run: runs only on one side, checkpoints only on one side, the same
 * checkpoint id with different checksums (diverged), status fields that differ, outputs missing on
 * one side, corrupt entries and key records. Records are compared as stored: no keys are needed.
 * Stores given as URLs or configurations are opened read-only and closed; instances are left open.
 */
export async function compareStores(
  a: StoreSpec,
  b: StoreSpec,
  filters: CompareStoresFilters = {},
): Promise<StoreComparison> {
  const left = await openRaw(a);
  try {
    const right = await openRaw(b);
    try {
      return await compareOpen(left.store, right.store, filters);
    } finally {
      await right.close();
    }
  } finally {
    await left.close();
  }
}

async function compareOpen(
  a: CheckpointStore,
  b: CheckpointStore,
  filters: CompareStoresFilters,
): Promise<StoreComparison> {
  const ids = async (store: CheckpointStore) =>
    filters.pipelineId === undefined
      ? store.listPipelineIds()
      : (await store.listPipelineIds()).filter((id) => id === filters.pipelineId);
  const [idsA, idsB] = await Promise.all([ids(a), ids(b)]);
  const all = [...new Set([...idsA, ...idsB])].sort();
  const inA = new Set(idsA);
  const inB = new Set(idsB);
  const result: StoreComparison = {
    a: a.location,
    b: b.location,
    equal: true,
    runsCompared: 0,
    onlyInA: [],
    onlyInB: [],
    runs: [],
  };
  const empty: Side = { byId: new Map(), corrupt: [], name: "" };
  for (const pipelineId of all) {
    const [sideA, sideB] = await Promise.all([
      inA.has(pipelineId) ? side(a, pipelineId) : empty,
      inB.has(pipelineId) ? side(b, pipelineId) : empty,
    ]);
    if (filters.name !== undefined && sideA.name !== filters.name && sideB.name !== filters.name) continue;
    result.runsCompared++;
    if (!inB.has(pipelineId)) result.onlyInA.push(oneSided(pipelineId, sideA));
    else if (!inA.has(pipelineId)) result.onlyInB.push(oneSided(pipelineId, sideB));
    else {
      const diff = await compareRun(a, b, pipelineId, sideA, sideB);
      if (diff) result.runs.push(diff);
    }
  }
  result.equal = result.onlyInA.length === 0 && result.onlyInB.length === 0 && result.runs.length === 0;
  return result;
}
