/**
 * Replication benchmarks of issue 17, printed as Markdown (not part of `npm test` or `npm run
 * bench`: run `node --import tsx bench/replicate.ts [--checkpoints N] [--lag-writes N]`):
 * - follow lag: a writer writes 10 KB checkpoints at a steady rate while `replicate --follow`
 *   copies them; lag = from the write's return to the checkpoint readable on the target (polled
 *   every millisecond), p50 and p99, for sqlite → postgres, postgres → redis and file → sqlite;
 * - catch-up: N checkpoints of 10 KB (10 per run) from sqlite to postgres, by a first full sync,
 *   by the feed (after a sync of the empty store), and by export + import of every run.
 * PostgreSQL and Redis are the local servers; each measurement uses its own schema / key prefix
 * / folder and removes it.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CheckpointManager, replicate } from "../src/index.js";
import { openStore } from "../src/stores/registry.js";

const PG = process.env.CAIRN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS = process.env.CAIRN_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";
const { values } = parseArgs({
  options: {
    checkpoints: { type: "string", default: "10000" },
    "lag-writes": { type: "string", default: "300" },
    rate: { type: "string", default: "50" },
  },
});
const CHECKPOINTS = Number(values.checkpoints);
const LAG_WRITES = Number(values["lag-writes"]);
const RATE = Number(values.rate);
const PAD = randomBytes(7_500).toString("base64").slice(0, 10_000);

const dir = await mkdtemp(join(tmpdir(), "cairn-bench-replicate-"));
const schemas: string[] = [];
const prefixes: string[] = [];
const tag = () => randomBytes(4).toString("hex");
const url = {
  sqlite: () => `sqlite:${join(dir, `${tag()}.db`)}`,
  file: () => `file:${join(dir, `files-${tag()}`)}`,
  postgres: () => {
    const schema = `cairn_bench_rep_${tag()}`;
    schemas.push(schema);
    return `${PG}?schema=${schema}`;
  },
  redis: () => {
    const prefix = `cairn-bench-rep-${tag()}:`;
    prefixes.push(prefix);
    return `${REDIS}?keyPrefix=${prefix}`;
  },
};

function write(m: CheckpointManager, run: number, stage: number): Promise<string> {
  return m.createCheckpoint({
    pipelineId: `run-${run}`,
    pipelineName: "bench",
    stageName: `s${stage}`,
    stageIndex: stage,
    completedStages: [`s${stage}`],
    pendingStages: [],
    status: "completed",
    stateData: { pad: PAD, run, stage },
  });
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number;

async function lag(fromKind: keyof typeof url, toKind: keyof typeof url): Promise<string> {
  const from = url[fromKind]();
  const to = url[toKind]();
  const m = new CheckpointManager({ store: from });
  const target = await openStore(to);
  await write(m, 0, 0);
  const controller = new AbortController();
  const running = replicate({ from, to, follow: true, signal: controller.signal });
  while ((await target.listCheckpoints("run-0")).length === 0) await sleep(5);
  const lags: number[] = [];
  const interval = 1000 / RATE;
  for (let i = 1; i <= LAG_WRITES; i++) {
    const started = performance.now();
    const id = await write(m, 1 + Math.floor(i / 10), i % 10);
    const written = performance.now();
    while (!(await target.getCheckpoint(id))) await sleep(1);
    lags.push(performance.now() - written);
    await sleep(Math.max(0, interval - (performance.now() - started)));
  }
  controller.abort();
  await running;
  await Promise.all([m.close(), target.close()]);
  lags.sort((a, b) => a - b);
  return `| ${fromKind} → ${toKind} | ${LAG_WRITES} at ${RATE}/s | ${percentile(lags, 0.5).toFixed(1)} ms | ${percentile(lags, 0.99).toFixed(1)} ms |`;
}

async function fill(from: string, runs: number): Promise<CheckpointManager> {
  const m = new CheckpointManager({ store: from });
  for (let run = 1; run <= runs; run++) for (let stage = 0; stage < 10; stage++) await write(m, run, stage);
  return m;
}

const rate = (n: number, ms: number) =>
  `${Math.round((n / ms) * 1000)} checkpoints/s (${(ms / n).toFixed(2)} ms each)`;

async function catchUp(): Promise<string[]> {
  const runs = Math.ceil(CHECKPOINTS / 10);
  const n = runs * 10;
  const rows: string[] = [];
  // A first full sync: each run imported in one step.
  const from = url.sqlite();
  const m = await fill(from, runs);
  let t = performance.now();
  const full = await replicate({ from, to: url.postgres() });
  const fullMs = performance.now() - t;
  rows.push(`| full sync sqlite → postgres | ${full.checkpointsCopied} | ${rate(n, fullMs)} |`);
  // The feed: the target synced while the source was empty, then everything through the feed.
  const from2 = url.sqlite();
  const to2 = url.postgres();
  await replicate({ from: from2, to: to2 });
  const m2 = await fill(from2, runs);
  t = performance.now();
  const fed = await replicate({ from: from2, to: to2 });
  const fedMs = performance.now() - t;
  rows.push(`| feed catch-up sqlite → postgres | ${fed.checkpointsCopied} | ${rate(n, fedMs)} |`);
  // Export + import of every run, the one-off copy replication replaces.
  const importer = new CheckpointManager({ store: url.postgres() });
  t = performance.now();
  for (let run = 1; run <= runs; run++) {
    const path = join(dir, `run-${run}.json`);
    await m.exportPipeline(`run-${run}`, path);
    await importer.importPipeline(path);
  }
  const transferMs = performance.now() - t;
  rows.push(`| export + import sqlite → postgres | ${n} | ${rate(n, transferMs)} |`);
  rows.push(
    `| replication cost ÷ export + import | | full sync ${(fullMs / transferMs).toFixed(2)}×, feed ${(fedMs / transferMs).toFixed(2)}× |`,
  );
  await Promise.all([m.close(), m2.close(), importer.close()]);
  return rows;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function cleanup(): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  const pg = new (await import("pg")).default.Client({ connectionString: PG });
  await pg.connect();
  for (const schema of schemas) await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pg.end();
  const redis = new (await import("ioredis")).Redis(REDIS);
  for (const prefix of prefixes) {
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  }
  redis.disconnect();
}

try {
  console.log(
    "## Follow lag (10 KB checkpoints)\n\n| pair | writes | p50 | p99 |\n| --- | --- | --- | --- |",
  );
  console.log(await lag("sqlite", "postgres"));
  console.log(await lag("postgres", "redis"));
  console.log(await lag("file", "sqlite"));
  console.log(`\n## Catch-up (${CHECKPOINTS} checkpoints of 10 KB, 10 per run)\n`);
  console.log("| how | checkpoints | rate |\n| --- | --- | --- |");
  for (const row of await catchUp()) console.log(row);
} finally {
  await cleanup();
}
