/**
 * A checkpoint write whose reply is lost (the connection drops after the request was sent): the
 * manager settles it by reading the checkpoint id back, so neither a retry nor the next write
 * stores a second copy. PostgreSQL is real; the lost reply is a proxy in front of it that holds
 * the server's answer (the write is applied) or drops the request (it is not), then cuts.
 */
import { Redis } from "ioredis";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { CheckpointManager, type CreateCheckpointInput, Pipeline } from "../../src/index.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Waits until `check` holds, polling; the test's own timeout bounds it. */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

interface Setup {
  proxy: TcpProxy;
  manager: CheckpointManager;
  schema: string;
  config: Record<string, unknown>;
  /** The run's rows as the server holds them: sequence, id, parent. */
  rows(pipelineId: string): Promise<{ sequence: number; id: string; parent: string | null }[]>;
}

async function setup(): Promise<Setup> {
  const target = new URL(POSTGRES_URL);
  const proxy = await startProxy(target.hostname, Number(target.port || 5432));
  const schema = uniqueName("cairn_ambig");
  const url = new URL(POSTGRES_URL);
  url.port = String(proxy.port);
  const config = { connectionString: url.toString(), schema, connectionTimeoutMs: 2000 };
  const manager = new CheckpointManager({ strategy: "postgres", config });
  cleanups.push(
    () => dropSchemas(schema),
    () => proxy.close(),
    () => manager.close(),
  );
  const rows = async (pipelineId: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT sequence, checkpoint_id, parent_checkpoint_id FROM "${schema}".cairn_checkpoints
         WHERE pipeline_id = $1 ORDER BY sequence`,
        [pipelineId],
      );
      return rows.map((r) => ({
        sequence: r.sequence as number,
        id: r.checkpoint_id as string,
        parent: r.parent_checkpoint_id as string | null,
      }));
    } finally {
      await client.end();
    }
  };
  return { proxy, manager, schema, config, rows };
}

const input = (pipelineId: string, stage: number): CreateCheckpointInput => ({
  pipelineId,
  stageName: `s${stage}`,
  stageIndex: stage - 1,
  stateData: { at: stage },
  completedStages: Array.from({ length: stage }, (_, i) => `s${i + 1}`),
  pendingStages: [],
  agentOutputs: Object.fromEntries(Array.from({ length: stage }, (_, i) => [`s${i + 1}`, { n: i + 1 }])),
});

/** Asserts a linear chain: sequences 1..n, each the child of the one before. */
function expectLinear(rows: { sequence: number; id: string; parent: string | null }[], n: number) {
  expect(rows.map((r) => r.sequence)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  rows.forEach((r, i) => {
    expect(r.parent).toBe(i === 0 ? null : rows[i - 1]?.id);
  });
}

describe.skipIf(!postgresUp)("CheckpointManager: a checkpoint write whose reply is lost", () => {
  it("finds a write that was applied and returns it as written", async () => {
    const { proxy, manager, rows } = await setup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.holdReplies(true);
    const write = manager.createCheckpoint(input("run1", 2));
    await until(async () => (await rows("run1")).length === 2);
    proxy.cut();
    proxy.holdReplies(false);
    const id = await write;

    const stored = await rows("run1");
    expect(stored[1]?.id).toBe(id);
    await manager.createCheckpoint(input("run1", 3));
    expectLinear(await rows("run1"), 3);
  });

  it("re-sends a write the server never got, and stores it once", async () => {
    const { proxy, manager, rows } = await setup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.dropRequests(true);
    const sent = proxy.clientBytes;
    const write = manager.createCheckpoint(input("run1", 2));
    await until(() => proxy.clientBytes > sent);
    proxy.cut();
    proxy.dropRequests(false);
    const id = await write;

    const stored = await rows("run1");
    expect(stored[1]?.id).toBe(id);
    expectLinear(stored, 2);
  });

  it("while the store stays away, reports the write as maybe committed; a retry then finds it", async () => {
    const { proxy, manager, rows } = await setup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.holdReplies(true);
    const write = manager.createCheckpoint(input("run1", 2)).catch((e: unknown) => e);
    await until(async () => (await rows("run1")).length === 2);
    await proxy.down();
    proxy.holdReplies(false);
    const error = await write;
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(error).toMatchObject({ maybeCommitted: true, code: "CAIRN_STORE_UNAVAILABLE" });
    expect((error as Error).message).toMatch(/may have been applied/);

    await proxy.up();
    // The caller retries the very checkpoint: it was stored, so its id comes back, no copy.
    const id = await manager.createCheckpoint(input("run1", 2));
    expect((await rows("run1"))[1]?.id).toBe(id);
    await manager.createCheckpoint(input("run1", 3));
    expectLinear(await rows("run1"), 3);
  });

  it("while the store stays away, a write it never got is written once by the retry", async () => {
    const { proxy, manager, rows } = await setup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.dropRequests(true);
    const sent = proxy.clientBytes;
    const write = manager.createCheckpoint(input("run1", 2)).catch((e: unknown) => e);
    await until(() => proxy.clientBytes > sent);
    await proxy.down();
    proxy.dropRequests(false);
    expect(await write).toMatchObject({ maybeCommitted: true });

    await proxy.up();
    const id = await manager.createCheckpoint(input("run1", 2));
    const stored = await rows("run1");
    expect(stored[1]?.id).toBe(id);
    expectLinear(stored, 2);
  });

  it("chains the next checkpoint after an unconfirmed one that was stored", async () => {
    const { proxy, manager, rows } = await setup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.holdReplies(true);
    const write = manager.createCheckpoint(input("run1", 2)).catch((e: unknown) => e);
    await until(async () => (await rows("run1")).length === 2);
    await proxy.down();
    proxy.holdReplies(false);
    expect(await write).toMatchObject({ maybeCommitted: true });

    await proxy.up();
    // Not a retry: the next stage, written after the one the store holds.
    const third = await manager.createCheckpoint(input("run1", 3));
    const stored = await rows("run1");
    expect(stored[2]?.id).toBe(third);
    expectLinear(stored, 3);
  });
});

describe.skipIf(!postgresUp)("Pipeline: a stage checkpoint whose reply is lost", () => {
  function pipelineOf(config: Record<string, unknown>, ran: string[], onS2: () => void): Pipeline {
    const pipeline = new Pipeline({
      name: "ambig",
      checkpointEnabled: true,
      checkpointStrategy: "postgres",
      checkpointConfig: config,
      // No renewal during the test: the only traffic held is the stage's checkpoint.
      leaseTtlMs: 120_000,
      steps: [1, 2, 3].map((n) => ({
        name: `s${n}`,
        agent: () => {
          ran.push(`s${n}`);
          if (n === 2) onS2();
          return { n };
        },
      })),
    });
    cleanups.push(() => pipeline.close());
    return pipeline;
  }

  it("carries on when the stage's checkpoint was stored and the store is back at once", async () => {
    const { proxy, config, rows } = await setup();
    const ran: string[] = [];
    // The reply to the checkpoint written after s2 is lost.
    const pipeline = pipelineOf(config, ran, () => proxy.holdReplies(true));
    const execution = pipeline.execute();
    await until(() => pipeline.pipelineId !== undefined);
    const runId = pipeline.pipelineId as string;
    await until(async () => (await rows(runId)).length === 2);
    proxy.cut();
    proxy.holdReplies(false);
    const results = await execution;
    expect(results).toMatchObject({ pipelineId: runId, status: "completed", checkpointsCreated: 4 });
    expect(ran).toEqual(["s1", "s2", "s3"]);
    expectLinear(await rows(runId), 4);
  });

  it("fails the run while the store is away, and the resume skips the stage that was stored", async () => {
    const { proxy, config, rows } = await setup();
    const ran: string[] = [];
    let armed = true;
    // The reply to the checkpoint written after s2 is lost.
    const pipeline = pipelineOf(config, ran, () => {
      if (armed) proxy.holdReplies(true);
    });
    const execution = pipeline.execute().catch((e: unknown) => e);
    await until(() => pipeline.pipelineId !== undefined);
    const runId = pipeline.pipelineId as string;
    await until(async () => (await rows(runId)).length === 2);
    armed = false;
    await proxy.down();
    proxy.holdReplies(false);
    expect(await execution).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", maybeCommitted: true });

    await proxy.up();
    const results = await pipeline.execute();
    expect(results).toMatchObject({ pipelineId: runId, status: "completed", skippedStages: ["s1", "s2"] });
    expect(ran).toEqual(["s1", "s2", "s3"]);
    const stored = await rows(runId);
    expectLinear(stored, 4);
  });
});

describe.skipIf(!redisUp)("CheckpointManager on Redis: a checkpoint write whose reply is lost", () => {
  async function redisSetup() {
    const target = new URL(REDIS_URL);
    const proxy = await startProxy(target.hostname, Number(target.port || 6379));
    const keyPrefix = `${uniqueName("cairn-ambig")}:`;
    const config = { host: "127.0.0.1", port: proxy.port, keyPrefix, connectTimeoutMs: 2000 };
    const manager = new CheckpointManager({ strategy: "redis", config });
    const raw = new Redis(REDIS_URL);
    cleanups.push(
      () => deleteKeyPrefixes(keyPrefix),
      () => raw.quit(),
      () => proxy.close(),
      () => manager.close(),
    );
    const ids = () => raw.zrange(`${keyPrefix}run:run1:index`, 0, -1);
    return { proxy, manager, ids };
  }

  it("finds a write the server ran, and a retry after an outage stores no second copy", async () => {
    const { proxy, manager, ids } = await redisSetup();
    await manager.createCheckpoint(input("run1", 1));

    proxy.holdReplies(true);
    const second = manager.createCheckpoint(input("run1", 2));
    await until(async () => (await ids()).length === 2);
    proxy.cut();
    proxy.holdReplies(false);
    expect((await ids())[1]).toBe(await second);

    proxy.holdReplies(true);
    const third = manager.createCheckpoint(input("run1", 3)).catch((e: unknown) => e);
    await until(async () => (await ids()).length === 3);
    await proxy.down();
    proxy.holdReplies(false);
    expect(await third).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE", maybeCommitted: true });
    await proxy.up();
    // ioredis reconnects in the background; until it has, the retry fails fast, and is retried.
    let id: string | undefined;
    while (id === undefined) {
      id = await manager.createCheckpoint(input("run1", 3)).catch((error: unknown) => {
        expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
        return undefined;
      });
    }
    const stored = await ids();
    expect(stored).toHaveLength(3);
    expect(stored[2]).toBe(id);
    const history = await manager.getCheckpointHistory("run1");
    expect(history.map((m) => m.parentCheckpointId)).toEqual([stored[1], stored[0], undefined]);
  });
});
