/**
 * The report's section for the HTTP (object-storage) stores: round trips per operation, counted
 * outside the timed samples, and the issue-16 targets (write ≤ 2 × the raw floor, resume at
 * 10,000 checkpoints ≤ 1.5 × at 10) met or missed.
 */
import { ms, ratio, table } from "./markdown.js";
import type { Row, StoreResult } from "./results.js";

const WRITE_TARGET = 2;
const RESUME_TARGET = 1.5;
/** The write variant doing the design's 4 requests in 2 round trips with bare SDK calls (scenarios.ts). */
const FOUR_PUTS = "raw (4 puts in 2 round trips)";

const verdict = (x: number, limit: number) => (x <= limit ? "yes" : "**no**");

/** One line per store that skipped some scenarios, for the report's header. */
export function skippedScenarioLines(stores: readonly StoreResult[]): string[] {
  return stores.flatMap((s) =>
    Object.entries(s.skippedScenarios ?? {}).map(
      ([scenario, why]) => `- ${s.store}: scenario \`${scenario}\` not run: ${why}`,
    ),
  );
}

/** The section, or undefined when no row counted requests. */
export function roundTripsSection(rows: readonly Row[]): [string, string, string] | undefined {
  const counted = rows.filter((r) => r.requests !== undefined);
  if (counted.length === 0) return undefined;
  const p50 = (store: string, scenario: string, kase: string, variant: string) =>
    rows.find((r) => r.store === store && r.scenario === scenario && r.case === kase && r.variant === variant)
      ?.summary.p50Ms;
  const body = table(
    [
      "store",
      "scenario",
      "case",
      "variant",
      "round trips per operation",
      "HTTP requests per operation",
      "first write of a run: round trips (requests)",
      "p50 ms",
      "target",
      "ratio",
      "met",
      "write p50 / p50 of the 4-put floor",
    ],
    counted.map((r) => {
      let target = "";
      let versus = "";
      let met = "";
      let design = "";
      if (r.scenario === "write" && r.variant.startsWith("cairn")) {
        const raw = p50(r.store, "write", r.case, "raw");
        if (raw !== undefined) {
          target = `≤ ${WRITE_TARGET} × raw`;
          versus = ratio(r.summary.p50Ms, raw);
          met = verdict(r.summary.p50Ms / raw, WRITE_TARGET);
        }
        const four = p50(r.store, "write", r.case, FOUR_PUTS);
        if (four !== undefined) design = ratio(r.summary.p50Ms, four);
      } else if (r.scenario === "resume" && r.case !== "10") {
        const base = p50(r.store, "resume", "10", r.variant);
        if (base !== undefined) {
          target = `≤ ${RESUME_TARGET} × at 10`;
          versus = ratio(r.summary.p50Ms, base);
          met = verdict(r.summary.p50Ms / base, RESUME_TARGET);
        }
      }
      return [
        r.store,
        r.scenario,
        r.case,
        r.variant,
        String(r.requests?.trips),
        String(r.requests?.requests),
        r.firstRequests === undefined ? "" : `${r.firstRequests.trips} (${r.firstRequests.requests})`,
        ms(r.summary.p50Ms),
        target,
        versus,
        met,
        design,
      ];
    }),
  );
  return [
    "Object stores: round trips and targets",
    "HTTP requests each operation sent, counted on `node:http`'s `http.client.request.start` diagnostics channel (both SDKs send through it; a retry counts again), and round trips: waves of requests in flight together (a wave starts when a request starts while none is in flight, so parallel puts count once; latency follows round trips, not requests). Both are the mean of 5 operations run after the timed rounds. Write: steady state on a run that has checkpoints (the store caches the run's tip, so a write skips reading it), and the first checkpoint of a fresh run. Resume: `loadLatestCheckpoint` with every output read, on a fresh manager's warm store. `raw (4 puts in 2 round trips)`: the decided design's least checkpoint write in bare SDK calls (the payload, a small checkpoint object and id claim in parallel, then a small tip put, all unconditional), so the last column separates what the server charges for the design's requests from what cairn adds. Targets (issue 16): a checkpoint write ≤ 2 × the raw floor's p50 (one plain PutObject / upload of the same JSON); resume at 10,000 (and 1,000) checkpoints ≤ 1.5 × at 10.",
    body,
  ];
}
