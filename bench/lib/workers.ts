/**
 * The workers bench (`npm run bench -- --scenario workers`): cairn runs on a fleet of worker
 * processes, per engine (BullMQ on Redis, pg-boss on PostgreSQL), with the checkpoints in
 * PostgreSQL (a schema of this bench's own) for both, so the engines are compared on one store.
 * - throughput: a backlog of `runsPerWorker × K` runs of a 5-stage pipeline (each stage waits
 *   20 ms) is enqueued before K worker processes (concurrency 1 each) start; runs/s is counted
 *   over the window in which every worker was busy (from the last worker's first job to the last
 *   job taken from the queue). K = 1, 2, 4 in an order rotated each round.
 * - overhead: one worker's median interval between run completions (its cycle: fetch, execute,
 *   complete) minus the median `execute()` of the same pipeline on the same store in a process of
 *   its own, measured in the same round.
 * - recovery: a worker is SIGKILLed 300 ms into a stage of a run (1 s stages); the time from the
 *   kill to that run's next stage start on another worker, from the workers' stage events.
 * Every namespace (schemas, key prefix, queues) is this process's own and is removed at the end.
 */
import os from "node:os";
import { enqueueRun, type WorkerEngine } from "../../src/workers/index.js";
import {
  dropPostgresSchema,
  POSTGRES_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  withParams,
} from "./servers.js";
import { percentile } from "./stats.js";
import type { WorkersChildConfig } from "./workers-child.js";
import {
  type Child,
  connectionsOf,
  cpuTimes,
  Journal,
  runInline,
  startWorkers,
  stopChildren,
} from "./workers-fleet.js";
import { engineNamespace, enqueueAll, STAGE_MS } from "./workers-queue.js";
import { measureStoreWrites, type StoreWritesRow } from "./workers-store.js";

/** How much the workers bench measures. */
export interface WorkersPlan {
  counts: number[];
  rounds: number;
  runsPerWorker: number;
  inlineRuns: number;
  kills: number;
  leaseTtlMs: number;
  /** Stage wait of the runs whose worker is killed (time to kill it mid-stage). */
  killStageMs: number;
  /** Store capacity: writer processes × concurrent writers each, seconds. */
  writerProcesses: number;
  writersEach: number;
  writeSeconds: number;
}

export const WORKERS_PLANS: Record<"quick" | "full", WorkersPlan> = {
  quick: {
    counts: [1, 2, 4],
    rounds: 1,
    runsPerWorker: 15,
    inlineRuns: 10,
    kills: 2,
    leaseTtlMs: 5_000,
    killStageMs: 1_000,
    writerProcesses: 2,
    writersEach: 4,
    writeSeconds: 3,
  },
  full: {
    counts: [1, 2, 4],
    rounds: 3,
    runsPerWorker: 40,
    inlineRuns: 30,
    kills: 5,
    leaseTtlMs: 5_000,
    killStageMs: 1_000,
    writerProcesses: 2,
    writersEach: 4,
    writeSeconds: 8,
  },
};

export { STAGE_MS };

/** In-process runs left out at the start of each batch. */
const INLINE_WARMUP = 3;

/** One throughput measurement. */
export interface ThroughputSample {
  round: number;
  workers: number;
  runs: number;
  runsPerSec: number;
  /** Runs completed more than once (must be 0). */
  duplicates: number;
  /** 1 worker only: median interval between its run completions, and median job handler time (ms). */
  cycleMs?: number;
  handlerMs?: number;
  /** The whole machine's CPU busy share during the measurement (0–1; other work included). */
  machineBusy?: number;
  /** CPU ms the worker processes used per run (start-up and close included). */
  workerCpuMsPerRun?: number;
}

/** Everything measured for one engine. */
export interface EngineResult {
  engine: WorkerEngine;
  queueServer: string;
  skipped?: string;
  throughput: ThroughputSample[];
  /** Per round: median in-process execute() time (ms). */
  inlineMs: number[];
  /** Seconds from SIGKILL to the run's next stage start on another worker. */
  recoveryMs: number[];
  /** TCP connections one idle-after-work worker process holds, by server port. */
  connections?: Record<number, number>;
  /** The machine's 1-minute load average before and after each round. */
  load: [number, number][];
}

export interface WorkersResult {
  date: string;
  profile: "quick" | "full";
  plan: WorkersPlan;
  machine: string;
  storeServer: string;
  engines: EngineResult[];
  storeWrites: StoreWritesRow[];
}

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: number[]) =>
  percentile(
    [...xs].sort((a, b) => a - b),
    50,
  );
const load1 = () => os.loadavg()[0] ?? Number.NaN;

