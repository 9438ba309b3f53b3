/**
 * The LangGraph part of `cairn analyze` for a thread run: its tree (forks, branch tips, depth),
 * the checkpoint LangGraph resumes from, and its pending writes. A thread run is a tree, not a
 * chain, and never "finishes": the pipeline notions of resume point and stage costs do not apply.
 */
import type { CheckpointManager } from "../manager/checkpoint-manager.js";
import { readThreadRun, shortIds, type ThreadCheckpoint } from "./thread.js";

/** A checkpoint as the thread analysis names it. */
export interface ThreadPoint {
  /** The LangGraph checkpoint id. */
  checkpointId: string;
  cairnId: string;
  source: string;
  step: number;
  /** Checkpoints from the namespace's first one to this one, itself included. */
  depth: number;
}

/** What `analyzePipeline` adds for a LangGraph thread run. */
export interface ThreadAnalysis {
  threadId: string | null;
  namespace: string | null;
  checkpoints: number;
  /** Pending-writes records (one per `putWrites` call). */
  writes: number;
  /** Where the thread was forked (time travel, `updateState` on an old checkpoint), with the branches' first checkpoints. */
  forks: (ThreadPoint & { children: string[] })[];
  /** The tip of every branch; the one with the greatest LangGraph id is `latest`. */
  branches: ThreadPoint[];
  /** What LangGraph loads for the namespace when no checkpoint id is given. */
  latest: ThreadPoint | null;
  /** Pending writes attached to `latest`: the tasks that finished after it, kept for the next step. */
  latestWrites: number;
  /** Records that did not verify or are encrypted without the key, so the tree may be missing parts. */
  unverified: number;
}

/** Reads the thread run and analyzes its tree. */
export async function analyzeThread(manager: CheckpointManager, runId: string): Promise<ThreadAnalysis> {
  const ns = await readThreadRun(manager, runId);
  const depth = new Map<string, number>();
  // Oldest first: a parent is written before its children.
  for (const c of ns.checkpoints) {
    const parent = c.parentCairnId === null ? undefined : depth.get(c.parentCairnId);
    depth.set(c.cairnId, (parent ?? 0) + 1);
  }
  const point = (c: ThreadCheckpoint): ThreadPoint => ({
    checkpointId: c.lgId,
    cairnId: c.cairnId,
    source: c.source,
    step: c.step,
    depth: depth.get(c.cairnId) ?? 1,
  });
  const byId = new Map(ns.checkpoints.map((c) => [c.cairnId, c]));
  const records = [...ns.checkpoints, ...ns.writes];
  return {
    threadId: ns.threadId,
    namespace: ns.namespace,
    checkpoints: ns.checkpoints.length,
    writes: ns.writes.length,
    forks: ns.forks.map((c) => ({
      ...point(c),
      children: c.children.map((id) => byId.get(id)?.lgId ?? id),
    })),
    branches: ns.leaves.map(point),
    latest: ns.latest ? point(ns.latest) : null,
    latestWrites: ns.latest?.writes.length ?? 0,
    unverified: records.filter((r) => r.check !== "valid").length + ns.unreadable,
  };
}

/** Text lines of the thread part of an analysis. */
export function renderThreadAnalysis(t: ThreadAnalysis): string[] {
  const labels = shortIds([
    ...t.branches.map((b) => b.checkpointId),
    ...t.forks.flatMap((f) => [f.checkpointId, ...f.children]),
    ...(t.latest ? [t.latest.checkpointId] : []),
  ]);
  const name = (p: ThreadPoint) =>
    `${labels.get(p.checkpointId)} (${p.source}, step ${p.step}, depth ${p.depth})`;
  const ns = t.namespace === null ? "(unknown)" : t.namespace === "" ? "(root graph)" : t.namespace;
  const lines = [
    "LangGraph thread:",
    `  Thread:          ${t.threadId === null ? "(unknown)" : JSON.stringify(t.threadId)}`,
    `  Namespace:       ${ns}`,
    `  Tree:            ${t.checkpoints} checkpoint${t.checkpoints === 1 ? "" : "s"}, ${t.writes} pending-writes record${t.writes === 1 ? "" : "s"}, ${t.forks.length} fork${t.forks.length === 1 ? "" : "s"}, ${t.branches.length} branch${t.branches.length === 1 ? "" : "es"}`,
    `  Latest:          ${t.latest ? `${t.latest.checkpointId} (${t.latest.source}, step ${t.latest.step}), ${t.latestWrites} pending-writes record${t.latestWrites === 1 ? "" : "s"}` : "none"}`,
  ];
  for (const f of t.forks) {
    lines.push(`  Fork at ${name(f)} → ${f.children.map((c) => labels.get(c) ?? c).join(", ")}`);
  }
  if (t.branches.length > 1) for (const b of t.branches) lines.push(`  Branch tip ${name(b)}`);
  return lines;
}

/** The recovery point of a LangGraph thread: the checkpoint LangGraph loads, and its branches. */
export function threadRecoveryRows(t: ThreadAnalysis): [string, string][] {
  if (!t.latest) return [["Checkpoint", "none: no checkpoint of this namespace verifies"]];
  return [
    ["Checkpoint", t.latest.cairnId],
    [
      "LangGraph checkpoint",
      `${t.latest.checkpointId} (${t.latest.source}, step ${t.latest.step}): the latest, which LangGraph loads`,
    ],
    [
      "Branches",
      `${t.branches.length} (${t.forks.length} fork${t.forks.length === 1 ? "" : "s"}); another branch resumes by its checkpoint_id`,
    ],
  ];
}
