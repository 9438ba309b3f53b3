/**
 * The replication bench (`npm run bench -- --scenario replication`), across two stores at a time:
 * - lag: `replicate({ follow: true })` runs in this process while a writer process writes 10 KB
 *   checkpoints at a steady rate to the source; a checkpoint's lag is from the writer's write
 *   returning to the target's write of it returning (both wall clocks of this machine);
 *   sqlite → postgres, postgres → redis, file → sqlite.
 * - catch-up: 10,000 checkpoints of 10 KB (100 runs of 100) copied sqlite → postgres by one
 *   `replicate()`, against `exportPipeline` + `importPipeline` of the same runs.
 * Every namespace (temporary folder, schema, key prefix) is this process's own and is removed.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { replicate } from "../../src/feed/replicate.js";
import { CheckpointManager } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { ms, ratio, table } from "./markdown.js";
import { makeReadings } from "./payload.js";
import {
  deleteRedisKeys,
  dropPostgresSchema,
  POSTGRES_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  withParams,
} from "./servers.js";
import { type Summary, summarize } from "./stats.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** How much the replication bench measures. */
export interface ReplicationPlan {
  /** Lag: checkpoints written per pair, and how many per second. */
  lagCount: number;
  lagRate: number;
  /** Catch-up: runs × checkpoints per run. */
  catchUpRuns: number;
  catchUpPerRun: number;
}

export const REPLICATION_PLANS: Record<"quick" | "full", ReplicationPlan> = {
  quick: { lagCount: 60, lagRate: 20, catchUpRuns: 10, catchUpPerRun: 100 },
  full: { lagCount: 600, lagRate: 20, catchUpRuns: 100, catchUpPerRun: 100 },
};

/** One pair's lag. */
export interface LagRow {
  pair: string;
  /** Milliseconds from the source write returning to the target write returning. */
  lag: Summary;
  rate: number;
  /** The target of the pair p99 should stay under (ms). */
  targetMs: number;
}

/** The catch-up comparison. */
export interface CatchUpRow {
  checkpoints: number;
  replicateSeconds: number;
  exportSeconds: number;
  importSeconds: number;
}

/** What the replication bench measured. */
export interface ReplicationResult {
  date: string;
  plan: ReplicationPlan;
  machine: string;
  /** The machine's 1-minute load average at the start and at the end (other work skews the figures). */
  load: [number, number];
  servers: string[];
  lag: LagRow[];
  catchUp?: CatchUpRow;
  skipped: string[];
}

const now = () => performance.timeOrigin + performance.now();

/** Fresh namespaces for this process: a folder, and schemas / key prefixes it drops afterwards. */
class Namespaces {
  private n = 0;
  readonly schemas: string[] = [];
  readonly prefixes: string[] = [];
  constructor(readonly dir: string) {}
  sqlite = () => `sqlite:${join(this.dir, `r${++this.n}.db`)}`;
  file = () => `file:${join(this.dir, `f${++this.n}`)}`;
  postgres = () => {
    const schema = `cairn_bench_${process.pid}_r${++this.n}`;
    this.schemas.push(schema);
    return withParams(POSTGRES_URL, { schema });
  };
  redis = () => {
    const prefix = `cairn-bench:${process.pid}:r${++this.n}:`;
    this.prefixes.push(prefix);
    return withParams(REDIS_URL, { keyPrefix: prefix });
  };
  async cleanup(): Promise<void> {
    for (const schema of this.schemas) await dropPostgresSchema(POSTGRES_URL, schema);
    for (const prefix of this.prefixes) await deleteRedisKeys(REDIS_URL, prefix);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** `store` with the time each checkpoint's write to it returned recorded in `arrivals`. */
function timed(store: CheckpointStore, arrivals: Map<string, number>): CheckpointStore {
  const put = store.putCheckpoint.bind(store);
  const importRun = store.importRun.bind(store);
  store.putCheckpoint = async (record, outputs, fence, options) => {
    await put(record, outputs, fence, options);
    arrivals.set(record.metadata.checkpoint_id, now());
  };
  store.importRun = async (pipelineId, checkpoints, options) => {
    await importRun(pipelineId, checkpoints, options);
    const at = now();
    for (const c of checkpoints) arrivals.set(c.record.metadata.checkpoint_id, at);
  };
  return store;
}

/** Runs the writer process; resolves with each checkpoint id and when its write returned. */
function runWriter(url: string, count: number, rate: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "bench/lib/replication-writer.ts", url, String(count), String(rate)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    const written = new Map<string, number>();
    let pending = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const { id, t } = JSON.parse(line) as { id: string; t: number };
        written.set(id, t);
      }
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(written) : reject(new Error(`writer exited with code ${code}`)),
    );
  });
}

