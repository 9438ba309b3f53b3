/**
 * `cairn compare`: what differs between two checkpoints, usually two points of one run or the
 * same stage in two runs: metadata, stage lists, a structural diff of the state data, outputs
 * (by hash: the bytes are never diffed, they may be large) and provenance. Both are loaded
 * verified; a side that fails verification is compared as far as it can be read, and the
 * report says which side failed and why, instead of throwing.
 */
import { decodeTree, encode } from "../core/codec.js";
import { CheckpointCorruptError, CheckpointNotFoundError } from "../core/errors.js";
import { parseBody } from "../core/formats.js";
import { assertValidName } from "../core/ids.js";
import type { CheckpointBody, StoredMetadata } from "../core/record.js";
import { checkRecord, storeParents } from "../manager/check.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import type { CheckpointStore } from "../stores/types.js";

/** The metadata of one side, flattened for display and comparison. */
export interface MetadataSummary {
  pipelineId: string;
  pipelineName: string;
  stageName: string;
  stageIndex: number;
  sequence: number;
  timestamp: string;
  status: string;
  checksum: string;
  dataSize: number;
  errorMessage: string | null;
  resumeCount: number;
  parentCheckpointId: string | null;
  formatVersion: number;
}

/** One checkpoint of the comparison. */
export interface CompareSide {
  checkpointId: string;
  /** True when it passes the one checkpoint check (checksum, outputs, decoding, chain link). */
  verified: boolean;
  /** Why it failed verification; empty when verified. */
  problems: string[];
  /** Undefined when not even its metadata parses. */
  metadata: MetadataSummary | undefined;
}

/** Where a stage stands in one checkpoint. */
export type StageState = "completed" | "pending" | "absent";

/** One difference in the state data; `a`/`b` are display previews, truncated. */
export interface StateChange {
  path: string;
  change: "added" | "removed" | "changed";
  a?: string;
  b?: string;
}

/** One stage's output, compared by hash. */
export interface OutputChange {
  stage: string;
  change: "added" | "removed" | "changed" | "same";
  hashA?: string;
  hashB?: string;
}

/** What differs between two checkpoints. */
export interface CheckpointComparison {
  a: CompareSide;
  b: CompareSide;
  /** Both belong to the same run. */
  sameRun: boolean;
  /** Metadata fields whose values differ (the ids themselves left out). */
  metadata: { field: keyof MetadataSummary; a: unknown; b: unknown }[];
  stages: {
    /** Stages A knows (completed or pending) that B does not. */
    onlyInA: string[];
    onlyInB: string[];
    /** Stages both know, completed in one and pending in the other. */
    completedDiff: { stage: string; a: StageState; b: StageState }[];
  };
  state: StateChange[];
  /** True when the state diff stopped at {@link MAX_STATE_CHANGES}. */
  stateTruncated: boolean;
  outputs: OutputChange[];
  /** Stages whose provenance hash differs (absent on one side included). */
  provenance: { stage: string; a?: string; b?: string }[];
  /** What could not be compared, and why. */
  notes: string[];
}

/** Depth below which the state diff compares whole values instead of descending. */
export const MAX_STATE_DEPTH = 8;
/** Most state differences reported. */
export const MAX_STATE_CHANGES = 200;
/** Longest value preview, in characters. */
export const MAX_PREVIEW = 80;

/** One side as far as it reads: its report, body and decoded state, and its verified output texts. */
export interface Loaded {
  side: CompareSide;
  body: CheckpointBody | undefined;
  state: Record<string, unknown> | undefined;
  /** Output text by hash, each verified; absent when the side did not verify. */
  outputs?: ReadonlyMap<string, string>;
}

