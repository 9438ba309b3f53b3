/**
 * A LangGraph thread as the debug views see it: its runs (one per namespace), each a tree of
 * checkpoint records with pending-writes records hanging off them. Built from the one run walk
 * (`walkRun`), so every view agrees with `cairn validate` on what verifies; what does not verify
 * is shown from its metadata only (never from unverified state). No LangGraph import: the CLI
 * must work without the optional peer installed.
 */
import { CheckpointNotFoundError } from "../core/errors.js";
import type { StoredMetadata } from "../core/record.js";
import { threadPipelineName, threadRunId } from "../langgraph/ids.js";
import { type CheckpointState, channelKey } from "../langgraph/records.js";
import { deriveMap, versionsOf } from "../langgraph/thread-store.js";
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { walkRun } from "../manager/run-walk.js";
import { decodeVerified } from "../manager/verify.js";

/** How the run walk judged a record: verified, failed the check, or encrypted without the key. */
export type ThreadCheck = "valid" | "invalid" | "sealed";

/** One channel of a checkpoint record: its LangGraph version, and whether a value is stored. */
export interface ThreadChannel {
  version: string | number;
  stored: boolean;
}

/** Fields every record of a thread run has. */
interface ThreadRecordBase {
  cairnId: string;
  sequence: number;
  timestamp: Date;
  check: ThreadCheck;
  /** What the check found (empty unless `invalid`). */
  problems: string[];
  /** The record's parent (a checkpoint's LangGraph parent; a writes record's checkpoint). */
  parentCairnId: string | null;
}

/** A LangGraph checkpoint stored as one cairn record. */
export interface ThreadCheckpoint extends ThreadRecordBase {
  kind: "checkpoint";
  /** The LangGraph checkpoint id (from the state; from the cairn id when the state is unknown). */
  lgId: string;
  /** The LangGraph parent id; undefined when the state is unknown and there is no parent record. */
  parentLgId: string | null | undefined;
  /** `metadata.source`: input, loop, update, fork (the record's stage name). */
  source: string;
  /** `metadata.step` (the record's stage index − 1). */
  step: number;
  /** The channels this record holds (all of them when `full`, else the ones that changed); null when unknown. */
  channels: Record<string, ThreadChannel> | null;
  full: boolean | null;
  /** The checkpoint's `channel_versions` (what it inherits is kept only at these); null when unknown. */
  versions: Record<string, string | number> | null;
  /** Cairn ids of the checkpoints LangGraph names this one as parent of (more than one: a fork). */
  children: string[];
  /** The pending-writes records attached to it, oldest first. */
  writes: ThreadWrites[];
}

/** One `putWrites` call: the pending writes of one task, attached to a checkpoint. */
export interface ThreadWrites extends ThreadRecordBase {
  kind: "writes";
  /** The LangGraph id of the checkpoint the writes attach to; null when the state is unknown. */
  checkpointLgId: string | null;
  taskId: string | null;
  taskPath: string | null;
  /** Channel and index of each write; null when the state is unknown. */
  writes: { channel: string; idx: number }[] | null;
}

/** One namespace of a thread: one cairn run. */
export interface ThreadNamespace {
  runId: string;
  /** `""` for the root graph; null when no record of the run could be read to tell. */
  namespace: string | null;
  /** Checkpoints in write order (`sequence`). */
  checkpoints: ThreadCheckpoint[];
  writes: ThreadWrites[];
  /** Listing entries that do not even parse. */
  unreadable: number;
  /** Checkpoints with more than one child checkpoint: where the thread was forked. */
  forks: ThreadCheckpoint[];
  /** Checkpoints without child checkpoints: the tips of the branches. */
  leaves: ThreadCheckpoint[];
  /** The checkpoint LangGraph loads for this namespace: the greatest LangGraph id. */
  latest: ThreadCheckpoint | undefined;
  lastTimestamp: Date | undefined;
}

/** A thread: every namespace run, the root namespace first. */
export interface ThreadView {
  threadId: string;
  pipelineName: string;
  namespaces: ThreadNamespace[];
}

