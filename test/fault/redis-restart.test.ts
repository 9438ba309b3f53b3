/**
 * A private Redis server killed with SIGKILL and restarted, between and during writes. With an
 * append-only file flushed on every write, what the server acknowledged survives: the manager
 * writes on, and a run resumes and completes on one valid chain. Without persistence the server
 * comes back empty: a writer that had written to a run gets `CAIRN_HISTORY_LOST` naming what
 * was lost, never a silent new chain at sequence 1.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline, type PipelineEvent } from "../../src/index.js";
import { type PrivateRedis, redisServerMissing, startRedisServer } from "../support/redis-server.js";
import { expectRunIntact } from "../support/run-checks.js";
import { uniqueName } from "../support/services.js";

const missing = redisServerMissing();
if (missing) {
  if (process.env.CI) throw new Error(`CI needs a private redis-server for the fault tests: ${missing}`);
  console.warn(`\n⚠⚠⚠ SKIPPING Redis restart tests: ${missing} ⚠⚠⚠\n`);
}

const stages = ["s1", "s2", "s3", "s4", "s5", "s6"];

function stageInput(pipelineId: string, i: number) {
  const done = stages.slice(0, i + 1);
  return {
    pipelineId,
    pipelineName: "redis_fault",
    stageName: stages[i] as string,
    stageIndex: i,
    stateData: { i },
    completedStages: done,
    pendingStages: stages.slice(i + 1),
    agentOutputs: Object.fromEntries(done.map((s) => [s, { s, rows: [s, s] }])),
  };
}

/** Retries `fn` while the store is unavailable (the client reconnecting), up to 20 s. */
async function whenAvailable<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if ((error as { code?: string }).code !== "CAIRN_STORE_UNAVAILABLE" || Date.now() > deadline)
        throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function managerOn(server: PrivateRedis): CheckpointManager {
  return new CheckpointManager({
    strategy: "redis",
    config: { url: server.url, keyPrefix: `${uniqueName("cairn-fault")}:`, connectTimeoutMs: 2000 },
  });
}

/** Kills the server and starts it again, then waits until `manager`'s client is back. */
async function restart(server: PrivateRedis, manager: CheckpointManager): Promise<void> {
  await server.kill();
  await server.start();
  await whenAvailable(async () => (await manager.getStore()).listPipelineIds());
}

describe.skipIf(missing)("a Redis server with persistence, killed and restarted", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await startRedisServer({ persistent: true });
  });
  afterAll(async () => server?.stop());

  it("between writes: every acknowledged checkpoint is kept and the manager writes on", async () => {
    const manager = managerOn(server);
    const ids = [
      await manager.createCheckpoint(stageInput("r1", 0)),
      await manager.createCheckpoint(stageInput("r1", 1)),
    ];
    await restart(server, manager);
    expect(await expectRunIntact(manager, "r1")).toEqual(ids);
    for (let i = 2; i < stages.length; i++) ids.push(await manager.createCheckpoint(stageInput("r1", i)));
    expect(await expectRunIntact(manager, "r1")).toEqual(ids);
    await manager.close();
  });

  it("during writes: the write in flight is whole or absent, acknowledged ones are kept, the chain goes on", async () => {
    const manager = managerOn(server);
    const acknowledged = [
      await manager.createCheckpoint(stageInput("r2", 0)),
      await manager.createCheckpoint(stageInput("r2", 1)),
    ];
    // The kill lands while the third write is on its way.
    const inFlight = manager.createCheckpoint(stageInput("r2", 2)).then(
      (id) => ({ id }),
      (error: unknown) => ({ error }),
    );
    await server.kill();
    const outcome = await inFlight;
    if ("error" in outcome) expect(outcome.error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    else acknowledged.push(outcome.id);
    await server.start();
    await whenAvailable(async () => (await manager.getStore()).listPipelineIds());
    const kept = await expectRunIntact(manager, "r2");
    expect(kept.slice(0, acknowledged.length)).toEqual(acknowledged);
    expect(kept.length - acknowledged.length).toBeLessThanOrEqual(1);
    const ids = [...kept];
    for (let i = kept.length; i < stages.length; i++)
      ids.push(await manager.createCheckpoint(stageInput("r2", i)));
    expect(await expectRunIntact(manager, "r2")).toEqual(ids);
    await manager.close();
  });

  it("a run cut off by the kill resumes from what the server kept and completes", async () => {
    const manager = managerOn(server);
    const ran: string[] = [];
    let killed = false;
    const pipeline = new Pipeline({
      name: "redis_fault",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: ["a", "b", "c", "d"].map((name) => ({
        name,
        agent: async () => {
          ran.push(name);
          // The server dies while stage c runs: its checkpoint is the write that fails.
          if (name === "c" && !killed) {
            killed = true;
            await server.kill();
          }
          return { name };
        },
      })),
    });
    const runId = "r3";
    await expect(pipeline.execute({ runId })).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    await server.start();
    const results = await whenAvailable(() => pipeline.execute({ runId }));
    expect(results).toMatchObject({ status: "completed", pipelineId: runId, skippedStages: ["a", "b"] });
    expect(ran).toEqual(["a", "b", "c", "c", "d"]);
    const ids = await expectRunIntact(manager, runId);
    expect((await manager.getCheckpointHistory(runId)).map((m) => m.stageName)).toEqual([
      "pipeline_complete",
      "d",
      "c",
      "b",
      "a",
    ]);
    expect(ids).toHaveLength(5);
    await manager.close();
  });
});

