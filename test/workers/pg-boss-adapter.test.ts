/**
 * The pg-boss adapter against a real PostgreSQL, with handlers written here (the engine-neutral
 * runner is tested elsewhere): one job per run, what each outcome does to the job, slices,
 * redelivery after a SIGKILLed worker's job expires, and the drain of `close()`. Each test has
 * its own pg-boss schema, dropped afterwards.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { adapter } from "../../src/workers/pg-boss.js";
import { pgBossJobId, pgBossTiming } from "../../src/workers/pg-boss-settings.js";
import type { EngineWorker, JobHandler, JobOutcome, RunJobData } from "../../src/workers/types.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const HANG_WORKER = fileURLToPath(new URL("./fixtures/pgboss-hang-worker.ts", import.meta.url));
const QUEUE = "cairn-runs";

interface JobRow {
  state: string;
  retry_count: number;
  retry_limit: number;
  output: Record<string, unknown> | null;
}

async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!postgresUp)("pg-boss adapter", () => {
  const schemas: string[] = [];
  const workers: EngineWorker[] = [];
  const db = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });

  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.close();
  });
  afterAll(async () => {
    await db.end();
    await dropSchemas(...schemas);
  });

  function setup(leaseTtlMs: number) {
    const schema = uniqueName("pgboss");
    schemas.push(schema);
    const connection = { connectionString: POSTGRES_URL, schema };
    const errors: Error[] = [];
    const start = async (handler: JobHandler) => {
      const worker = await adapter.startWorker(
        { connection, queue: QUEUE, concurrency: 1, leaseTtlMs, onError: (e) => errors.push(e) },
        handler,
      );
      workers.push(worker);
      return worker;
    };
    const enqueue = (runId: string, inputs?: Record<string, unknown>, jobLeaseTtlMs = leaseTtlMs) =>
      adapter.enqueue(
        { connection, queue: QUEUE, leaseTtlMs: jobLeaseTtlMs },
        { pipeline: "p", runId, ...(inputs ? { inputs } : {}) },
      );
    const jobs = async () =>
      (await db.query<JobRow & { id: string }>(`SELECT * FROM ${schema}.job WHERE name = $1`, [QUEUE])).rows;
    const job = async (id: string) => (await jobs()).find((row) => row.id === id);
    const jobInState = (id: string, state: string) =>
      waitFor(async () => {
        const row = await job(id);
        return row?.state === state ? row : undefined;
      }, `job ${id} in state ${state}`);
    return { schema, connection, errors, start, enqueue, jobs, job, jobInState };
  }

  /** A handler that records every call and answers with `answer`. */
  function recording(answer: (data: RunJobData, delivery: number, stop: AbortSignal) => Promise<JobOutcome>) {
    const calls: { data: RunJobData; delivery: number; jobId: string }[] = [];
    const handler: JobHandler = (data, control) => {
      calls.push({ data, delivery: control.delivery, jobId: control.jobId });
      return answer(data, control.delivery, control.stop);
    };
    return { calls, handler };
  }

  it("derives the settings from the lease TTL", () => {
    expect(pgBossTiming(30_000)).toEqual({
      expireInSeconds: 30,
      sliceMs: 15_000,
      maintenanceIntervalSeconds: 15,
      pollingIntervalSeconds: 1,
    });
    const small = pgBossTiming(2_000);
    expect(small.expireInSeconds).toBe(2);
    expect(small.sliceMs).toBeLessThan(2_000);
    expect(small.maintenanceIntervalSeconds).toBe(1);
    expect(small.pollingIntervalSeconds).toBe(0.5);
  });

  it("makes one job of a run enqueued twice, with a UUID derived from queue and run id", async () => {
    const t = setup(30_000);
    const first = await t.enqueue("run-a", { n: 1 });
    const second = await t.enqueue("run-a", { n: 2 });
    const other = await t.enqueue("run-b");
    expect(first).toEqual({ jobId: pgBossJobId(QUEUE, "run-a"), created: true });
    expect(second).toEqual({ jobId: first.jobId, created: false });
    expect(other.created).toBe(true);
    expect(other.jobId).not.toBe(first.jobId);
    expect(first.jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pgBossJobId("other-queue", "run-a")).not.toBe(first.jobId);
    const rows = await t.jobs();
    expect(rows.filter((row) => row.id === first.jobId)).toHaveLength(1);
    expect(rows.find((row) => row.id === first.jobId)).toMatchObject({
      data: { pipeline: "p", runId: "run-a", inputs: { n: 1 } },
    });
  });

  it("starts many workers at once on a new queue (pg-boss's queue creation can deadlock: retried)", async () => {
    const t = setup(2_000);
    const start = (queue: string) =>
      adapter.startWorker(
        { connection: t.connection, queue, concurrency: 1, leaseTtlMs: 2_000, onError: () => {} },
        async () => ({ kind: "completed" }),
      );
    // The schema first, as in a fleet whose first worker migrated it; then six creators of a new queue.
    workers.push(await start("warm"));
    const started = await Promise.allSettled(Array.from({ length: 6 }, () => start("fresh-queue")));
    for (const result of started) if (result.status === "fulfilled") workers.push(result.value);
    expect(started.filter((result) => result.status === "rejected")).toEqual([]);
  });

  it("completes the job of a completed run", async () => {
    const t = setup(30_000);
    const { calls, handler } = recording(async () => ({ kind: "completed" }));
    await t.start(handler);
    const { jobId } = await t.enqueue("run-c", { x: 1 });
    await t.jobInState(jobId, "completed");
    expect(calls).toEqual([
      { data: { pipeline: "p", runId: "run-c", inputs: { x: 1 } }, delivery: 1, jobId },
    ]);
    expect(t.errors).toEqual([]);
  });

  it("redelivers a returned job at once, long before it would expire", async () => {
    // A 60 s expiry: a second delivery within the wait can only come from the immediate retry.
    const t = setup(60_000);
    const { calls, handler } = recording(async (_data, delivery) =>
      delivery === 1 ? { kind: "returned" } : { kind: "completed" },
    );
    await t.start(handler);
    const { jobId } = await t.enqueue("run-r");
    const row = await t.jobInState(jobId, "completed");
    expect(calls.map((call) => call.delivery)).toEqual([1, 2]);
    expect(row.retry_count).toBe(1);
  });

  it("fails a failed run's job for good, without a retry", async () => {
    const t = setup(60_000);
    const { calls, handler } = recording(async () => ({ kind: "failed", error: new Error("stage b broke") }));
    await t.start(handler);
    const { jobId } = await t.enqueue("run-f");
    const row = await t.jobInState(jobId, "failed");
    expect(row.output).toMatchObject({ message: "stage b broke" });
    expect(row.retry_count).toBe(0);
    // Several polling intervals later, still one delivery and still failed.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(calls).toHaveLength(1);
    expect((await t.job(jobId))?.state).toBe("failed");
  });

  it("ends a slice before the job expires: stop is aborted, the job is returned and resumed", async () => {
    const t = setup(2_000);
    const stopped: boolean[] = [];
    const { calls, handler } = recording(async (_data, delivery, stop) => {
      if (delivery > 1) return { kind: "completed" };
      await new Promise((resolve) => stop.addEventListener("abort", resolve, { once: true }));
      stopped.push(stop.aborted);
      return { kind: "returned" };
    });
    await t.start(handler);
    const { jobId } = await t.enqueue("run-s");
    await t.jobInState(jobId, "completed");
    expect(stopped).toEqual([true]);
    expect(calls.map((call) => call.delivery)).toEqual([1, 2]);
    // The slice ended inside the job's lifetime: pg-boss never had to expire it.
    expect((await t.job(jobId))?.output).toBeTruthy();
    expect(t.errors).toEqual([]);
  });

  it("slices by the job's own expiry when its enqueuer used a shorter lease TTL than the worker", async () => {
    // The worker's own slices would last 30 s; the job expires after 2 s and must go back before.
    const t = setup(60_000);
    const { calls, handler } = recording(async (_data, delivery, stop) => {
      if (delivery > 1) return { kind: "completed" };
      await new Promise((resolve) => stop.addEventListener("abort", resolve, { once: true }));
      return { kind: "returned" };
    });
    await t.start(handler);
    const { jobId } = await t.enqueue("run-short", undefined, 2_000);
    await t.jobInState(jobId, "completed");
    expect(calls.map((call) => call.delivery)).toEqual([1, 2]);
    // Returned by the worker (its output says so), not expired by pg-boss.
    expect(JSON.stringify((await t.job(jobId))?.output ?? {})).not.toContain("timeout");
  });

  it("redelivers the job of a SIGKILLed worker once it expires", async () => {
    const t = setup(2_000);
    const child = spawn(
      process.execPath,
      [
        "--import",
        TSX,
        HANG_WORKER,
        JSON.stringify({ connection: t.connection, queue: QUEUE, leaseTtlMs: 2_000 }),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const lines: Record<string, unknown>[] = [];
    let buffered = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      for (const part of parts) if (part.trim()) lines.push(JSON.parse(part) as Record<string, unknown>);
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      await waitFor(() => lines.find((line) => line.event === "ready"), "the child worker");
      const { jobId } = await t.enqueue("run-k");
      await waitFor(() => lines.find((line) => line.event === "job"), "the child's job");
      child.kill("SIGKILL");
      await exited;
      expect((await t.job(jobId))?.state).toBe("active");
      const { calls, handler } = recording(async () => ({ kind: "completed" }));
      await t.start(handler);
      await t.jobInState(jobId, "completed");
      expect(calls.map((call) => call.delivery)).toEqual([2]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  it("leaves a job alone once it expired: a late fenced outcome does not disturb the next delivery", async () => {
    const t = setup(2_000);
    let aDone = false;
    let bSawState: string | undefined;
    const delivery2 = { started: false };
    // A ignores its slice (a stage longer than the lease) and is fenced after pg-boss expired its
    // job and gave it to B.
    const a = recording(async () => {
      await waitFor(() => (delivery2.started ? true : undefined), "the second delivery");
      aDone = true;
      return { kind: "fenced", error: new Error("lease lost") };
    });
    await t.start(a.handler);
    const { jobId } = await t.enqueue("run-late");
    await waitFor(() => (a.calls.length > 0 ? true : undefined), "the first delivery");
    const b = recording(async () => {
      delivery2.started = true;
      await waitFor(() => (aDone ? true : undefined), "the fenced outcome");
      // Room for A's adapter to act on its outcome, if it (wrongly) did.
      await new Promise((resolve) => setTimeout(resolve, 500));
      bSawState = (await t.job(jobId))?.state;
      return { kind: "completed" };
    });
    await t.start(b.handler);
    await t.jobInState(jobId, "completed");
    expect(bSawState).toBe("active");
    expect([...a.calls, ...b.calls].map((call) => call.delivery)).toEqual([1, 2]);
  });

  it("drains on close(): the running job is stopped, returned to the queue and finished by another worker", async () => {
    const t = setup(60_000);
    let started = false;
    const first = recording(async (_data, _delivery, stop) => {
      started = true;
      await new Promise((resolve) => stop.addEventListener("abort", resolve, { once: true }));
      return { kind: "returned" };
    });
    const worker = await t.start(first.handler);
    const { jobId } = await t.enqueue("run-d");
    await waitFor(() => (started ? true : undefined), "the first delivery");
    await worker.close();
    const row = await t.job(jobId);
    expect(row?.state).toBe("retry");
    const second = recording(async () => ({ kind: "completed" }));
    await t.start(second.handler);
    await t.jobInState(jobId, "completed");
    expect(first.calls.map((call) => call.delivery)).toEqual([1]);
    expect(second.calls.map((call) => call.delivery)).toEqual([2]);
  });
});

it("reports an unreachable PostgreSQL as CAIRN_STORE_UNAVAILABLE, for a worker and an enqueue", async () => {
  const settings = {
    connection: "postgres://cairn:secret@127.0.0.1:1/none",
    queue: QUEUE,
    leaseTtlMs: 2_000,
  };
  const failures = await Promise.all([
    adapter.enqueue(settings, { pipeline: "p", runId: "r" }).catch((error: unknown) => error),
    adapter
      .startWorker({ ...settings, concurrency: 1, onError: () => {} }, async () => ({ kind: "completed" }))
      .catch((error: unknown) => error),
  ]);
  for (const error of failures) {
    expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    expect((error as Error).message).toContain("PostgreSQL at 127.0.0.1:1");
    expect((error as Error).message).not.toContain("secret");
  }
});