/** The `state_data.langgraph` object of a thread record, or undefined when it has none. */
export function langgraphState(stateData: Record<string, unknown>): Record<string, unknown> | undefined {
  const lg = stateData.langgraph;
  return lg !== null && typeof lg === "object" && !Array.isArray(lg)
    ? (lg as Record<string, unknown>)
    : undefined;
}

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

/**
 * The channel map of a checkpoint state (`{ channel: version }`); a channel has a value when the
 * record's outputs hold its key (a channel without one was emptied). Null when malformed.
 */
function channelsOf(
  value: unknown,
  refs: Readonly<Record<string, string>>,
): Record<string, ThreadChannel> | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const channels: Record<string, ThreadChannel> = {};
  for (const [name, version] of Object.entries(value)) {
    if (typeof version !== "string" && typeof version !== "number") return null;
    channels[name] = { version, stored: channelKey(name) in refs };
  }
  return channels;
}

/** `metadata.source` and `metadata.step` when the metadata is stored as JSON (the default serde). */
function sourceAndStep(metadata: unknown): { source?: string; step?: number } {
  if (!Array.isArray(metadata) || metadata[0] !== "json") return {};
  const m = metadata[1] as { source?: unknown; step?: unknown } | null;
  if (m === null || typeof m !== "object") return {};
  return {
    ...(typeof m.source === "string" ? { source: m.source } : {}),
    ...(typeof m.step === "number" ? { step: m.step } : {}),
  };
}

function writesOf(value: unknown): { channel: string; idx: number }[] | null {
  if (!Array.isArray(value)) return null;
  const writes: { channel: string; idx: number }[] = [];
  for (const w of value) {
    if (!Array.isArray(w) || typeof w[0] !== "string" || typeof w[1] !== "number") return null;
    writes.push({ channel: w[0], idx: w[1] });
  }
  return writes;
}

/** The run ids of every namespace of `threadId`, from the runs-by-name index. */
export async function threadRunIds(manager: CheckpointManager, threadId: string): Promise<string[]> {
  const name = threadPipelineName(threadId);
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await manager.listRuns(name, { limit: 1000, ...(cursor ? { cursor } : {}) });
    ids.push(...page.runs.map((r) => r.pipelineId));
    cursor = page.nextCursor;
  } while (cursor);
  if (ids.length === 0) {
    throw new CheckpointNotFoundError(name, `No LangGraph thread ${JSON.stringify(threadId)} in the store`);
  }
  // The root namespace (run id = the pipeline name) first, then the subgraphs by run id.
  return ids.sort((a, b) => (a === name ? -1 : b === name ? 1 : a.localeCompare(b)));
}

/** The run of namespace `namespace` of `threadId`; `CAIRN_NOT_FOUND` when the thread or namespace is not stored. */
export async function findThreadRun(
  manager: CheckpointManager,
  threadId: string,
  namespace = "",
): Promise<string> {
  const runId = threadRunId(threadId, namespace);
  if (!(await threadRunIds(manager, threadId)).includes(runId)) {
    throw new CheckpointNotFoundError(
      runId,
      `LangGraph thread ${JSON.stringify(threadId)} has no namespace ${JSON.stringify(namespace)} in the store ` +
        "(`cairn list --thread <thread_id>` lists its namespaces)",
    );
  }
  return runId;
}

