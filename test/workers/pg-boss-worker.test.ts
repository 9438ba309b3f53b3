/**
 * `createWorker` and `enqueueRun` on pg-boss, in process, with real pipelines on a PostgreSQL
 * checkpoint store: a run longer than one pg-boss slice finishes over several deliveries without
 * running a checkpointed stage again, and a failing run's job fails for good. (The fleet test
 * covers real worker processes.)
 */
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type StepDefinition } from "../../src/index.js";
import { type CairnWorker, createWorker, enqueueRun, type WorkerEvent } from "../../src/workers/index.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

const LEASE_TTL_MS = 2_000;

async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!postgresUp)("pg-boss workers", () => {
  const schemas: string[] = [];
  const workers: CairnWorker[] = [];
  const managers: CheckpointManager[] = [];
  const db = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.close();
    for (const manager of managers.splice(0)) await manager.close();
  });
  afterAll(async () => {
    await db.end();
    await dropSchemas(...schemas);
  });

  /** A pipeline of `stages` stages of `stageMs` each, on its own store and pg-boss schema. */
  function setup(stages: number, stageMs: number, failAt?: string) {
    const storeSchema = uniqueName("cairn_pgbw");
    const bossSchema = uniqueName("pgboss");
    schemas.push(storeSchema, bossSchema);
    const manager = new CheckpointManager({ store: `${POSTGRES_URL}?schema=${storeSchema}` });
    managers.push(manager);
    const ran: string[] = [];
    const steps: StepDefinition[] = Array.from({ length: stages }, (_, i) => ({
      name: `s${i + 1}`,
      agent: async (inputs: Record<string, unknown>) => {
        ran.push(`s${i + 1}`);
        await new Promise((resolve) => setTimeout(resolve, stageMs));
        if (failAt === `s${i + 1}`) throw new Error(`stage ${failAt} broke`);
        return { [`s${i + 1}`]: inputs.n ?? 0 };
      },
    }));
    const pipeline = new Pipeline({ name: "long", steps, checkpointEnabled: true, checkpointStore: manager });
    const connection = { connectionString: POSTGRES_URL, schema: bossSchema };
    const events: WorkerEvent[] = [];
    const start = async () => {
      const worker = await createWorker({
        engine: "pg-boss",
        connection,
        pipelines: { long: pipeline },
        leaseTtlMs: LEASE_TTL_MS,
        onEvent: (event) => events.push(event),
      });
      workers.push(worker);
      return worker;
    };
    const enqueue = (runId: string) =>
      enqueueRun({
        engine: "pg-boss",
        connection,
        pipeline: "long",
        runId,
        inputs: { n: 1 },
        leaseTtlMs: LEASE_TTL_MS,
      });
    const jobState = async (jobId: string) =>
      (
        await db.query<{ state: string; output: Record<string, unknown> | null }>(
          `SELECT state, output FROM ${bossSchema}.job WHERE id = $1`,
          [jobId],
        )
      ).rows[0];
    return { manager, ran, events, start, enqueue, jobState };
  }

  it("finishes a run longer than a slice over several deliveries, each stage once", async () => {
    // 8 × 250 ms against slices of 1 s (stages shorter than the 1 s margin, as the README
    // advises): the run needs at least two deliveries.
    const t = setup(8, 250);
    await t.start();
    const { jobId, created } = await t.enqueue("run-long");
    expect(created).toBe(true);
    await waitFor(
      async () => ((await t.jobState(jobId))?.state === "completed" ? true : undefined),
      "the job",
    );
    expect(t.ran).toEqual(["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]);
    const started = t.events.filter((e) => e.type === "job_started");
    expect(started.length).toBeGreaterThanOrEqual(2);
    expect(t.events.filter((e) => e.type === "job_returned").length).toBe(started.length - 1);
    expect(t.events.filter((e) => e.type === "error")).toEqual([]);
    expect((await t.manager.getRunInfo("run-long"))?.finished).toBe(true);
  });

  it("fails the job of a failed run for good: one delivery, pg-boss state failed with the error", async () => {
    const t = setup(3, 10, "s2");
    await t.start();
    const { jobId } = await t.enqueue("run-fail");
    const row = await waitFor(async () => {
      const state = await t.jobState(jobId);
      return state?.state === "failed" ? state : undefined;
    }, "the failed job");
    expect(JSON.stringify(row.output)).toContain("stage s2 broke");
    // Several polling intervals later: still one delivery.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(t.events.filter((e) => e.type === "job_started")).toHaveLength(1);
    expect(t.events.filter((e) => e.type === "job_failed")).toHaveLength(1);
  });

  it("enqueues a run id twice as one job", async () => {
    const t = setup(2, 10);
    const first = await t.enqueue("run-twice");
    const second = await t.enqueue("run-twice");
    expect(second).toEqual({ ...first, created: false });
    await t.start();
    await waitFor(
      async () => ((await t.jobState(first.jobId))?.state === "completed" ? true : undefined),
      "the job",
    );
    expect(t.ran).toEqual(["s1", "s2"]);
  });
});