function summarize(m: StoredMetadata): MetadataSummary {
  return {
    pipelineId: m.pipeline_id,
    pipelineName: m.pipeline_name,
    stageName: m.stage_name,
    stageIndex: m.stage_index,
    sequence: m.sequence,
    timestamp: m.timestamp,
    status: m.status,
    checksum: m.checksum,
    dataSize: m.data_size,
    errorMessage: m.error_message,
    resumeCount: m.resume_count,
    parentCheckpointId: m.parent_checkpoint_id,
    formatVersion: m.format_version,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Loads one side verified, or as much of it as can be read; `CAIRN_NOT_FOUND` when it is absent. */
export async function loadSide(store: CheckpointStore, checkpointId: string): Promise<Loaded> {
  const side: CompareSide = { checkpointId, verified: false, problems: [], metadata: undefined };
  let record: Awaited<ReturnType<CheckpointStore["getCheckpoint"]>>;
  try {
    record = await store.getCheckpoint(checkpointId);
  } catch (error) {
    if (!(error instanceof CheckpointCorruptError)) throw error;
    side.problems.push(error.message);
    return { side, body: undefined, state: undefined };
  }
  if (!record) throw new CheckpointNotFoundError(checkpointId);
  side.metadata = summarize(record.metadata);
  const { problems, verified, checkpoint } = await checkRecord(store, record, storeParents(store));
  side.problems.push(...problems.map((p) => p.message));
  if (verified && checkpoint) {
    side.verified = problems.length === 0;
    return { side, body: verified.body, state: checkpoint.stateData, outputs: verified.outputs };
  }
  // Unverified: whatever still parses is compared, and the report says this side failed.
  let body: CheckpointBody | undefined;
  let state: Record<string, unknown> | undefined;
  try {
    body = parseBody(record.metadata, record.body);
    const decoded = decodeTree(body.state_data);
    if (isObject(decoded)) state = decoded;
  } catch {
    // Already among the problems (the body is what failed); nothing more to read.
  }
  return { side, body, state };
}

/** A short, single-line rendering of a value, truncated to {@link MAX_PREVIEW} characters. */
export function preview(value: unknown): string {
  let text: string;
  if (value === undefined) text = "undefined";
  else if (typeof value === "bigint") text = `${value}n`;
  else if (typeof value === "number") text = Object.is(value, -0) ? "-0" : String(value);
  else if (value instanceof Date) text = Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
  else if (value instanceof Map) text = `Map(${value.size})`;
  else if (value instanceof Set) text = `Set(${value.size})`;
  else if (ArrayBuffer.isView(value)) text = `${value.constructor.name}(${value.byteLength} bytes)`;
  else {
    try {
      text = encode(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > MAX_PREVIEW ? `${text.slice(0, MAX_PREVIEW - 1)}…` : text;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  try {
    // The canonical encoding is equal exactly when the values are (sorted keys, tagged types).
    return encode(a) === encode(b);
  } catch {
    return false;
  }
}

function childPath(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  const name = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
  if (path === "") return name.startsWith('"') ? `[${name}]` : name;
  return name.startsWith('"') ? `${path}[${name}]` : `${path}.${name}`;
}

/** One difference between two trees: where (the keys down to it) and the values on each side. */
export interface TreeChange {
  path: (string | number)[];
  change: "added" | "removed" | "changed";
  /** The value on side A; absent when added. */
  a?: unknown;
  /** The value on side B; absent when removed. */
  b?: unknown;
}

/**
 * Structural diff of two trees, depth- and size-limited, with paths as keys and the values as
 * they are (the console shows its own previews); {@link diffState} renders it for the CLI.
 */
export function diffTrees(a: unknown, b: unknown): { changes: TreeChange[]; truncated: boolean } {
  const changes: TreeChange[] = [];
  let truncated = false;
  const push = (change: TreeChange) => {
    if (changes.length >= MAX_STATE_CHANGES) truncated = true;
    else changes.push(change);
  };
  const walk = (x: unknown, y: unknown, path: (string | number)[], depth: number): void => {
    if (truncated) return;
    const bothObjects = isObject(x) && isObject(y) && !isTyped(x) && !isTyped(y);
    if (depth < MAX_STATE_DEPTH && bothObjects) {
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort();
      for (const key of keys) {
        const p = [...path, key];
        if (!(key in x)) push({ path: p, change: "added", b: y[key] });
        else if (!(key in y)) push({ path: p, change: "removed", a: x[key] });
        else walk(x[key], y[key], p, depth + 1);
      }
      return;
    }
    if (depth < MAX_STATE_DEPTH && Array.isArray(x) && Array.isArray(y)) {
      for (let i = 0; i < Math.max(x.length, y.length); i++) {
        const p = [...path, i];
        if (i >= x.length) push({ path: p, change: "added", b: y[i] });
        else if (i >= y.length) push({ path: p, change: "removed", a: x[i] });
        else walk(x[i], y[i], p, depth + 1);
      }
      return;
    }
    if (!sameValue(x, y)) push({ path, change: "changed", a: x, b: y });
  };
  walk(a, b, [], 0);
  return { changes, truncated };
}

/** Structural diff of two state trees, depth- and size-limited. */
export function diffState(a: unknown, b: unknown): { changes: StateChange[]; truncated: boolean } {
  const { changes, truncated } = diffTrees(a, b);
  return {
    changes: changes.map((c): StateChange => {
      const path = c.path.reduce<string>((p, key) => childPath(p, key), "") || "(state)";
      return {
        path,
        change: c.change,
        ...(c.change !== "added" ? { a: preview(c.a) } : {}),
        ...(c.change !== "removed" ? { b: preview(c.b) } : {}),
      };
    }),
    truncated,
  };
}

/** Dates, maps, sets and byte arrays are compared as whole values, not walked as objects. */
function isTyped(value: object): boolean {
  return value instanceof Date || value instanceof Map || value instanceof Set || ArrayBuffer.isView(value);
}

function stageState(body: CheckpointBody, stage: string): StageState {
  if (body.completed_stages.includes(stage)) return "completed";
  return body.pending_stages.includes(stage) ? "pending" : "absent";
}

/** Stages each side knows that the other does not, and those completed on one side only. */
export function compareStages(a: CheckpointBody, b: CheckpointBody): CheckpointComparison["stages"] {
  const all = [
    ...new Set([...a.completed_stages, ...a.pending_stages, ...b.completed_stages, ...b.pending_stages]),
  ];
  const result: CheckpointComparison["stages"] = { onlyInA: [], onlyInB: [], completedDiff: [] };
  for (const stage of all) {
    const sa = stageState(a, stage);
    const sb = stageState(b, stage);
    if (sb === "absent") result.onlyInA.push(stage);
    else if (sa === "absent") result.onlyInB.push(stage);
    else if (sa !== sb) result.completedDiff.push({ stage, a: sa, b: sb });
  }
  return result;
}

/** Each stage's output on the two sides, compared by hash. */
export function compareOutputs(a: CheckpointBody, b: CheckpointBody): OutputChange[] {
  const stages = [...new Set([...Object.keys(a.output_refs), ...Object.keys(b.output_refs)])].sort();
  return stages.map((stage): OutputChange => {
    const hashA = a.output_refs[stage];
    const hashB = b.output_refs[stage];
    if (hashA === undefined) return { stage, change: "added", hashB };
    if (hashB === undefined) return { stage, change: "removed", hashA };
    return { stage, change: hashA === hashB ? "same" : "changed", hashA, hashB };
  });
}

function compareProvenance(a: CheckpointBody, b: CheckpointBody): CheckpointComparison["provenance"] {
  const pa = a.provenance_hashes;
  const pb = b.provenance_hashes;
  const stages = [...new Set([...Object.keys(pa), ...Object.keys(pb)])].sort();
  return stages.filter((s) => pa[s] !== pb[s]).map((stage) => ({ stage, a: pa[stage], b: pb[stage] }));
}

function compareMetadata(a: CompareSide, b: CompareSide): CheckpointComparison["metadata"] {
  if (!a.metadata || !b.metadata) return [];
  const ma = a.metadata;
  const mb = b.metadata;
  return (Object.keys(ma) as (keyof MetadataSummary)[])
    .filter((field) => ma[field] !== mb[field])
    .map((field) => ({ field, a: ma[field], b: mb[field] }));
}

/** Compares two checkpoints; `CAIRN_NOT_FOUND` when either is absent, never throws for a corrupt one. */
export async function compareCheckpoints(
  manager: CheckpointManager,
  idA: string,
  idB: string,
): Promise<CheckpointComparison> {
  assertValidName("checkpointId", idA);
  assertValidName("checkpointId", idB);
  const store = await manager.getStore();
  const a = await loadSide(store, idA);
  const b = await loadSide(store, idB);
  const notes: string[] = [];
  for (const [name, loaded] of [
    ["A", a],
    ["B", b],
  ] as const) {
    if (!loaded.side.verified) {
      notes.push(
        `${name} (${loaded.side.checkpointId}) failed verification: compared as far as it can be read`,
      );
    }
    if (!loaded.body)
      notes.push(`${name}: the body cannot be read; stages, outputs and provenance not compared`);
    else if (!loaded.state) notes.push(`${name}: the state data cannot be decoded; state not compared`);
  }
  const state = a.state && b.state ? diffState(a.state, b.state) : { changes: [], truncated: false };
  return {
    a: a.side,
    b: b.side,
    sameRun: a.side.metadata !== undefined && a.side.metadata.pipelineId === b.side.metadata?.pipelineId,
    metadata: compareMetadata(a.side, b.side),
    stages:
      a.body && b.body ? compareStages(a.body, b.body) : { onlyInA: [], onlyInB: [], completedDiff: [] },
    state: state.changes,
    stateTruncated: state.truncated,
    outputs: a.body && b.body ? compareOutputs(a.body, b.body) : [],
    provenance: a.body && b.body ? compareProvenance(a.body, b.body) : [],
    notes,
  };
}
