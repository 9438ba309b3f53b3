/** `cairn compare --store A --store B`: what differs between two stores (after a replication or a failover). */
import { type CompareStoresFilters, compareStores, type StoreComparison } from "../../feed/compare-stores.js";
import { CommandExit, ExitCode } from "../exit-codes.js";
import { printJson, printText } from "../output.js";
import { redactPassword } from "../store-args.js";

const short = (hash: string) => `${hash.slice(0, 12)}…`;
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** At most `max` items, then how many more. */
function some(items: readonly string[], max = 5): string {
  const shown = items.slice(0, max).map(short).join(", ");
  return items.length > max ? `${shown}, … ${items.length - max} more` : shown;
}

function render(c: StoreComparison): string {
  const lines = [`A: ${redactPassword(c.a)}`, `B: ${redactPassword(c.b)}`, ""];
  const same = c.runsCompared - c.onlyInA.length - c.onlyInB.length - c.runs.length;
  lines.push(
    `Compared ${plural(c.runsCompared, "run")}: ${c.onlyInA.length} only in A, ${c.onlyInB.length} only in B, ` +
      `${c.runs.length} different, ${same} the same.`,
  );
  for (const [title, runs] of [
    ["Only in A", c.onlyInA],
    ["Only in B", c.onlyInB],
  ] as const) {
    if (runs.length === 0) continue;
    lines.push("", `${title}:`);
    for (const r of runs)
      lines.push(`  ${r.pipelineId}  (${r.pipelineName || "?"}, ${plural(r.checkpoints, "checkpoint")})`);
  }
  for (const run of c.runs) {
    lines.push("", `Run ${run.pipelineId} (${run.pipelineName || "?"}):`);
    for (const [where, refs] of [
      ["A", run.checkpointsOnlyInA],
      ["B", run.checkpointsOnlyInB],
    ] as const) {
      for (const r of refs)
        lines.push(`  only in ${where}: #${r.sequence} ${r.stageName}  ${r.checkpointId}`);
    }
    for (const d of run.diverged) {
      lines.push(
        `  diverged: #${d.sequence} ${d.stageName}  ${d.checkpointId}  checksum ${short(d.checksumA)} in A, ${short(d.checksumB)} in B`,
      );
    }
    for (const s of run.status) {
      lines.push(`  ${s.field}: ${s.checkpointId}  ${JSON.stringify(s.a)} in A, ${JSON.stringify(s.b)} in B`);
    }
    if (run.outputsOnlyInA.length > 0)
      lines.push(`  ${plural(run.outputsOnlyInA.length, "output")} only in A: ${some(run.outputsOnlyInA)}`);
    if (run.outputsOnlyInB.length > 0)
      lines.push(`  ${plural(run.outputsOnlyInB.length, "output")} only in B: ${some(run.outputsOnlyInB)}`);
    for (const [where, corrupt] of [
      ["A", run.corruptInA],
      ["B", run.corruptInB],
    ] as const) {
      for (const e of corrupt) lines.push(`  corrupt in ${where}: ${e.location}: ${e.reason}`);
    }
    if (run.runKey !== undefined) lines.push(`  key record: ${run.runKey}`);
  }
  lines.push(
    "",
    c.equal
      ? "No differences."
      : "The stores differ. To make B a copy of A: cairn replicate --from <A> --to <B> (see cairn replicate --help).",
  );
  return lines.join("\n");
}

/** Compares two stores for `cairn compare`; exits 1 when they differ, 4 when either holds corrupt entries. */
export async function compareTwoStores(
  stores: readonly [string, string],
  filters: CompareStoresFilters,
  json: boolean,
): Promise<void> {
  const comparison = await compareStores(stores[0], stores[1], filters);
  if (json) printJson(comparison);
  else printText(render(comparison));
  const corrupt = comparison.runs.some((r) => r.corruptInA.length + r.corruptInB.length > 0);
  if (corrupt) throw new CommandExit(ExitCode.Corrupt, "");
  if (!comparison.equal) throw new CommandExit(ExitCode.Failure, "");
}