/** Reads one namespace run of a thread with the run walk. */
export async function readThreadRun(
  manager: CheckpointManager,
  runId: string,
  onProgress?: (done: number, total: number) => void,
): Promise<ThreadNamespace & { threadId: string | null }> {
  const store = await manager.getStore();
  const checkpoints: ThreadCheckpoint[] = [];
  const writes: ThreadWrites[] = [];
  let unreadable = 0;
  let namespace: string | null = null;
  let threadId: string | null = null;
  const walk = walkRun(store, runId, { sealed: "report", ...(onProgress ? { onProgress } : {}) });
  for await (const { verdict, verified } of walk) {
    if (verdict.status === "gone") continue;
    const m = verdict.metadata;
    if (!m) {
      unreadable++;
      continue;
    }
    const lg = verified ? langgraphState(decodeVerified(verified).stateData) : undefined;
    const refs = verified?.body.output_refs ?? {};
    if (lg) {
      namespace ??= str(lg.checkpoint_ns);
      threadId ??= str(lg.thread_id);
    }
    const check: ThreadCheck = verdict.status === "valid" ? "valid" : verdict.status;
    const base = {
      cairnId: m.checkpoint_id,
      sequence: m.sequence,
      timestamp: new Date(m.timestamp),
      check,
      problems: verdict.problems.map((p) => `${p.kind}: ${p.message}`),
      parentCairnId: m.parent_checkpoint_id,
    };
    if (lg ? lg.kind === "writes" : m.stage_name === "writes") {
      writes.push({
        ...base,
        kind: "writes",
        checkpointLgId: str(lg?.checkpoint_id),
        taskId: str(lg?.task_id),
        taskPath: str(lg?.task_path),
        writes: lg ? writesOf(lg.writes) : null,
      });
    } else {
      checkpoints.push(checkpointOf(base, m, runId, lg, refs));
    }
  }
  if (namespace === null && runId.split(".").length === 3) namespace = "";
  return { ...linkTree(runId, namespace, checkpoints, writes, unreadable), threadId };
}

function checkpointOf(
  base: Omit<
    ThreadCheckpoint,
    | "kind"
    | "lgId"
    | "parentLgId"
    | "source"
    | "step"
    | "channels"
    | "full"
    | "versions"
    | "children"
    | "writes"
  >,
  m: StoredMetadata,
  runId: string,
  lg: Record<string, unknown> | undefined,
  refs: Readonly<Record<string, string>>,
): ThreadCheckpoint {
  const meta = sourceAndStep(lg?.metadata);
  const fromId = m.checkpoint_id.startsWith(`${runId}.`)
    ? m.checkpoint_id.slice(runId.length + 1)
    : m.checkpoint_id;
  return {
    ...base,
    kind: "checkpoint",
    lgId: str(lg?.checkpoint_id) ?? fromId,
    parentLgId: lg ? (str(lg.parent_id) ?? null) : m.parent_checkpoint_id === null ? null : undefined,
    // The record's stage says the same, cut to a name (source) and floored at -1 (step).
    source: meta.source ?? m.stage_name,
    step: meta.step ?? m.stage_index - 1,
    channels: lg ? channelsOf(lg.channels, refs) : null,
    full: lg && typeof lg.full === "boolean" ? lg.full : null,
    versions: Array.isArray(lg?.checkpoint) ? versionsOf(lg as Pick<CheckpointState, "checkpoint">) : null,
    children: [],
    writes: [],
  };
}

/** Links children and writes to their checkpoints and finds forks, leaves and the latest. */
function linkTree(
  runId: string,
  namespace: string | null,
  checkpoints: ThreadCheckpoint[],
  writes: ThreadWrites[],
  unreadable: number,
): ThreadNamespace {
  const byId = new Map(checkpoints.map((c) => [c.cairnId, c]));
  const byLg = new Map(checkpoints.map((c) => [c.lgId, c]));
  for (const c of checkpoints) {
    // The saver links a record to a parent it held when writing; one put later is linked here by
    // its LangGraph id, as LangGraph itself would find it.
    if (c.parentCairnId === null && c.parentLgId) c.parentCairnId = byLg.get(c.parentLgId)?.cairnId ?? null;
    if (c.parentCairnId !== null) byId.get(c.parentCairnId)?.children.push(c.cairnId);
    // A parent the record names but the state could not: known from the parent record.
    if (c.parentLgId === undefined && c.parentCairnId !== null) {
      c.parentLgId = byId.get(c.parentCairnId)?.lgId;
    }
  }
  for (const w of writes) {
    if (w.parentCairnId === null && w.checkpointLgId !== null)
      w.parentCairnId = byLg.get(w.checkpointLgId)?.cairnId ?? null;
    if (w.parentCairnId !== null) byId.get(w.parentCairnId)?.writes.push(w);
  }
  let latest: ThreadCheckpoint | undefined;
  for (const c of checkpoints) if (!latest || c.lgId > latest.lgId) latest = c;
  const times = [...checkpoints, ...writes].map((r) => r.timestamp.getTime());
  return {
    runId,
    namespace,
    checkpoints,
    writes,
    unreadable,
    forks: checkpoints.filter((c) => c.children.length > 1),
    leaves: checkpoints.filter((c) => c.children.length === 0),
    latest,
    lastTimestamp: times.length > 0 ? new Date(Math.max(...times)) : undefined,
  };
}

