/** Markdown of the workers bench: throughput and scaling, per-run overhead, recovery, connections, store capacity. */
import { ms, table } from "./markdown.js";
import { percentile } from "./stats.js";
import { type EngineResult, STAGE_MS, type WorkersResult } from "./workers.js";

const TARGET_EFFICIENCY = 0.85;
const TARGET_OVERHEAD_MS = 10;
const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const met = (ok: boolean) => (ok ? "met" : "**missed**");

/** Median runs/s at K workers, and each round's figure. */
function rates(result: EngineResult, workers: number) {
  const samples = result.throughput.filter((s) => s.workers === workers);
  return { median: median(samples.map((s) => s.runsPerSec)), each: samples.map((s) => s.runsPerSec) };
}

/** Scaling efficiency at K, per round (rate at K / (K × rate at 1) of the same round). */
function efficiencies(result: EngineResult, workers: number): number[] {
  const rounds = [...new Set(result.throughput.map((s) => s.round))];
  return rounds.flatMap((round) => {
    const one = result.throughput.find((s) => s.round === round && s.workers === 1);
    const k = result.throughput.find((s) => s.round === round && s.workers === workers);
    return one && k ? [k.runsPerSec / (workers * one.runsPerSec)] : [];
  });
}

function throughputTable(results: EngineResult[]): string {
  const rows: string[][] = [];
  for (const r of results) {
    for (const workers of [...new Set(r.throughput.map((s) => s.workers))].sort((a, b) => a - b)) {
      const { median: rate, each } = rates(r, workers);
      const samples = r.throughput.filter((s) => s.workers === workers);
      const eff = efficiencies(r, workers);
      const e = median(eff);
      const duplicates = r.throughput
        .filter((s) => s.workers === workers)
        .reduce((n, s) => n + s.duplicates, 0);
      rows.push([
        r.engine,
        String(workers),
        `${rate.toFixed(1)} (${each.map((x) => x.toFixed(1)).join(", ")})`,
        workers === 1 ? "1" : `${e.toFixed(2)} (${eff.map((x) => x.toFixed(2)).join(", ")})`,
        workers === 4
          ? `≥ ${TARGET_EFFICIENCY}: ${met(e >= TARGET_EFFICIENCY)} (${e >= TARGET_EFFICIENCY ? "+" : ""}${(e - TARGET_EFFICIENCY).toFixed(2)})`
          : "",
        String(duplicates),
        samples.map((s) => `${Math.round((s.machineBusy ?? Number.NaN) * 100)}`).join(", "),
        ms(median(samples.map((s) => s.workerCpuMsPerRun ?? Number.NaN))),
      ]);
    }
  }
  return table(
    [
      "engine",
      "workers",
      "runs/s: median (per round)",
      "efficiency: median (per round)",
      "target",
      "runs completed twice",
      "machine CPU busy % (per round)",
      "worker CPU per run (ms)",
    ],
    rows,
  );
}

function overheadTable(results: EngineResult[]): string {
  const signed = (x: number) => `${x < 0 ? "−" : "+"}${ms(Math.abs(x))}`;
  const rows = results.map((r) => {
    const ones = r.throughput.filter((s) => s.workers === 1).sort((a, b) => a.round - b.round);
    const cycle = median(ones.map((s) => s.cycleMs ?? Number.NaN));
    const handler = median(ones.map((s) => s.handlerMs ?? Number.NaN));
    const inline = median(r.inlineMs);
    // Per round: that round's worker cycle minus that round's in-process runs (same load).
    const perRound = ones.map((s, i) => (s.cycleMs ?? Number.NaN) - (r.inlineMs[i] ?? Number.NaN));
    const overhead = median(perRound);
    const queueShare = median(ones.map((s) => (s.cycleMs ?? Number.NaN) - (s.handlerMs ?? Number.NaN)));
    return [
      r.engine,
      ms(inline),
      ms(cycle),
      ms(handler),
      `${signed(overhead)} (${perRound.map(signed).join(", ")})`,
      ms(queueShare),
      `≤ ${TARGET_OVERHEAD_MS} ms: ${met(overhead <= TARGET_OVERHEAD_MS)} (${overhead <= TARGET_OVERHEAD_MS ? "under by" : "over by"} ${ms(Math.abs(TARGET_OVERHEAD_MS - overhead))} ms)`,
    ];
  });
  return table(
    [
      "engine",
      "in-process execute() p50 (ms)",
      "worker cycle per run p50 (ms)",
      "of which job handler p50 (ms)",
      "overhead: median (per round), ms",
      "queue's share: cycle − handler (ms)",
      "target",
    ],
    rows,
  );
}

