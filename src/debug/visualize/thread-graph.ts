/**
 * The checkpoint tree of a LangGraph thread as a plain model: one group per namespace (subgraph),
 * one node per checkpoint, parent → child edges (a fork is a node with two children), pending
 * writes as small leaves on their checkpoint, and a dotted edge from the parent graph's
 * checkpoint whose task ran a subgraph to that subgraph's first checkpoint. The SVG, PNG, Mermaid
 * and DOT renderers draw this model; none reads the store.
 */
import { shortIds, type ThreadCheckpoint, type ThreadNamespace, type ThreadView } from "../thread.js";
import { writesLabel } from "../thread-text.js";

/** A namespace: one run, drawn as a cluster. */
export interface ThreadGroup {
  /** Node key of the cluster: `ns<i>`. */
  id: string;
  /** `(root graph)`, the namespace, or `(unknown)`. */
  label: string;
  runId: string;
}

/** A checkpoint, or the pending writes of one task (a leaf), or several collapsed into one leaf. */
export interface ThreadGraphNode {
  id: string;
  group: string;
  kind: "checkpoint" | "writes";
  /** Short LangGraph id, then `source · step n` (checkpoints); `task …: channels` (writes). */
  lines: string[];
  /** Full id and problems, for tooltips. */
  tooltip: string;
  /** LangGraph `source` of a checkpoint (`input`, `loop`, `update`, `fork`); `writes` for a leaf. */
  source: string;
  check: "valid" | "invalid" | "sealed";
  /** The checkpoint LangGraph loads for its namespace. */
  latest: boolean;
  /** More than one child checkpoint. */
  fork: boolean;
}

/** An edge: parent → child, checkpoint → its writes, or parent graph → subgraph. */
export interface ThreadGraphEdge {
  from: string;
  to: string;
  kind: "parent" | "writes" | "subgraph";
}

/** The model every thread renderer draws. */
export interface ThreadGraph {
  threadId: string;
  title: string;
  generatedAt: Date;
  groups: ThreadGroup[];
  nodes: ThreadGraphNode[];
  edges: ThreadGraphEdge[];
  counts: { checkpoints: number; writes: number; forks: number; invalid: number; namespaces: number };
}

/** Above this many writes records, a checkpoint's writes are drawn as one leaf with a count. */
const MAX_WRITE_LEAVES = 3;

function groupLabel(ns: ThreadNamespace): string {
  return ns.namespace === null ? "(unknown namespace)" : ns.namespace === "" ? "(root graph)" : ns.namespace;
}

/** Builds the model of a thread (or of the namespaces of it `view` holds). */
export function buildThreadGraph(view: ThreadView, now = new Date()): ThreadGraph {
  const labels = shortIds(view.namespaces.flatMap((ns) => ns.checkpoints.map((c) => c.lgId)));
  const groups: ThreadGroup[] = [];
  const nodes: ThreadGraphNode[] = [];
  const edges: ThreadGraphEdge[] = [];
  for (const [i, ns] of view.namespaces.entries()) {
    const group = `ns${i}`;
    groups.push({ id: group, label: groupLabel(ns), runId: ns.runId });
    const present = new Set(ns.checkpoints.map((c) => c.cairnId));
    for (const c of ns.checkpoints) {
      nodes.push(checkpointNode(c, group, labels.get(c.lgId) ?? c.lgId, c === ns.latest));
      if (c.parentCairnId !== null && present.has(c.parentCairnId))
        edges.push({ from: c.parentCairnId, to: c.cairnId, kind: "parent" });
      addWrites(c, group, nodes, edges);
    }
  }
  edges.push(...subgraphEdges(view.namespaces));
  const checkpoints = nodes.filter((n) => n.kind === "checkpoint");
  const writes = view.namespaces.reduce((sum, ns) => sum + ns.writes.length, 0);
  return {
    threadId: view.threadId,
    title: `LangGraph thread ${JSON.stringify(view.threadId)}`,
    generatedAt: now,
    groups,
    nodes,
    edges,
    counts: {
      checkpoints: checkpoints.length,
      writes,
      forks: checkpoints.filter((n) => n.fork).length,
      invalid: nodes.filter((n) => n.check === "invalid").length,
      namespaces: groups.length,
    },
  };
}

function checkpointNode(c: ThreadCheckpoint, group: string, label: string, latest: boolean): ThreadGraphNode {
  return {
    id: c.cairnId,
    group,
    kind: "checkpoint",
    lines: [label, `${c.source} · step ${c.step}`],
    tooltip: [`${c.lgId} (${c.cairnId})`, ...c.problems].join("\n"),
    source: c.source,
    check: c.check,
    latest,
    fork: c.children.length > 1,
  };
}

/** The writes leaves of a checkpoint: one per record, or one with a count when there are many. */
function addWrites(
  c: ThreadCheckpoint,
  group: string,
  nodes: ThreadGraphNode[],
  edges: ThreadGraphEdge[],
): void {
  if (c.writes.length === 0) return;
  const check: ThreadGraphNode["check"] = c.writes.some((w) => w.check === "invalid")
    ? "invalid"
    : c.writes.some((w) => w.check === "sealed")
      ? "sealed"
      : "valid";
  const leaves: Pick<ThreadGraphNode, "id" | "lines" | "tooltip" | "check">[] =
    c.writes.length > MAX_WRITE_LEAVES
      ? [
          {
            id: `${c.cairnId}.writes`,
            lines: [`${c.writes.length} writes records`],
            tooltip: c.writes.map((w) => `${w.cairnId}: ${writesLabel(w)}`).join("\n"),
            check,
          },
        ]
      : c.writes.map((w) => ({
          id: w.cairnId,
          lines: [`✎ ${writesLabel(w, 13)}`],
          tooltip: [w.cairnId, ...w.problems].join("\n"),
          check: w.check,
        }));
  for (const leaf of leaves) {
    nodes.push({ ...leaf, group, kind: "writes", source: "writes", latest: false, fork: false });
    edges.push({ from: c.cairnId, to: leaf.id, kind: "writes" });
  }
}

/**
 * Parent graph → subgraph: namespace `a:t1|b:t2` ran as task `t2` of namespace `a:t1`; the
 * checkpoint of the parent namespace holding that task's writes is where it ran.
 */
function subgraphEdges(namespaces: readonly ThreadNamespace[]): ThreadGraphEdge[] {
  const byNs = new Map(
    namespaces.flatMap((ns) => (ns.namespace === null ? [] : [[ns.namespace, ns] as const])),
  );
  const edges: ThreadGraphEdge[] = [];
  for (const ns of namespaces) {
    if (!ns.namespace) continue;
    const segments = ns.namespace.split("|");
    const task = (segments.at(-1) ?? "").split(":").slice(1).join(":");
    const parent = byNs.get(segments.slice(0, -1).join("|"));
    const first = ns.checkpoints[0];
    if (!parent || !first || task === "") continue;
    const ran = parent.writes.find((w) => w.taskId === task);
    if (ran?.parentCairnId) edges.push({ from: ran.parentCairnId, to: first.cairnId, kind: "subgraph" });
  }
  return edges;
}
