/**
 * A process of the workers bench (bench/lib/workers.ts). Given a JSON config as its only argument:
 * - `mode: "worker"`: a cairn worker (`createWorker`, concurrency 1) on the bench's queue, running
 *   the 5-stage bench pipeline; prints `{ "e": "loaded" }`, starts the worker when it reads `go`
 *   on stdin, prints `{ "e": "ready" }` once it takes jobs, and closes on SIGTERM.
 * - `mode: "writers"`: concurrent checkpoint writers (see workers-store.ts).
 * - `mode: "inline"`: `count` runs of the same pipeline by `execute()` in this process, one after
 *   another, on the same store (the baseline of the per-run overhead).
 * Every stage start and finish, run completion and worker event is printed on stdout as one JSON
 * line with `t`, the wall clock in ms (sub-ms resolution), so the parent can time a run across
 * processes (a SIGKILLed worker's lines are already written: pipe writes are synchronous on Linux).
 * Each stage waits `inputs.stageMs` (I/O-like work, default 20 ms).
 */
import { Pipeline, type PipelineEvent } from "../../src/index.js";
import { createWorker, type WorkerEngine, type WorkerEvent } from "../../src/workers/index.js";

/** What the parent passes. */
export interface WorkersChildConfig {
  mode: "worker" | "inline" | "writers";
  engine: WorkerEngine;
  /** The queue's connection (worker mode). */
  connection: string | Record<string, unknown>;
  queue: string;
  /** The checkpoint store's URL. */
  store: string;
  leaseTtlMs: number;
  /** Inline mode: runs to execute, and their stage wait. */
  count?: number;
  stageMs?: number;
  /** Inline mode: run ids start with this; writers mode: so do the writers' runs. */
  runPrefix?: string;
  /** Writers mode: concurrent writers in this process, and for how long (s). */
  writers?: number;
  seconds?: number;
  /** Writers mode: the wall clock (ms) all writer processes start at, so their writes overlap. */
  startAt?: number;
}

/** The bench pipeline's name. */
export const BENCH_PIPELINE = "bench5";
export const STAGES = 5;

const config = JSON.parse(process.argv[2] ?? "{}") as WorkersChildConfig;
const now = () => performance.timeOrigin + performance.now();
const print = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...line, t: now(), pid: process.pid })}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function onPipelineEvent(event: PipelineEvent): void {
  if (event.type === "stage_started" || event.type === "stage_completed")
    print({ e: event.type, run: event.pipelineId, stage: event.stageIndex });
  else if (event.type === "run_completed" || event.type === "run_resumed")
    print({ e: event.type, run: event.pipelineId });
}

function onWorkerEvent(event: WorkerEvent): void {
  if (event.type === "error") print({ e: "error", message: event.error.message, run: event.runId });
  else if (event.type === "job_fenced" || event.type === "job_failed")
    print({ e: event.type, run: event.runId, message: event.error.message });
  else if (event.type === "job_completed") print({ e: event.type, run: event.runId, ms: event.durationMs });
  else if (event.type === "waiting_for_lease") print({ e: event.type, run: event.runId });
  else print({ e: event.type, run: event.runId });
}

const pipeline = new Pipeline({
  name: BENCH_PIPELINE,
  checkpointEnabled: true,
  checkpointStore: config.store,
  leaseTtlMs: config.leaseTtlMs,
  onEvent: onPipelineEvent,
  steps: Array.from({ length: STAGES }, (_, i) => ({
    name: `s${i}`,
    agent: async (inputs: Record<string, unknown>) => {
      await sleep(typeof inputs.stageMs === "number" ? inputs.stageMs : 20);
      return { stage: i, at: Date.now() };
    },
  })),
});

if (config.mode === "writers") {
  // Checkpoints like the bench pipeline's (a small output), written back to back by each writer
  // to a run of its own, as a worker fleet's runs do: what one shared store sustains.
  const manager = pipeline.checkpointManager;
  if (!manager) throw new Error("the bench pipeline has no checkpoint manager");
  // One write first: the pool's connections and the schema are ready before the clock starts.
  await manager.createCheckpoint({
    pipelineId: `${config.runPrefix ?? "writers"}-${process.pid}-warm`,
    pipelineName: BENCH_PIPELINE,
    stageName: "s0",
    stageIndex: 0,
    stateData: {},
    status: "completed",
  });
  await sleep(Math.max(0, (config.startAt ?? 0) - now()));
  const until = now() + (config.seconds ?? 5) * 1000;
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: config.writers ?? 4 }, async (_, w) => {
      for (let i = 0; now() < until; i++) {
        const started = now();
        await manager.createCheckpoint({
          pipelineId: `${config.runPrefix ?? "writers"}-${process.pid}-${w}-${Math.floor(i / STAGES)}`,
          pipelineName: BENCH_PIPELINE,
          stageName: `s${i % STAGES}`,
          stageIndex: i % STAGES,
          stateData: { outputs: { [`s${i % STAGES}`]: { stage: i % STAGES, at: Date.now() } } },
          status: "completed",
        });
        latencies.push(now() - started);
      }
    }),
  );
  print({ e: "writes", count: latencies.length, latencies });
  await pipeline.close();
} else if (config.mode === "inline") {
  const count = config.count ?? 10;
  for (let i = 0; i < count; i++) {
    const started = now();
    const result = await pipeline.execute({
      runId: `${config.runPrefix ?? "inline"}-${i}`,
      inputs: { stageMs: config.stageMs ?? 20 },
    });
    if (result.status !== "completed") throw new Error(`inline run ${i} ended ${result.status}`);
    print({ e: "inline", ms: now() - started });
  }
  await pipeline.close();
} else {
  // Loaded (the slow part of a start on a busy machine): the parent says when to take jobs, so
  // a fleet's workers begin together.
  print({ e: "loaded" });
  await new Promise<void>((resolve) => {
    process.stdin.setEncoding("utf8").on("data", (chunk: string) => {
      if (chunk.includes("go")) resolve();
    });
  });
  const worker = await createWorker({
    engine: config.engine,
    connection: config.connection,
    pipelines: { [BENCH_PIPELINE]: pipeline },
    concurrency: 1,
    queue: config.queue,
    leaseTtlMs: config.leaseTtlMs,
    onEvent: onWorkerEvent,
  });
  print({ e: "ready" });
  process.once("SIGTERM", () => {
    void worker.close().then(
      async () => {
        await pipeline.close();
        const cpu = process.cpuUsage();
        print({ e: "closed", ms: (cpu.user + cpu.system) / 1000 });
        process.exit(0);
      },
      (error: unknown) => {
        print({ e: "error", message: (error as Error).message });
        process.exit(1);
      },
    );
  });
}
