/** `cairn compare`: what differs between two checkpoints, or between two stores. */
import type { Command } from "commander";
import { type CheckpointComparison, type CompareSide, compareCheckpoints } from "../../debug/compare.js";
import { CommandExit, ExitCode, UsageError } from "../exit-codes.js";
import { formatTable, printJson, printText } from "../output.js";
import { examples } from "../runs.js";
import { addStoreOptions, type StoreFlags, storeFlagsGiven, withReader } from "../store-options.js";
import { compareTwoStores } from "./compare-stores.js";

interface CompareFlags extends Omit<StoreFlags, "store"> {
  /** `--store` may be given twice here: two stores to compare. */
  store?: string[];
  checkpointId: string[];
  pipelineId?: string;
  name?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];
const short = (hash: string | undefined) => (hash === undefined ? "-" : `${hash.slice(0, 12)}…`);

function sideLine(name: string, side: CompareSide): string {
  const m = side.metadata;
  const what = m ? `stage ${m.stageName} (#${m.sequence}, ${m.status}) of run ${m.pipelineId}` : "unreadable";
  return `${name}  ${side.checkpointId}  ${what}  ${side.verified ? "verified" : "FAILED VERIFICATION"}`;
}

function section(lines: string[], title: string, body: string[], empty: string): void {
  lines.push("", body.length > 0 ? `${title}:` : `${title}: ${empty}`, ...body);
}

function render(c: CheckpointComparison): string {
  const lines = [sideLine("A", c.a), sideLine("B", c.b)];
  for (const [name, side] of [
    ["A", c.a],
    ["B", c.b],
  ] as const) {
    for (const problem of side.problems) lines.push(`   ${name}: ${problem}`);
  }
  lines.push(`Same run: ${c.sameRun ? "yes" : "no"}`);
  // Checksums are told apart by their first characters; the full ones are in --json.
  const cell = (field: string, v: unknown) => {
    if (v === null || v === undefined) return "-";
    const text = field === "checksum" ? short(String(v)) : String(v);
    // Long values (an error message, a backup path) would stretch every row; --json has them whole.
    return text.length > 60 ? `${text.slice(0, 59)}…` : text;
  };
  const metadata = c.metadata.map((d) => [d.field, cell(d.field, d.a), cell(d.field, d.b)]);
  section(
    lines,
    "Metadata",
    metadata.length > 0
      ? formatTable(["field", "A", "B"], metadata)
          .split("\n")
          .map((l) => `  ${l}`)
      : [],
    "same",
  );
  const stages = [
    ...c.stages.onlyInA.map((s) => `  only in A: ${s}`),
    ...c.stages.onlyInB.map((s) => `  only in B: ${s}`),
    ...c.stages.completedDiff.map((d) => `  ${d.stage}: ${d.a} in A, ${d.b} in B`),
  ];
  section(lines, "Stages", stages, "same");
  const sign = { added: "+", removed: "-", changed: "~" } as const;
  const state = c.state.map((d) =>
    d.change === "changed"
      ? `  ~ ${d.path}: ${d.a} → ${d.b}`
      : `  ${sign[d.change]} ${d.path}: ${d.change === "added" ? d.b : d.a}`,
  );
  if (c.stateTruncated) state.push(`  … more differences not shown (first ${c.state.length})`);
  section(
    lines,
    `State (${c.state.length}${c.stateTruncated ? "+" : ""} difference${c.state.length === 1 ? "" : "s"})`,
    state,
    "same",
  );
  const outputs = c.outputs
    .filter((o) => o.change !== "same")
    .map((o) =>
      o.change === "changed"
        ? `  ~ ${o.stage}: changed ${short(o.hashA)} → ${short(o.hashB)}`
        : `  ${o.change === "added" ? "+" : "-"} ${o.stage}: ${o.change} ${short(o.hashA ?? o.hashB)}`,
    );
  const same = c.outputs.filter((o) => o.change === "same").map((o) => o.stage);
  if (same.length > 0 && outputs.length > 0) outputs.push(`  = same: ${same.join(", ")}`);
  section(lines, "Outputs", outputs, same.length > 0 ? `same (${same.join(", ")})` : "none");
  const provenance = c.provenance.map((p) => `  ~ ${p.stage}: ${short(p.a)} → ${short(p.b)}`);
  section(lines, "Provenance", provenance, "same");
  if (c.notes.length > 0) lines.push("", "Notes:", ...c.notes.map((n) => `  ${n}`));
  return lines.join("\n");
}

/** Registers `cairn compare`. */
export function registerCompare(program: Command): void {
  const command = program
    .command("compare")
    .summary("Show what differs between two checkpoints, or between two stores")
    .description(
      "Compare two checkpoints: metadata, stages, the state data (path by path), outputs (by hash) " +
        "and provenance. A checkpoint that fails verification is compared as far as it can be read.\n\n" +
        "With --store given twice, compare two stores run by run (a replica and its source, or a " +
        "primary back after a failover): runs and checkpoints only on one side, the same checkpoint " +
        "with different content, status fields, outputs and key records. Records are compared as " +
        "stored, so encrypted runs need no key.",
    )
    .option("--checkpoint-id <id>", "a checkpoint to compare; give it twice (A, then B)", collect, [])
    .option("--pipeline-id <id>", "two stores: compare only this run")
    .option("--name <name>", "two stores: compare only runs of this pipeline name")
    .addHelpText(
      "after",
      `
Exit codes:
  0  compared; both checkpoints verify (two stores: they hold the same)
  1  two stores: they differ (the report says how)
  2  not exactly two --checkpoint-id (or two --store)
  3  a checkpoint (or a store) does not exist
  4  compared, but a checkpoint failed verification (two stores: a side holds corrupt entries)
${examples(
  "cairn compare --checkpoint-id etl_extract_20240101T000000000Z_abc234 --checkpoint-id etl_load_20240101T000001000Z_def567",
  "cairn compare --store sqlite:./primary.db --store postgres://db/cairn --pipeline-id etl-42",
)}`,
    );
  addStoreOptions(command, true).action(async (flags: CompareFlags) => {
    const stores = flags.store ?? [];
    const ids = flags.checkpointId;
    if (stores.length > 2) throw new UsageError(`give at most two --store (got ${stores.length})`);
    if (stores.length === 2) {
      const { store: _, ...others } = flags;
      if (ids.length > 0 || storeFlagsGiven(others)) {
        throw new UsageError(
          "two --store compare two stores: --checkpoint-id and the other store options do not apply",
        );
      }
      const filters = { pipelineId: flags.pipelineId, name: flags.name };
      await compareTwoStores(stores as [string, string], filters, flags.json === true);
      return;
    }
    if (flags.pipelineId !== undefined || flags.name !== undefined) {
      throw new UsageError("--pipeline-id and --name apply to two stores: --store <A> --store <B>");
    }
    if (ids.length !== 2) {
      throw new UsageError(
        `give exactly two checkpoints: --checkpoint-id <A> --checkpoint-id <B> (got ${ids.length}), ` +
          "or two stores: --store <A> --store <B>",
      );
    }
    const [idA, idB] = ids as [string, string];
    const readerFlags: StoreFlags = { ...flags, store: stores[0] };
    await withReader(readerFlags, async (manager) => {
      const comparison = await compareCheckpoints(manager, idA, idB);
      if (flags.json) printJson(comparison);
      else printText(render(comparison));
      const failed = [comparison.a, comparison.b].filter((s) => !s.verified).map((s) => s.checkpointId);
      if (failed.length > 0) {
        throw new CommandExit(ExitCode.Corrupt, `failed verification: ${failed.join(", ")}`);
      }
    });
  });
}
