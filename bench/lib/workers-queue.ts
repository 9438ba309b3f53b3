/** The queue side of the workers bench: each engine's namespace, and enqueueing a backlog. */
import { enqueueRun, type WorkerEngine } from "../../src/workers/index.js";
import { deleteRedisKeys, dropPostgresSchema, POSTGRES_URL, REDIS_URL } from "./servers.js";
import type { WorkersChildConfig } from "./workers-child.js";

/** The stage wait of the throughput runs (ms). */
export const STAGE_MS = 20;

/**
 * Enqueues `runIds` with at most 8 enqueues in flight, after a first one alone (which creates
 * the queue: before wk-pgboss's efa9f7b, concurrent pg-boss enqueues to a new queue failed with
 * PostgreSQL's "deadlock detected"; harmless since).
 */
export async function enqueueAll(
  engine: WorkerEngine,
  base: Omit<WorkersChildConfig, "mode">,
  runIds: string[],
) {
  let next = 0;
  let failed = false;
  const one = async () => {
    const runId = runIds[next++] as string;
    const { created } = await enqueueRun({
      engine,
      connection: base.connection,
      queue: base.queue,
      leaseTtlMs: base.leaseTtlMs,
      pipeline: "bench5",
      runId,
      inputs: { stageMs: STAGE_MS },
    });
    if (!created) throw new Error(`run ${runId} was already enqueued`);
  };
  const lane = async () => {
    try {
      while (next < runIds.length && !failed) await one();
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  await one();
  // allSettled first: no lane may still be enqueueing when the caller cleans up after a failure.
  const lanes = await Promise.allSettled(Array.from({ length: 8 }, lane));
  for (const lane of lanes) if (lane.status === "rejected") throw lane.reason;
}

/** The engine's queue connection, in a namespace of this process; and how to remove it. */
export function engineNamespace(engine: WorkerEngine, pid: number) {
  if (engine === "bullmq") {
    const prefix = `cairn-bench:${pid}:bull`;
    return {
      connection: { url: REDIS_URL, prefix },
      cleanup: () => deleteRedisKeys(REDIS_URL, `${prefix}:`),
    };
  }
  const schema = `cairn_bench_${pid}_pgboss`;
  return {
    connection: { connectionString: POSTGRES_URL, schema },
    cleanup: () => dropPostgresSchema(POSTGRES_URL, schema),
  };
}