function recoveryTable(results: EngineResult[], ttl: number): string {
  const rows = results.map((r) => {
    const sorted = [...r.recoveryMs].sort((a, b) => a - b);
    const max = sorted.at(-1) ?? Number.NaN;
    return [
      r.engine,
      `${ttl / 1000} s`,
      String(sorted.length),
      `${(percentile(sorted, 50) / 1000).toFixed(2)} s`,
      `${(max / 1000).toFixed(2)} s`,
      `≤ ${(2 * ttl) / 1000} s: ${met(max <= 2 * ttl)} (max ${max <= 2 * ttl ? "under by" : "over by"} ${(Math.abs(2 * ttl - max) / 1000).toFixed(2)} s)`,
      sorted.map((x) => (x / 1000).toFixed(2)).join(", "),
    ];
  });
  return table(["engine", "lease TTL", "kills", "p50", "max", "target (max)", "each (s)"], rows);
}

/** The workers bench as Markdown. */
export function renderWorkers(result: WorkersResult): string {
  const live = result.engines.filter((r) => !r.skipped);
  const { plan } = result;
  const lines = [
    `# Workers bench (${result.profile}), ${result.date}`,
    "",
    `Machine: ${result.machine}. Checkpoint store: PostgreSQL (${result.storeServer}), one schema for both engines.`,
    `Queues: BullMQ on Redis, pg-boss on PostgreSQL. Each worker is a process of its own with concurrency 1; lease TTL ${plan.leaseTtlMs} ms (the engines' settings derived from it as the workers do).`,
    `Load (1-minute average, before → after each round): ${live
      .map((r) => `${r.engine} ${r.load.map(([a, b]) => `${a.toFixed(1)} → ${b.toFixed(1)}`).join(", ")}`)
      .join("; ")}. The machine is shared: other work runs beside the bench.`,
    ...result.engines.filter((r) => r.skipped).map((r) => `- ${r.engine}: skipped (${r.skipped})`),
    "",
    `## Throughput: a 5-stage pipeline, each stage waits ${STAGE_MS} ms`,
    "",
    `A backlog of ${plan.runsPerWorker} × K runs is enqueued before K worker processes start; runs/s counts the runs completed while all K workers were busy (from the last worker's first job to the last job taken from the queue). ${plan.rounds} round(s), the order of K rotated each round; efficiency = runs/s at K / (K × runs/s at 1) within a round. Machine CPU busy: the share of both cores busy (everything on the machine, from /proc/stat) while the backlog drained; worker CPU: the worker processes' own CPU time (start-up included) per run.`,
    "",
    throughputTable(live),
    "",
    "## Per-run overhead of a worker over an in-process execute()",
    "",
    "Worker cycle: one worker's median interval between two run completions (fetch the job, execute, complete the job). In-process: the median `execute()` of the same pipeline on the same store in a process of its own, half the runs just before and half just after the 1-worker measurement of the round (the first 3 runs of each batch left out as warm-up). Overhead = cycle − in-process of the same round; the median over rounds is compared with the target. The job handler column is the runner's own time per job (job start to job completion events: a fresh Pipeline, lease, execute), so cycle − handler is the queue's share (fetch and complete).",
    "",
    overheadTable(live),
    "",
    "## Recovery after SIGKILL",
    "",
    `Two workers; a run whose stages wait ${plan.killStageMs} ms is enqueued, and the worker running it is SIGKILLed 300 ms into its stage 1. Recovery: from the kill to the run's next stage start on the other worker (the stage events' wall clocks). A fresh worker replaces the dead one before the next kill.`,
    "",
    recoveryTable(live, plan.leaseTtlMs),
    "",
  ];
  const conns = live.filter((r) => r.connections);
  if (conns.length > 0) {
    lines.push(
      "## Connections held by one worker process (concurrency 1, after its runs)",
      "",
      table(
        ["engine", "to PostgreSQL :5432", "to Redis :6379"],
        conns.map((r) => [r.engine, String(r.connections?.[5432] ?? 0), String(r.connections?.[6379] ?? 0)]),
      ),
      "",
      "The PostgreSQL count includes the checkpoint store's pool (opened on demand, at most `poolSize`, default 10).",
      "",
    );
  }
  if (result.storeWrites.length > 0) {
    lines.push(
      "## Concurrent checkpoint writes one shared store sustains",
      "",
      `${plan.writerProcesses} processes × ${plan.writersEach} writers, each writing small checkpoints back to back to runs of its own, for ${plan.writeSeconds} s.`,
      "",
      table(
        ["store", "writers", "writes/s", "p50 (ms)", "p99 (ms)"],
        result.storeWrites.map((w) =>
          w.skipped
            ? [w.store, String(w.writers), `skipped: ${w.skipped}`, "", ""]
            : [w.store, String(w.writers), w.writesPerSec.toFixed(0), ms(w.p50Ms), ms(w.p99Ms)],
        ),
      ),
      "",
    );
  }
  return `${lines.join("\n")}\n`;
}
