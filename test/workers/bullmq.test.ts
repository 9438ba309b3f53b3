/**
 * The BullMQ adapter in this process, against the real Redis: its settings and connection
 * options, a failed run failing its job for good (no BullMQ retry), and a drain putting the job
 * back in the queue. The fleet scenarios with real worker processes are in bullmq-fleet.test.ts.
 */
import { Queue } from "bullmq";
import { afterAll, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { bullmqConnection, bullmqSettings } from "../../src/workers/bullmq.js";
import { createWorker, enqueueRun, type WorkerEvent } from "../../src/workers/index.js";
import { deleteKeyPrefixes, REDIS_URL, redisUp, uniqueName } from "../support/services.js";

describe("BullMQ settings", () => {
  it("derives the lock, the stall check and the stall limit from the lease TTL", () => {
    expect(bullmqSettings(30_000)).toEqual({
      lockDuration: 30_000,
      stalledInterval: 15_000,
      maxStalledCount: 10,
    });
    expect(bullmqSettings(1_000)).toEqual({ lockDuration: 1_000, stalledInterval: 500, maxStalledCount: 10 });
  });

  it("reads a redis URL or ioredis options with a url and BullMQ's prefix", () => {
    expect(bullmqConnection("rediss://me:p%40ss@cache.internal:6380/2")).toEqual({
      redis: { host: "cache.internal", port: 6380, username: "me", password: "p@ss", db: 2, tls: {} },
      prefix: undefined,
    });
    expect(bullmqConnection({ url: "redis://127.0.0.1", prefix: "jobs", connectTimeout: 500 })).toEqual({
      redis: { host: "127.0.0.1", port: 6379, connectTimeout: 500 },
      prefix: "jobs",
    });
    expect(() => bullmqConnection("postgres://x")).toThrow(/needs a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => bullmqConnection({ host: "h", keyPrefix: "x" })).toThrow(/use connection.prefix/);
  });
});

describe("BullMQ without a server", () => {
  it("refuses to start a worker or enqueue when Redis does not answer, instead of retrying for ever", async () => {
    const pipeline = new Pipeline({
      name: "unit",
      steps: [{ name: "a", agent: () => 1 }],
      checkpointEnabled: true,
      checkpointStore: "postgres://127.0.0.1:1/unused",
    });
    const connection = "redis://127.0.0.1:1";
    const unavailable = {
      code: "CAIRN_STORE_UNAVAILABLE",
      message: expect.stringMatching(/cannot reach Redis at 127.0.0.1:1: .*ECONNREFUSED/),
    };
    await expect(
      createWorker({ engine: "bullmq", connection, pipelines: { unit: pipeline } }),
    ).rejects.toMatchObject(unavailable);
    await expect(enqueueRun({ engine: "bullmq", connection, pipeline: "unit" })).rejects.toMatchObject(
      unavailable,
    );
  });
});

describe.skipIf(!redisUp)("BullMQ adapter", () => {
  const prefixes: string[] = [];
  const managers: CheckpointManager[] = [];
  afterAll(async () => {
    for (const manager of managers) await manager.close();
    await deleteKeyPrefixes(...prefixes);
  });

  function fresh(agent: (inputs: Record<string, unknown>) => unknown) {
    const bull = uniqueName("cairn-bull-unit");
    const store = `${uniqueName("cairn-bull-unit-store")}:`;
    prefixes.push(`${bull}:`, store);
    const manager = new CheckpointManager({ store: `${REDIS_URL}?keyPrefix=${store}` });
    managers.push(manager);
    const pipeline = new Pipeline({
      name: "unit",
      steps: [
        { name: "a", agent },
        { name: "b", agent: () => "b" },
      ],
      checkpointEnabled: true,
      checkpointStore: manager,
    });
    const connection = { url: REDIS_URL, prefix: bull };
    const queueName = uniqueName("unit");
    const queue = new Queue(queueName, { connection: bullmqConnection(connection).redis, prefix: bull });
    const events: WorkerEvent[] = [];
    const start = (concurrency = 1) =>
      createWorker({
        engine: "bullmq",
        connection,
        queue: queueName,
        pipelines: { unit: pipeline },
        concurrency,
        leaseTtlMs: 2_000,
        onEvent: (e) => events.push(e),
      });
    const enqueue = (runId: string) =>
      enqueueRun({ engine: "bullmq", connection, queue: queueName, pipeline: "unit", runId });
    return { manager, queue, events, start, enqueue };
  }

  it("fails the job of a failed run for good: BullMQ does not retry it", async () => {
    let calls = 0;
    const { queue, events, start, enqueue } = fresh(() => {
      calls++;
      throw new Error("bad input");
    });
    const worker = await start();
    try {
      await enqueue("u-fail");
      await expect.poll(() => queue.getJobState("u-fail"), { timeout: 15_000 }).toBe("failed");
      const job = await queue.getJob("u-fail");
      expect(job?.failedReason).toMatch(/bad input/);
      expect(job?.attemptsMade).toBe(1);
      expect(events.map((e) => e.type)).toEqual(["job_started", "job_failed"]);
      expect(calls).toBe(1);
    } finally {
      await worker.close();
      await queue.close();
    }
  });

  it("close() lets the running stage finish and checkpoint, and puts the job back in the queue", async () => {
    let entered: () => void = () => {};
    const inStage = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const { queue, events, start, enqueue, manager } = fresh(async () => {
      entered();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return "a";
    });
    const worker = await start();
    await enqueue("u-drain");
    await inStage;
    await worker.close();
    expect(events.map((e) => e.type)).toEqual(["job_started", "job_returned"]);
    expect((await manager.getCheckpointHistory("u-drain")).map((m) => m.stageName)).toEqual(["a"]);
    expect(["waiting", "delayed"]).toContain(await queue.getJobState("u-drain"));
    // Another worker picks it up and finishes the run from its checkpoint.
    const next = await start();
    try {
      await expect.poll(() => queue.getJobState("u-drain"), { timeout: 15_000 }).toBe("completed");
      expect((await manager.getCheckpointHistory("u-drain")).map((m) => m.stageName)).toEqual([
        "pipeline_complete",
        "b",
        "a",
      ]);
    } finally {
      await next.close();
      await queue.close();
    }
  });

  it("runs `concurrency` runs at once in one worker, each on its own Pipeline", async () => {
    let running = 0;
    let most = 0;
    const { queue, events, start, enqueue } = fresh(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 150));
      running--;
      return "a";
    });
    const worker = await start(3);
    try {
      const ids = ["c-1", "c-2", "c-3", "c-4", "c-5", "c-6"];
      for (const id of ids) await enqueue(id);
      for (const id of ids)
        await expect.poll(() => queue.getJobState(id), { timeout: 15_000 }).toBe("completed");
      expect(events.filter((e) => e.type === "job_completed")).toHaveLength(6);
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(3);
    } finally {
      await worker.close();
      await queue.close();
    }
  });
});
