/**
 * The LangGraph part of `cairn inspect` for a thread record: where it sits in its thread (thread,
 * namespace, LangGraph ids, parent, children), its channels and versions, and its pending writes.
 * Values are not repeated here: the outputs view shows them, one output per channel value.
 */
import { CheckpointNotFoundError } from "../core/errors.js";
import {
  resolvedChannels,
  type ThreadChannel,
  type ThreadCheckpoint,
  type ThreadNamespace,
  type ThreadWrites,
} from "./thread.js";

/** One channel at a checkpoint: its version, whether this record changed it, whether a value is stored. */
export interface InspectedChannel extends ThreadChannel {
  name: string;
  /** Named by this record (a delta record names only these); false: inherited from an ancestor. */
  changed: boolean;
}

/** What `cairn inspect` adds for a LangGraph checkpoint record. */
export interface ThreadCheckpointInspection {
  kind: "checkpoint";
  threadId: string | null;
  namespace: string | null;
  runId: string;
  checkpointId: string;
  parentCheckpointId: string | null | undefined;
  parentCairnId: string | null;
  source: string;
  step: number;
  /** True when this record holds every channel; false: only those that changed. */
  full: boolean | null;
  /** Every channel at this checkpoint, resolved through ancestors; null when a record on the way is unreadable. */
  channels: InspectedChannel[] | null;
  /** Child checkpoints (LangGraph ids): more than one is a fork. */
  children: string[];
  /** The checkpoint LangGraph loads for the namespace without a checkpoint id. */
  latest: boolean;
  pendingWrites: {
    cairnId: string;
    taskId: string | null;
    taskPath: string | null;
    channel: string;
    idx: number;
  }[];
  /** Writes records whose state could not be read (their channels are unknown). */
  unreadableWrites: string[];
}

/** What `cairn inspect` adds for a pending-writes record. */
export interface ThreadWritesInspection {
  kind: "writes";
  threadId: string | null;
  namespace: string | null;
  runId: string;
  /** The LangGraph checkpoint the writes attach to. */
  checkpointId: string | undefined;
  checkpointCairnId: string | null;
  taskId: string | null;
  taskPath: string | null;
  writes: { channel: string; idx: number }[] | null;
}

/** The LangGraph part of an inspection. */
export type ThreadInspection = ThreadCheckpointInspection | ThreadWritesInspection;

/**
 * Finds a record of a namespace by what a user may type: its cairn id, its LangGraph id, or a
 * part of the LangGraph id (a short label as the views print it) that names one checkpoint.
 */
export function findThreadRecord(ns: ThreadNamespace, id: string): ThreadCheckpoint | ThreadWrites {
  const exact =
    ns.checkpoints.find((c) => c.cairnId === id || c.lgId === id) ?? ns.writes.find((w) => w.cairnId === id);
  if (exact) return exact;
  const part = id.replace(/^…/, "");
  const matches = part.length >= 4 ? ns.checkpoints.filter((c) => c.lgId.includes(part)) : [];
  if (matches.length === 1) return matches[0] as ThreadCheckpoint;
  const why =
    matches.length > 1
      ? `${matches.length} checkpoints of run ${ns.runId} match ${JSON.stringify(id)}: give more of the id`
      : `No checkpoint ${JSON.stringify(id)} in run ${ns.runId} (by cairn id, LangGraph id or part of one)`;
  throw new CheckpointNotFoundError(id, why);
}

