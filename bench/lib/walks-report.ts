/** The walks scenario's table in the bench report (issue 11). */
import { ms, ratio, table } from "./markdown.js";
import type { WalksRow } from "./results.js";

/** What the walks table measures. */
export const WALKS_NOTE =
  "One run per length (1,000, 10,000 and 20,000 checkpoints in the full profile), filled through the fast filler under the run's lease as in the resume scenario (small state, one small output per checkpoint). Then a fresh CheckpointManager on the measured configuration times, 3 times each (the fastest is shown): `validateRun` (the run walk: one listing, every checkpoint read and verified, parents from the listing), `analyzePipeline` (the same walk plus the analysis), on the file store `exportPipeline` to a file, and 7 new `createCheckpoint` calls at the end of the run (p50). Target (issue 11): validate and analyze of the longest run ≤ 25 × the first; a write's time flat.";

/** Walks target (issue 11): the longest run within this factor of the first (20,000 vs 1,000). */
const WALKS_TARGET = 25;

/** One row per store: validate, analyze, write (and export) at each run length, and the growth. */
export function walksTable(rows: WalksRow[]): string {
  const sizes = [...new Set(rows.flatMap((r) => r.points.map((p) => p.checkpoints)))].sort((a, b) => a - b);
  const at = (r: WalksRow, n: number, pick: (p: WalksRow["points"][number]) => number | undefined) => {
    const value = r.points.find((p) => p.checkpoints === n);
    const x = value && pick(value);
    return x === undefined ? "-" : ms(x);
  };
  const growth = (r: WalksRow, pick: (p: WalksRow["points"][number]) => number) => {
    const first = r.points[0];
    const last = r.points.at(-1);
    return first && last ? ratio(pick(last), pick(first)) : "-";
  };
  return table(
    [
      "store",
      ...sizes.map((n) => `validate ms, ${n.toLocaleString("en-US")}`),
      ...sizes.map((n) => `analyze ms, ${n.toLocaleString("en-US")}`),
      ...sizes.map((n) => `write p50 ms, ${n.toLocaleString("en-US")}`),
      ...(rows.some((r) => r.points.some((p) => p.exportMs !== undefined))
        ? sizes.map((n) => `export ms, ${n.toLocaleString("en-US")}`)
        : []),
      "validate last / first",
      "analyze last / first",
      "target",
    ],
    rows.map((r) => [
      r.store,
      ...sizes.map((n) => at(r, n, (p) => p.validateMs)),
      ...sizes.map((n) => at(r, n, (p) => p.analyzeMs)),
      ...sizes.map((n) => at(r, n, (p) => p.write.p50Ms)),
      ...(rows.some((x) => x.points.some((p) => p.exportMs !== undefined))
        ? sizes.map((n) => at(r, n, (p) => p.exportMs))
        : []),
      growth(r, (p) => p.validateMs),
      growth(r, (p) => p.analyzeMs),
      `≤ ${WALKS_TARGET}×`,
    ]),
  );
}