describe.skipIf(missing)("a Redis server without persistence, killed and restarted empty", () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await startRedisServer({ persistent: false });
  });
  afterAll(async () => server?.stop());
  beforeEach(async () => {
    // Each test starts from a server that is up (an earlier failure may have left it down).
    await server.kill();
    await server.start();
  });

  it("a manager that wrote to the run gets CAIRN_HISTORY_LOST naming the run and its lost checkpoint", async () => {
    const manager = managerOn(server);
    const ids = [
      await manager.createCheckpoint(stageInput("r4", 0)),
      await manager.createCheckpoint(stageInput("r4", 1)),
    ];
    await restart(server, manager);
    const error = await manager.createCheckpoint(stageInput("r4", 2)).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_HISTORY_LOST", pipelineId: "r4", expected: ids[1] });
    expect((error as Error).message).toContain(ids[1]);
    // Nothing was written: no new chain starting at sequence 1.
    expect(await (await manager.getStore()).listCheckpoints("r4")).toEqual([]);
    await manager.close();
  });

  it("a run under a lease whose data vanished stops with CAIRN_HISTORY_LOST, writing nothing", async () => {
    const manager = managerOn(server);
    const pipeline = new Pipeline({
      name: "redis_fault",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "a", agent: () => ({ n: 1 }) },
        {
          name: "b",
          agent: async () => {
            // The server loses everything while stage b runs, and is back before b's checkpoint.
            await restart(server, manager);
            return { n: 2 };
          },
        },
        { name: "c", agent: () => ({ n: 3 }) },
      ],
    });
    const error = await pipeline.execute({ runId: "r5" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_HISTORY_LOST", pipelineId: "r5" });
    expect(await (await manager.getStore()).listCheckpoints("r5")).toEqual([]);
    await manager.close();
  });

  it("a lease renewal that finds the run's data gone says so (CAIRN_HISTORY_LOST), not CAIRN_LEASE_LOST", async () => {
    const manager = managerOn(server);
    const events: PipelineEvent[] = [];
    const pipeline = new Pipeline({
      name: "redis_fault",
      checkpointEnabled: true,
      checkpointStore: manager,
      // Renewed every second: the renewal, not the next write, finds the loss (the restart takes less than the TTL).
      leaseTtlMs: 3000,
      onEvent: (event) => events.push(event),
      steps: [
        { name: "a", agent: () => ({ n: 1 }) },
        {
          name: "b",
          agent: async (_inputs, context) => {
            await restart(server, manager);
            // A long stage: it runs until the runner aborts it (bounded, so a miss fails, not hangs).
            await new Promise<void>((resolve) => {
              const bound = setTimeout(resolve, 20_000);
              context.signal.addEventListener("abort", () => {
                clearTimeout(bound);
                resolve();
              });
            });
            return { n: 2 };
          },
        },
      ],
    });
    const error = await pipeline.execute({ runId: "r6" }).catch((e: unknown) => e);
    const first = events.find((e) => e.type === "checkpoint_created");
    const expected = first?.type === "checkpoint_created" ? first.checkpointId : "?";
    expect(error, (error as Error).message).toMatchObject({
      code: "CAIRN_HISTORY_LOST",
      pipelineId: "r6",
      expected,
    });
    expect((error as Error).message).toContain(expected);
    expect(events.filter((e) => e.type === "history_lost")).toMatchObject([{ pipelineId: "r6", expected }]);
    expect(await (await manager.getStore()).listCheckpoints("r6")).toEqual([]);

    // Run again by id: said so (an event and a warning) and refused, never started over at sequence 1.
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    events.length = 0;
    try {
      const again = await pipeline.execute({ runId: "r6" }).catch((e: unknown) => e);
      expect(again).toMatchObject({ code: "CAIRN_HISTORY_LOST", pipelineId: "r6", expected });
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(events.map((e) => e.type)).toEqual(["history_lost"]);
    expect(warnings.map((w) => w.message)).toContainEqual(expect.stringContaining("Run r6 lost its history"));
    expect(await (await manager.getStore()).listCheckpoints("r6")).toEqual([]);
    await manager.close();
  });
});