/** Reads every namespace of a thread; `CAIRN_NOT_FOUND` when the store holds none. */
export async function readThread(manager: CheckpointManager, threadId: string): Promise<ThreadView> {
  const namespaces: ThreadNamespace[] = [];
  for (const runId of await threadRunIds(manager, threadId)) {
    const { threadId: _, ...ns } = await readThreadRun(manager, runId);
    namespaces.push(ns);
  }
  return { threadId, pipelineName: threadPipelineName(threadId), namespaces };
}

/**
 * The full channel map at checkpoint `c`: its own channels over those of its ancestors up to the
 * nearest one that holds them all (a delta record names only what changed). Null when a record
 * on the way cannot be read.
 */
export function resolvedChannels(
  ns: ThreadNamespace,
  c: ThreadCheckpoint,
): Record<string, ThreadChannel & { changed: boolean }> | null {
  const byId = new Map(ns.checkpoints.map((x) => [x.cairnId, x]));
  const chain: ThreadCheckpoint[] = [];
  for (let current: ThreadCheckpoint | undefined = c; current; ) {
    if (current.channels === null || chain.length > 64) return null;
    chain.push(current);
    if (current.full) break;
    current = current.parentCairnId === null ? undefined : byId.get(current.parentCairnId);
  }
  // The saver's own rule (deriveMap): inherited channels only at the version the checkpoint records.
  let map: Map<string, readonly [string | number, ThreadChannel]> | undefined;
  for (const rec of chain.reverse()) {
    const own = Object.entries(rec.channels ?? {}).map(
      ([name, ch]) => [name, [ch.version, ch] as const] as const,
    );
    if (!rec.full && rec.versions === null) return null;
    map = rec.full ? new Map(own) : deriveMap(map, rec.versions ?? {}, own);
  }
  const result: Record<string, ThreadChannel & { changed: boolean }> = {};
  for (const [name, [, ch]] of map ?? []) result[name] = { ...ch, changed: name in (c.channels ?? {}) };
  return result;
}

/**
 * Short labels for LangGraph ids: uuid6 ids of one thread share their leading (time) digits, so
 * the label skips the prefix every id shares and keeps the next `min` or more characters, as many
 * as tell the ids apart (`…a3f2-6c41`).
 */
export function shortIds(ids: readonly string[], min = 9): Map<string, string> {
  const unique = [...new Set(ids)];
  const first = unique[0] ?? "";
  // One id alone: past its first group, as if it shared that with others.
  let common = unique.length === 1 ? first.indexOf("-") + 1 : 0;
  if (unique.length > 1) {
    while (common < first.length && unique.every((id) => id[common] === first[common])) common++;
    // Cut after a dash, so labels keep whole uuid groups.
    common = first.lastIndexOf("-", common - 1) + 1;
  }
  let length = min;
  const cut = (id: string) => id.slice(Math.min(common, Math.max(0, id.length - length)), common + length);
  while (length < first.length && new Set(unique.map(cut)).size < unique.length) length += 4;
  return new Map(
    unique.map((id) => {
      const label = cut(id);
      const start = id.indexOf(label);
      // One mark is enough: a label from the middle says so in front (`…99f9-6900`).
      const head = start > 0 ? "…" : "";
      const tail = start === 0 && label.length < id.length ? "…" : "";
      return [id, `${head}${label}${tail}`];
    }),
  );
}
