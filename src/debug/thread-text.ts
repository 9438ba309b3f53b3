/**
 * Text and JSON shapes of a thread's views (`cairn list --thread`): a table of its namespaces,
 * and one namespace as a tree, forks as branches. A straight chain stays in one column; only a
 * fork indents, so a long thread reads top to bottom like its history.
 */
import { CHECK_SYMBOLS } from "../manager/chain-text.js";
import { formatTime } from "./report-formats.js";
import { shortIds, type ThreadCheckpoint, type ThreadNamespace, type ThreadWrites } from "./thread.js";

/** How a namespace is named in text: `(root)` for the root graph's. */
export function namespaceLabel(namespace: string | null): string {
  return namespace === null ? "(unknown)" : namespace === "" ? "(root)" : namespace;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `✓`, or the check's mark for a record that did not verify. */
function mark(check: ThreadCheckpoint["check"]): string {
  return check === "valid" ? "✓" : check === "sealed" ? CHECK_SYMBOLS.sealed : CHECK_SYMBOLS.invalid;
}

/** Records that did not verify, in words (`2 invalid, 1 not verified`), or `all valid`. */
export function checkSummary(ns: ThreadNamespace): string {
  const records = [...ns.checkpoints, ...ns.writes];
  const invalid = records.filter((r) => r.check === "invalid").length + ns.unreadable;
  const sealed = records.filter((r) => r.check === "sealed").length;
  const parts = [
    invalid > 0 ? `${invalid} invalid` : "",
    sealed > 0 ? `${sealed} not verified (encrypted)` : "",
  ].filter((p) => p !== "");
  return parts.length > 0 ? parts.join(", ") : "all valid";
}

/** `task 6c1f0e2a…: messages, next` for one writes record; task ids longer than `max` are cut. */
export function writesLabel(w: ThreadWrites, max = 40): string {
  const task =
    w.taskId === null
      ? "task ?"
      : `task ${w.taskId.length > max ? `${w.taskId.slice(0, max - 1)}…` : w.taskId}`;
  const channels = w.writes === null ? "?" : [...new Set(w.writes.map((x) => x.channel))].join(", ");
  return `${task}: ${channels || "(none)"}`;
}

/** One row per namespace: what `cairn list --thread` prints. */
export function namespaceRows(namespaces: readonly ThreadNamespace[]): string[][] {
  const labels = shortIds(namespaces.flatMap((ns) => ns.checkpoints.map((c) => c.lgId)));
  return namespaces.map((ns) => [
    namespaceLabel(ns.namespace),
    ns.runId,
    String(ns.checkpoints.length),
    String(ns.writes.length),
    String(ns.forks.length),
    String(ns.leaves.length),
    ns.latest ? `${labels.get(ns.latest.lgId)} (${ns.latest.source}, step ${ns.latest.step})` : "-",
    formatTime(ns.lastTimestamp),
    checkSummary(ns),
  ]);
}

/** Headers of {@link namespaceRows}. */
export const NAMESPACE_HEADERS = [
  "NAMESPACE",
  "RUN ID",
  "CHECKPOINTS",
  "WRITES",
  "FORKS",
  "BRANCHES",
  "LATEST",
  "LAST UPDATE",
  "CHECK",
];

/** One namespace as a tree of checkpoints, pending writes under the checkpoint they attach to. */
export function renderThreadTree(threadId: string, ns: ThreadNamespace): string {
  const labels = shortIds(ns.checkpoints.map((c) => c.lgId));
  const byId = new Map(ns.checkpoints.map((c) => [c.cairnId, c]));
  const lines = [
    `Thread ${JSON.stringify(threadId)}, namespace ${namespaceLabel(ns.namespace)} (run ${ns.runId}): ` +
      `${plural(ns.checkpoints.length, "checkpoint")}, ${plural(ns.writes.length, "pending-writes record")}, ` +
      `${plural(ns.forks.length, "fork")}, ${plural(ns.leaves.length, "branch", "branches")}; ${checkSummary(ns)}`,
    "",
  ];
  const line = (c: ThreadCheckpoint) => {
    const latest = c === ns.latest ? "  ← latest" : "";
    const fork = c.children.length > 1 ? `  (fork: ${c.children.length} branches)` : "";
    return `${mark(c.check)} ${labels.get(c.lgId)}  ${c.source} step ${c.step}  ${formatTime(c.timestamp)}${fork}${latest}`;
  };
  // Depth first with a stack of its own: a long thread is a deep chain.
  const stack: { c: ThreadCheckpoint; head: string; body: string }[] = [];
  // Roots: the first checkpoint, and any whose parent is gone (retention) or not a checkpoint.
  const roots = ns.checkpoints.filter((c) => c.parentCairnId === null || !byId.has(c.parentCairnId));
  for (const c of roots.reverse()) stack.push({ c, head: "", body: "" });
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { c, head, body } = next;
    lines.push(head + line(c));
    const children = c.children.flatMap((id) => byId.get(id) ?? []);
    // Writes sit under their checkpoint; the rule on the left carries on when children follow.
    const rule = children.length > 0 ? "│   " : "    ";
    for (const w of c.writes) {
      const problem = w.check === "valid" ? "" : ` ${mark(w.check)}`;
      lines.push(`${body}${rule}+ writes ${writesLabel(w)}${problem}`);
    }
    if (children.length === 1) stack.push({ c: children[0] as ThreadCheckpoint, head: body, body });
    else {
      for (const [i, child] of [...children.entries()].reverse()) {
        const last = i === children.length - 1;
        stack.push({
          c: child,
          head: `${body}${last ? "└─ " : "├─ "}`,
          body: `${body}${last ? "   " : "│  "}`,
        });
      }
    }
  }
  const loose = ns.writes.filter((w) => w.parentCairnId === null || !byId.has(w.parentCairnId));
  for (const w of loose)
    lines.push(`  + writes ${writesLabel(w)} (its checkpoint ${w.parentCairnId ?? "?"} is gone)`);
  if (ns.unreadable > 0)
    lines.push(
      `${CHECK_SYMBOLS.unreadable} ${plural(ns.unreadable, "unreadable entry", "unreadable entries")}`,
    );
  const problems = [...ns.checkpoints, ...ns.writes].filter((r) => r.problems.length > 0);
  if (problems.length > 0) {
    lines.push("", "Problems:");
    for (const r of problems) for (const p of r.problems) lines.push(`  ${r.cairnId}: ${p}`);
  }
  return lines.join("\n");
}

/** A namespace as JSON: records by cairn id, writes referenced by id from their checkpoint. */
export function namespaceJson(threadId: string, ns: ThreadNamespace): Record<string, unknown> {
  return {
    threadId,
    namespace: ns.namespace,
    runId: ns.runId,
    checkpoints: ns.checkpoints.map((c) => ({ ...c, writes: c.writes.map((w) => w.cairnId) })),
    writes: ns.writes,
    unreadable: ns.unreadable,
    forks: ns.forks.map((c) => c.cairnId),
    leaves: ns.leaves.map((c) => c.cairnId),
    latest: ns.latest?.cairnId ?? null,
    lastTimestamp: ns.lastTimestamp ?? null,
  };
}
