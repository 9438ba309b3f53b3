/**
 * The checkpoint graph of one run as a plain model: one node per checkpoint (and per unreadable
 * entry of the listing), edges from each checkpoint's parent to it. Every renderer (SVG, PNG,
 * Mermaid, DOT) draws this model; none of them reads the store.
 */
import type { StoredMetadata } from "../../core/record.js";
import type { CheckpointStatusValue, ValidationProblem } from "../../core/types.js";
import { isQuarantined } from "../../manager/check.js";
import type { CheckpointManager } from "../../manager/checkpoint-manager.js";

/** A checkpoint whose metadata could be read. */
export interface CheckpointGraphNode {
  kind: "checkpoint";
  /** Node key in the graph: the checkpoint id. */
  id: string;
  checkpointId: string;
  /** Position in the run's history, from 1. */
  sequence: number;
  stageName: string;
  stageIndex: number;
  status: CheckpointStatusValue;
  timestamp: Date;
  /** Bytes of encoded state and outputs. */
  dataSize: number;
  resumeCount: number;
  errorMessage: string | undefined;
  /** What the run walk (`validateRun`) says; undefined when validation was not asked for. */
  valid: boolean | undefined;
  /** What validation found (empty when valid or not validated). */
  problems: ValidationProblem[];
  /** The run resumed from this checkpoint (resume count > 0 or status `resumed`). */
  resumed: boolean;
  /** The stage failed here (status `failed`, or an error message other than a quarantine's). */
  failed: boolean;
  /** Quarantined by `cairn repair` (invalid, status `expired`): a handled problem, not a failure. */
  quarantined: boolean;
  /** Position in the store's listing, from 0 (oldest first). */
  position: number;
}

/** An entry of the listing that cannot be parsed. */
export interface CorruptGraphNode {
  kind: "corrupt";
  /** Node key: `corrupt:<location>`. */
  id: string;
  /** The checkpoint id, when the store can tell it from the location. */
  checkpointId: string | undefined;
  /** Where it is: a file path, a row key... */
  location: string;
  /** Why it cannot be read. */
  reason: string;
  /** Position in the store's listing, from 0. */
  position: number;
}

/** A parent a checkpoint refers to that is no longer in the store. */
export interface RemovedGraphNode {
  kind: "removed";
  /** Node key: the removed checkpoint's id. */
  id: string;
  checkpointId: string;
}

/** One node of the graph. */
export type GraphNode = CheckpointGraphNode | CorruptGraphNode | RemovedGraphNode;

/** A parent → child link. */
export interface GraphEdge {
  /** Node id of the parent. */
  from: string;
  /** Node id of the child. */
  to: string;
}

/** The checkpoint graph of one run. */
export interface CheckpointGraph {
  pipelineId: string;
  /** Undefined when no checkpoint of the run can be read. */
  pipelineName: string | undefined;
  /** `<pipeline name> — run <pipeline id>` (`run <pipeline id>` when the two are the same). */
  title: string;
  /** When the model was built. */
  generatedAt: Date;
  /** Whether checkpoints were validated. */
  validated: boolean;
  /** Listing order: checkpoints and corrupt entries oldest first, removed parents before their child. */
  nodes: GraphNode[];
  edges: GraphEdge[];
  counts: GraphCounts;
}

/** Totals shown in titles and returned by the CLI. */
export interface GraphCounts {
  checkpoints: number;
  corrupt: number;
  removed: number;
  /** Invalid checkpoints, quarantined ones included. */
  invalid: number;
  /** Quarantined checkpoints (counted in `invalid` too when validated). */
  quarantined: number;
  resumed: number;
  failed: number;
}

/** Options of {@link buildCheckpointGraph}. */
export interface BuildGraphOptions {
  /** Check every checkpoint with the run walk (default true). */
  validate?: boolean;
  /** Time stamped on the graph (default now). */
  now?: Date;
}