/** K workers drain a backlog; runs/s over the window where all K were busy. */
async function throughput(
  engine: WorkerEngine,
  base: Omit<WorkersChildConfig, "mode">,
  workers: number,
  round: number,
  runs: number,
  log: (m: string) => void,
): Promise<{ sample: ThroughputSample; connections?: Record<number, number> }> {
  const runIds = Array.from({ length: runs }, (_, i) => `${base.queue}-r${i}`);
  const t = now();
  await enqueueAll(engine, base, runIds);
  log(`${engine} ×${workers}: ${runs} runs enqueued in ${((now() - t) / 1000).toFixed(1)} s`);
  const journal = new Journal();
  const wanted = new Set(runIds);
  const done = journal.next(
    () => journal.count((l) => l.e === "job_completed" && wanted.has(l.run ?? "")) >= runs,
    runs * 2_000 + 60_000,
    `${runs} runs to complete`,
  );
  done.catch(() => undefined); // awaited below; a failed start must not leave it unhandled
  let lastSample: ThroughputSample | undefined;
  const children = await startWorkers(
    workers,
    { ...base, mode: "worker" },
    journal,
    log,
    engine === "pg-boss",
  );
  const cpuBefore = await cpuTimes();
  let cpuAfter: Awaited<ReturnType<typeof cpuTimes>>;
  try {
    await done;
    cpuAfter = await cpuTimes();
    const connections = workers === 1 ? await connectionsOf(children[0]?.pid ?? -1, [5432, 6379]) : undefined;
    const starts = journal.lines.filter((l) => l.e === "job_started" && wanted.has(l.run ?? ""));
    const completions = journal.lines.filter((l) => l.e === "job_completed" && wanted.has(l.run ?? ""));
    const firstStart = children.map((c) =>
      Math.min(...starts.filter((l) => l.pid === c.pid).map((l) => l.t)),
    );
    const from = Math.max(...firstStart);
    const to = Math.max(...starts.map((l) => l.t));
    const inWindow = completions.filter((l) => l.t > from && l.t <= to).length;
    const sample: ThroughputSample = {
      round,
      workers,
      runs,
      runsPerSec: (inWindow * 1000) / (to - from),
      duplicates: completions.length - new Set(completions.map((l) => l.run)).size,
    };
    lastSample = sample;
    if (workers === 1) {
      const times = completions.map((l) => l.t).sort((a, b) => a - b);
      sample.cycleMs = median(times.slice(1).map((x, i) => x - (times[i] as number)));
      sample.handlerMs = median(completions.map((l) => l.ms as number));
    }
    if (cpuBefore && cpuAfter)
      sample.machineBusy = (cpuAfter.busy - cpuBefore.busy) / (cpuAfter.total - cpuBefore.total);
    log(
      `${engine} ×${workers}: ${sample.runsPerSec.toFixed(1)} runs/s (${inWindow} runs in window), machine ${((sample.machineBusy ?? Number.NaN) * 100).toFixed(0)} % busy`,
    );
    return { sample, ...(connections ? { connections } : {}) };
  } finally {
    await stopChildren(children);
    const closed = journal.lines.filter((l) => l.e === "closed" && children.some((c) => c.pid === l.pid));
    if (closed.length === children.length && lastSample)
      lastSample.workerCpuMsPerRun = closed.reduce((n, l) => n + (l.ms ?? 0), 0) / runs;
  }
}

/** Kills a worker mid-stage `kills` times; the time to the run's next stage start elsewhere. */
async function recovery(
  engine: WorkerEngine,
  base: Omit<WorkersChildConfig, "mode">,
  plan: WorkersPlan,
  log: (m: string) => void,
): Promise<number[]> {
  const journal = new Journal();
  const config: WorkersChildConfig = { ...base, mode: "worker" };
  let children: Child[] = await startWorkers(2, config, journal, log, engine === "pg-boss");
  const times: number[] = [];
  try {
    for (let i = 0; i < plan.kills; i++) {
      const runId = `${base.queue}-k${i}`;
      const inStage = journal.next(
        (l) => l.e === "stage_started" && l.run === runId && l.stage === 1,
        60_000,
        `${runId} stage 1`,
      );
      await enqueueRun({
        engine,
        connection: base.connection,
        queue: base.queue,
        leaseTtlMs: base.leaseTtlMs,
        pipeline: "bench5",
        runId,
        inputs: { stageMs: plan.killStageMs },
      });
      const started = await inStage;
      await sleep(300);
      const victim = children.find((c) => c.pid === started.pid);
      if (!victim) throw new Error(`run ${runId} runs on an unknown process ${started.pid}`);
      const next = journal.next(
        (l) => l.e === "stage_started" && l.run === runId && l.pid !== victim.pid,
        plan.leaseTtlMs * 6,
        `${runId} to resume after the kill`,
      );
      const killedAt = now();
      victim.process.kill("SIGKILL");
      const resumed = await next;
      times.push(resumed.t - killedAt);
      log(
        `${engine} kill ${i + 1}: stage ${resumed.stage} restarted on ${resumed.pid} after ${(resumed.t - killedAt).toFixed(0)} ms`,
      );
      await journal.next((l) => l.e === "job_completed" && l.run === runId, 60_000, `${runId} to complete`);
      await victim.exited;
      children = children.filter((c) => c !== victim);
      children.push(...(await startWorkers(1, config, journal, log, true)));
    }
  } finally {
    await stopChildren(children);
  }
  return times;
}

