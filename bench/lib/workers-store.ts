/**
 * What one shared checkpoint store sustains when a fleet writes to it: `writerProcesses`
 * processes with `writersEach` concurrent writers each write small checkpoints (like the bench
 * pipeline's) back to back, each writer to runs of its own, for `writeSeconds`, on PostgreSQL
 * (one schema) and Redis (one key prefix). Writes/s is the total over the common window.
 */
import {
  deleteRedisKeys,
  dropPostgresSchema,
  POSTGRES_URL,
  probePostgres,
  probeRedis,
  REDIS_URL,
  withParams,
} from "./servers.js";
import { percentile } from "./stats.js";
import type { WorkersPlan } from "./workers.js";
import { Journal, startChild } from "./workers-fleet.js";

/** One store's concurrent write capacity. */
export interface StoreWritesRow {
  store: string;
  writers: number;
  writesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  skipped?: string;
}

const now = () => performance.timeOrigin + performance.now();

async function measureOne(
  name: string,
  url: string,
  plan: WorkersPlan,
  log: (m: string) => void,
): Promise<StoreWritesRow> {
  const writers = plan.writerProcesses * plan.writersEach;
  const journal = new Journal();
  // Far enough ahead for every process to start and warm up (tsx start-up on a busy machine).
  const startAt = now() + 10_000;
  const children = Array.from({ length: plan.writerProcesses }, () =>
    startChild(
      {
        mode: "writers",
        engine: "bullmq",
        connection: "",
        queue: "",
        store: url,
        leaseTtlMs: 5_000,
        writers: plan.writersEach,
        seconds: plan.writeSeconds,
        startAt,
        runPrefix: `w-${name}`,
      },
      journal,
      log,
    ),
  );
  await Promise.all(children.map((c) => c.exited));
  const results = journal.lines.filter((l) => l.e === "writes");
  if (results.length !== children.length) throw new Error(`${name}: a writer process failed`);
  const latencies = results.flatMap((l) => l.latencies ?? []).sort((a, b) => a - b);
  const row = {
    store: name,
    writers,
    writesPerSec: latencies.length / plan.writeSeconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
  log(`${name}: ${row.writesPerSec.toFixed(0)} writes/s with ${writers} writers`);
  return row;
}

/** PostgreSQL's and Redis's concurrent checkpoint writes/s, each in a namespace of its own. */
export async function measureStoreWrites(
  plan: WorkersPlan,
  log: (m: string) => void,
): Promise<StoreWritesRow[]> {
  const rows: StoreWritesRow[] = [];
  const writers = plan.writerProcesses * plan.writersEach;
  const pg = await probePostgres(POSTGRES_URL);
  if (pg.available) {
    const schema = `cairn_bench_${process.pid}_writes`;
    try {
      rows.push(await measureOne("postgres", withParams(POSTGRES_URL, { schema }), plan, log));
    } finally {
      await dropPostgresSchema(POSTGRES_URL, schema).then(log, (e: unknown) =>
        log(`cleanup failed: ${(e as Error).message}`),
      );
    }
  } else
    rows.push({
      store: "postgres",
      writers,
      writesPerSec: Number.NaN,
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      skipped: pg.reason,
    });
  const redis = await probeRedis(REDIS_URL);
  if (redis.available) {
    const prefix = `cairn-bench:${process.pid}:writes:`;
    try {
      rows.push(await measureOne("redis", withParams(REDIS_URL, { keyPrefix: prefix }), plan, log));
    } finally {
      await deleteRedisKeys(REDIS_URL, prefix).then(log, (e: unknown) =>
        log(`cleanup failed: ${(e as Error).message}`),
      );
    }
  } else
    rows.push({
      store: "redis",
      writers,
      writesPerSec: Number.NaN,
      p50Ms: Number.NaN,
      p99Ms: Number.NaN,
      skipped: redis.reason,
    });
  return rows;
}