/** Builds the graph model of a run from the store; an unknown run is `CAIRN_NOT_FOUND`. */
export async function buildCheckpointGraph(
  manager: CheckpointManager,
  pipelineId: string,
  options: BuildGraphOptions = {},
): Promise<CheckpointGraph> {
  const validate = options.validate ?? true;
  // Validated, the run walk says what each entry is; otherwise the listing alone is drawn.
  const verdicts = validate
    ? (await manager.validateRun(pipelineId, { sealed: "report" })).checkpoints
    : (await manager.listRun(pipelineId)).map((entry) => ({
        status: undefined,
        problems: [],
        quarantined: entry.ok && isQuarantined(entry.metadata),
        metadata: entry.ok ? entry.metadata : undefined,
        corrupt: entry.ok ? undefined : entry.corrupt,
      }));
  const listed: (CheckpointGraphNode | CorruptGraphNode)[] = [];
  const parents = new Map<string, string>();
  let pipelineName: string | undefined;
  for (const [position, verdict] of verdicts.entries()) {
    // Deleted while the run was walked: no longer part of it.
    if (verdict.status === "gone") continue;
    if (verdict.corrupt) {
      const { checkpointId, location, reason } = verdict.corrupt;
      listed.push({ kind: "corrupt", id: `corrupt:${location}`, checkpointId, location, reason, position });
      continue;
    }
    const m = verdict.metadata as StoredMetadata;
    pipelineName ??= m.pipeline_name;
    // Sealed (no key): not verified either way, like a graph drawn without validation.
    const valid =
      verdict.status === undefined || verdict.status === "sealed" ? undefined : verdict.status === "valid";
    const problems = verdict.problems;
    const errorMessage = m.error_message ?? undefined;
    const quarantined = verdict.quarantined;
    listed.push({
      kind: "checkpoint",
      id: m.checkpoint_id,
      checkpointId: m.checkpoint_id,
      sequence: m.sequence,
      stageName: m.stage_name,
      stageIndex: m.stage_index,
      status: m.status,
      timestamp: new Date(m.timestamp),
      dataSize: m.data_size,
      resumeCount: m.resume_count,
      errorMessage,
      valid,
      problems,
      resumed: m.resume_count > 0 || m.status === "resumed",
      failed: m.status === "failed" || (Boolean(errorMessage) && !quarantined),
      quarantined,
      position,
    });
    if (m.parent_checkpoint_id) parents.set(m.checkpoint_id, m.parent_checkpoint_id);
  }
  const { nodes, edges } = linkParents(listed, parents);
  return {
    pipelineId,
    pipelineName,
    title:
      pipelineName && pipelineName !== pipelineId
        ? `${pipelineName} — run ${pipelineId}`
        : `run ${pipelineId}`,
    generatedAt: options.now ?? new Date(),
    validated: validate,
    nodes,
    edges,
    counts: countNodes(nodes),
  };
}

/**
 * Edges from each checkpoint's parent. A parent that is an unreadable entry links to that entry; a
 * parent no longer stored becomes a `removed` node placed just before its first child.
 */
function linkParents(
  listed: readonly (CheckpointGraphNode | CorruptGraphNode)[],
  parents: ReadonlyMap<string, string>,
): { nodes: GraphNode[]; edges: GraphEdge[] } {
  const byCheckpointId = new Map<string, string>();
  for (const node of listed) {
    if (node.kind === "checkpoint") byCheckpointId.set(node.checkpointId, node.id);
    else if (node.checkpointId !== undefined && !byCheckpointId.has(node.checkpointId)) {
      byCheckpointId.set(node.checkpointId, node.id);
    }
  }
  const nodes: GraphNode[] = [];
  const edges: GraphEdge[] = [];
  const removed = new Set<string>();
  for (const node of listed) {
    const parentId = node.kind === "checkpoint" ? parents.get(node.checkpointId) : undefined;
    if (parentId !== undefined) {
      let from = byCheckpointId.get(parentId);
      if (from === undefined) {
        from = `removed:${parentId}`;
        if (!removed.has(from)) {
          removed.add(from);
          nodes.push({ kind: "removed", id: from, checkpointId: parentId });
        }
      }
      edges.push({ from, to: node.id });
    }
    nodes.push(node);
  }
  return { nodes, edges };
}

function countNodes(nodes: readonly GraphNode[]): GraphCounts {
  const counts: GraphCounts = {
    checkpoints: 0,
    corrupt: 0,
    removed: 0,
    invalid: 0,
    quarantined: 0,
    resumed: 0,
    failed: 0,
  };
  for (const node of nodes) {
    if (node.kind === "corrupt") counts.corrupt++;
    else if (node.kind === "removed") counts.removed++;
    else {
      counts.checkpoints++;
      if (node.valid === false) counts.invalid++;
      if (node.quarantined) counts.quarantined++;
      if (node.resumed) counts.resumed++;
      if (node.failed) counts.failed++;
    }
  }
  return counts;
}