/** The LangGraph part of the inspection of `record`, a record of `ns`. */
export function inspectThreadRecord(
  ns: ThreadNamespace,
  threadId: string | null,
  record: ThreadCheckpoint | ThreadWrites,
): ThreadInspection {
  const where = { threadId, namespace: ns.namespace, runId: ns.runId };
  if (record.kind === "writes") {
    const checkpoint = ns.checkpoints.find((c) => c.cairnId === record.parentCairnId);
    return {
      kind: "writes",
      ...where,
      checkpointId: checkpoint?.lgId,
      checkpointCairnId: record.parentCairnId,
      taskId: record.taskId,
      taskPath: record.taskPath,
      writes: record.writes,
    };
  }
  const byId = new Map(ns.checkpoints.map((c) => [c.cairnId, c]));
  const resolved = resolvedChannels(ns, record);
  return {
    kind: "checkpoint",
    ...where,
    checkpointId: record.lgId,
    parentCheckpointId: record.parentLgId,
    parentCairnId: record.parentCairnId,
    source: record.source,
    step: record.step,
    full: record.full,
    channels: resolved
      ? Object.entries(resolved)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, ch]) => ({ name, ...ch }))
      : null,
    children: record.children.map((id) => byId.get(id)?.lgId ?? id),
    latest: ns.latest === record,
    pendingWrites: record.writes.flatMap((w) =>
      (w.writes ?? []).map((x) => ({ cairnId: w.cairnId, taskId: w.taskId, taskPath: w.taskPath, ...x })),
    ),
    unreadableWrites: record.writes.filter((w) => w.writes === null).map((w) => w.cairnId),
  };
}

/** Text lines of the LangGraph part, for `cairn inspect`. */
export function renderThreadInspection(t: ThreadInspection): string[] {
  const ns = t.namespace === null ? "(unknown)" : t.namespace === "" ? "(root graph)" : t.namespace;
  const field = (label: string, value: string) => `  ${`${label}:`.padEnd(16)}${value}`;
  const lines = [
    t.kind === "checkpoint" ? "LangGraph checkpoint:" : "LangGraph pending writes:",
    field("Thread", t.threadId === null ? "(unknown)" : JSON.stringify(t.threadId)),
    field("Namespace", ns),
  ];
  if (t.kind === "writes") {
    lines.push(
      field(
        "Checkpoint",
        `${t.checkpointId ?? "(unknown)"}${t.checkpointCairnId ? ` (${t.checkpointCairnId})` : ""}`,
      ),
      field("Task", t.taskId ?? "(unknown)"),
      field("Task path", t.taskPath || "(none)"),
    );
    if (t.writes === null) lines.push(field("Writes", "(unreadable)"));
    else if (t.writes.length === 0) lines.push(field("Writes", "(none)"));
    else {
      lines.push("  Writes:");
      for (const w of t.writes) lines.push(`    ${w.channel} [${w.idx}]`);
    }
    return lines;
  }
  const parent =
    t.parentCheckpointId === null
      ? "(none)"
      : `${t.parentCheckpointId ?? "(unknown)"}${t.parentCairnId ? ` (${t.parentCairnId})` : ""}`;
  lines.push(
    field("Checkpoint id", `${t.checkpointId}${t.latest ? " (latest of the namespace)" : ""}`),
    field("Parent", parent),
    field("Source / step", `${t.source}, step ${t.step}`),
    field(
      "Children",
      t.children.length === 0
        ? "(none)"
        : t.children.length === 1
          ? (t.children[0] as string)
          : `a fork: ${t.children.length} branches`,
    ),
  );
  if (t.children.length > 1) for (const child of t.children) lines.push(`    ${child}`);
  if (t.channels === null) lines.push(field("Channels", "(unknown: a record on the way is unreadable)"));
  else {
    const stored = t.full ? "this record holds every channel" : "this record holds the channels marked *";
    lines.push(`  Channels:       ${t.channels.length} (${stored})`);
    for (const c of t.channels) {
      const mark = !t.full && c.changed ? "*" : " ";
      lines.push(`   ${mark}${c.name.padEnd(24)} v${String(c.version)}${c.stored ? "" : " (empty)"}`);
    }
  }
  if (t.pendingWrites.length === 0 && t.unreadableWrites.length === 0)
    lines.push(field("Pending writes", "(none)"));
  else {
    const unreadable = t.unreadableWrites.length;
    const more = unreadable > 0 ? ` (+ ${unreadable} record${unreadable === 1 ? "" : "s"} not read)` : "";
    lines.push(`  Pending writes: ${t.pendingWrites.length}${more}`);
    for (const w of t.pendingWrites) lines.push(`    task ${w.taskId ?? "?"}  ${w.channel} [${w.idx}]`);
    for (const id of t.unreadableWrites)
      lines.push(`    ${id}: not verified (invalid, or encrypted without the key)`);
  }
  return lines;
}