/** Lag of one pair: the replicator follows `from` while the writer writes to it. */
async function measureLag(
  pair: string,
  from: string,
  to: string,
  plan: ReplicationPlan,
  targetMs: number,
  log: (m: string) => void,
): Promise<LagRow> {
  // The source exists (with its feed) before the replicator starts following it: the replicator
  // opens it read-only, and a read-only open of a location without a store is StoreNotFoundError.
  const created = await openStore(from);
  await created.setup();
  await created.close();
  const arrivals = new Map<string, number>();
  const target = timed(await openStore(to), arrivals);
  const stop = new AbortController();
  let following!: () => void;
  const inFollow = new Promise<void>((resolve) => {
    following = resolve;
  });
  const replicator = replicate({
    from,
    to: target,
    follow: true,
    signal: stop.signal,
    onProgress: (p) => {
      if (p.phase === "follow") following();
    },
    onProblem: (p) => log(`${pair}: ${p.kind}: ${p.message}`),
  });
  try {
    await Promise.race([inFollow, replicator]);
    log(`${pair}: following; writing ${plan.lagCount} checkpoints at ${plan.lagRate}/s`);
    const written = await runWriter(from, plan.lagCount, plan.lagRate);
    const deadline = Date.now() + 60_000;
    while ([...written.keys()].some((id) => !arrivals.has(id))) {
      if (Date.now() > deadline) throw new Error(`${pair}: checkpoints never arrived on the target`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const lags = [...written].map(([id, t]) => (arrivals.get(id) as number) - t);
    return { pair, lag: summarize(lags), rate: plan.lagRate, targetMs };
  } finally {
    stop.abort();
    await replicator.catch((error: unknown) => log(`${pair}: replicator: ${(error as Error).message}`));
    await target.close();
  }
}

/** Writes `runs` × `perRun` checkpoints of ~10 KB to `url` (each run a chain, one output per stage). */
async function fill(url: string, runs: number, perRun: number): Promise<string[]> {
  const manager = new CheckpointManager({ store: url });
  const readings = makeReadings(10_000);
  const ids: string[] = [];
  for (let r = 0; r < runs; r++) {
    const pipelineId = `catchup-${r}`;
    ids.push(pipelineId);
    for (let i = 0; i < perRun; i++)
      await manager.createCheckpoint({
        pipelineId,
        pipelineName: "catchup",
        stageName: `s${i}`,
        stageIndex: i,
        stateData: { r, i, readings },
        status: "completed",
      });
  }
  await manager.close();
  return ids;
}

/** Catch-up throughput of `replicate()` against export + import of the same runs, sqlite → postgres. */
async function measureCatchUp(ns: Namespaces, plan: ReplicationPlan, log: (m: string) => void) {
  const source = ns.sqlite();
  const total = plan.catchUpRuns * plan.catchUpPerRun;
  log(`catch-up: filling ${total} checkpoints in sqlite`);
  const runs = await fill(source, plan.catchUpRuns, plan.catchUpPerRun);
  const to = ns.postgres();
  let started = performance.now();
  const report = await replicate({ from: source, to });
  const replicateSeconds = (performance.now() - started) / 1000;
  if (report.checkpointsCopied !== total)
    throw new Error(`replicate copied ${report.checkpointsCopied} of ${total}`);
  log(`catch-up: replicate ${replicateSeconds.toFixed(2)} s; now export + import`);
  const exporter = new CheckpointManager({ store: source });
  const importer = new CheckpointManager({ store: ns.postgres() });
  try {
    started = performance.now();
    for (const run of runs) await exporter.exportPipeline(run, join(ns.dir, `${run}.json`));
    const exportSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    for (const run of runs) await importer.importPipeline(join(ns.dir, `${run}.json`));
    const importSeconds = (performance.now() - started) / 1000;
    return { checkpoints: total, replicateSeconds, exportSeconds, importSeconds };
  } finally {
    await exporter.close();
    await importer.close();
  }
}

/** Runs the replication bench; `log` gets progress lines. */
export async function measureReplication(
  profile: "quick" | "full",
  log: (m: string) => void,
): Promise<ReplicationResult> {
  const plan = REPLICATION_PLANS[profile];
  const ns = new Namespaces(await mkdtemp(join(os.tmpdir(), "cairn-bench-repl-")));
  const [pg, redis] = await Promise.all([probePostgres(POSTGRES_URL), probeRedis(REDIS_URL)]);
  const servers = [pg, redis].flatMap((a) => (a.available ? [a.server] : []));
  const skipped = [pg, redis].flatMap((a) => (a.available ? [] : [a.reason]));
  const result: ReplicationResult = {
    date: new Date().toISOString(),
    plan,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? "?"}, Node ${process.version}`,
    load: [os.loadavg()[0] ?? 0, 0],
    servers,
    lag: [],
    skipped,
  };
  try {
    const pairs: [string, () => string, () => string, number, boolean][] = [
      ["sqlite → postgres", ns.sqlite, ns.postgres, 1000, pg.available],
      ["postgres → redis", ns.postgres, ns.redis, 250, pg.available && redis.available],
      ["file → sqlite", ns.file, ns.sqlite, 1000, true],
    ];
    for (const [pair, from, to, targetMs, available] of pairs) {
      if (!available) continue;
      result.lag.push(await measureLag(pair, from(), to(), plan, targetMs, log));
    }
    if (pg.available) result.catchUp = await measureCatchUp(ns, plan, log);
  } finally {
    result.load[1] = os.loadavg()[0] ?? 0;
    await ns.cleanup();
  }
  return result;
}

/** The report's Markdown. */
export function renderReplication(r: ReplicationResult): string {
  const lines = [
    `## Replication (${r.date}, ${r.machine}, load average ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)})`,
    "",
    `Servers: ${r.servers.join("; ") || "none"}${r.skipped.length ? `; skipped: ${r.skipped.join("; ")}` : ""}`,
    "",
    `Lag in follow mode: ${r.plan.lagCount} checkpoints of ~10 KB written at ${r.plan.lagRate}/s by another ` +
      "process; lag = the target's write returning − the source's write returning.",
    "",
    table(
      ["pair", "samples", "target p99", "min ms", "p50 ms", "p99 ms", "max ms", "met"],
      r.lag.map((row) => [
        row.pair,
        String(row.lag.samples),
        `≤ ${row.targetMs} ms`,
        ms(row.lag.minMs),
        ms(row.lag.p50Ms),
        ms(row.lag.p99Ms),
        ms(row.lag.maxMs),
        row.lag.p99Ms <= row.targetMs ? "yes" : "no",
      ]),
    ),
  ];
  const c = r.catchUp;
  if (c) {
    const perCheckpoint = (s: number) => `${ms((s * 1000) / c.checkpoints)} ms`;
    const both = c.exportSeconds + c.importSeconds;
    lines.push(
      "",
      `Catch-up, sqlite → postgres, ${c.checkpoints} checkpoints of ~10 KB:`,
      "",
      table(
        ["how", "seconds", "checkpoints/s", "per checkpoint", "vs export + import"],
        [
          [
            "replicate()",
            c.replicateSeconds.toFixed(2),
            (c.checkpoints / c.replicateSeconds).toFixed(0),
            perCheckpoint(c.replicateSeconds),
            ratio(c.replicateSeconds, both),
          ],
          ["exportPipeline", c.exportSeconds.toFixed(2), "", perCheckpoint(c.exportSeconds), ""],
          ["importPipeline", c.importSeconds.toFixed(2), "", perCheckpoint(c.importSeconds), ""],
          [
            "export + import",
            both.toFixed(2),
            (c.checkpoints / both).toFixed(0),
            perCheckpoint(both),
            "1.00×",
          ],
        ],
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}