async function measureEngine(
  engine: WorkerEngine,
  plan: WorkersPlan,
  storeUrl: string,
  log: (m: string) => void,
): Promise<EngineResult> {
  const probe = engine === "bullmq" ? await probeRedis(REDIS_URL) : await probePostgres(POSTGRES_URL);
  const result: EngineResult = {
    engine,
    queueServer: probe.available ? probe.server : "",
    throughput: [],
    inlineMs: [],
    recoveryMs: [],
    load: [],
  };
  if (!probe.available) {
    result.skipped = probe.reason;
    return result;
  }
  const ns = engineNamespace(engine, process.pid);
  let n = 0;
  const base = (): Omit<WorkersChildConfig, "mode"> => ({
    engine,
    connection: ns.connection,
    queue: `wk-${process.pid}-${engine === "bullmq" ? "b" : "p"}${++n}`,
    store: storeUrl,
    leaseTtlMs: plan.leaseTtlMs,
  });
  try {
    for (let round = 0; round < plan.rounds; round++) {
      const before = load1();
      // Rotated each round, so a slow spell of the machine does not always hit the same K.
      const order = plan.counts.map((_, i) => plan.counts[(i + round) % plan.counts.length] as number);
      const inline: number[] = [];
      // Half the in-process runs just before the 1-worker measurement and half just after, so the
      // two sides of the overhead see the same load on this shared machine.
      const inlineBatch = async (part: number) => {
        const ms = await runInline(
          {
            ...base(),
            mode: "inline",
            count: Math.ceil(plan.inlineRuns / 2) + INLINE_WARMUP,
            stageMs: STAGE_MS,
            runPrefix: `inline-${engine}-${round}-${part}`,
          },
          new Journal(),
          log,
        );
        // The first runs warm the process up (JIT, pool connections).
        inline.push(...ms.slice(INLINE_WARMUP));
      };
      for (const workers of order) {
        if (workers === 1) await inlineBatch(0);
        const { sample, connections } = await throughput(
          engine,
          base(),
          workers,
          round,
          plan.runsPerWorker * workers,
          log,
        );
        result.throughput.push(sample);
        if (connections) result.connections = connections;
        if (workers === 1) await inlineBatch(1);
      }
      result.inlineMs.push(median(inline));
      result.load.push([before, load1()]);
      log(`${engine} round ${round + 1}: inline execute() p50 ${result.inlineMs.at(-1)?.toFixed(1)} ms`);
    }
    result.recoveryMs = await recovery(engine, base(), plan, log);
  } finally {
    await ns.cleanup().then(log, (error: unknown) => log(`cleanup failed: ${(error as Error).message}`));
  }
  return result;
}

/** Runs the workers bench. */
export async function measureWorkers(
  profile: "quick" | "full",
  log: (m: string) => void,
): Promise<WorkersResult> {
  // CAIRN_BENCH_WORKERS_LEASE_MS: another lease TTL (e.g. the default 30,000) for every part.
  const lease = Number(process.env.CAIRN_BENCH_WORKERS_LEASE_MS ?? "");
  const plan = { ...WORKERS_PLANS[profile], ...(lease >= 1_000 ? { leaseTtlMs: lease } : {}) };
  const pg = await probePostgres(POSTGRES_URL);
  if (!pg.available) throw new Error(`the workers bench needs PostgreSQL for its checkpoints: ${pg.reason}`);
  const schema = `cairn_bench_${process.pid}_wkstore`;
  const storeUrl = withParams(POSTGRES_URL, { schema });
  const engines: EngineResult[] = [];
  let storeWrites: StoreWritesRow[] = [];
  try {
    for (const engine of ["bullmq", "pg-boss"] as const)
      engines.push(await measureEngine(engine, plan, storeUrl, log));
    storeWrites = await measureStoreWrites(plan, log);
  } finally {
    await dropPostgresSchema(POSTGRES_URL, schema).then(log, (error: unknown) =>
      log(`cleanup failed: ${(error as Error).message}`),
    );
  }
  return {
    date: new Date().toISOString(),
    profile,
    plan,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    storeServer: pg.server,
    engines,
    storeWrites,
  };
}
