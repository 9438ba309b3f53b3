/**
 * Salvage on every store, real servers: in the DAG a → (b, c) → d where a, b and c completed and
 * d failed, damage in the store itself (an output's text, a checkpoint record's checksum, edited
 * in place) costs only the stages that damage touches. The agents record their calls.
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzePipeline, CheckpointManager, Pipeline, StageFailedError } from "../../src/index.js";
import { QUARANTINE_PREFIX } from "../../src/manager/check.js";
import { azureUp, azureUrl, objectPrefix, rawObjects, s3Up, s3Url } from "../support/object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";
import { graphPipeline, type NodeSpec, newTrace } from "./dag-support.js";

const schemas: string[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  await dropSchemas(...schemas);
  await deleteKeyPrefixes(...prefixes);
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-salvage-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Edits a store's raw data in place, as damage on disk or a stray UPDATE would. */
interface Damage {
  /** Replaces the stored text of output `hash` of run `runId`. */
  output(runId: string, hash: string, text: string): Promise<void>;
  /** Replaces the stored checksum of checkpoint `id` (its content then fails verification). */
  checksum(runId: string, id: string, checksum: string): Promise<void>;
}

async function pgQuery(sql: string, params: unknown[]): Promise<void> {
  const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
  await pg.connect();
  try {
    await pg.query(sql, params);
  } finally {
    await pg.end();
  }
}

async function withRedis(fn: (redis: import("ioredis").Redis) => Promise<void>): Promise<void> {
  const redis = new (await import("ioredis")).Redis(REDIS_URL);
  try {
    await fn(redis);
  } finally {
    redis.disconnect();
  }
}

const STORES: { name: string; open: () => { url: string; damage: Damage }; skip?: boolean }[] = [
  {
    name: "file",
    open: () => {
      const base = join(dir, "store");
      return {
        url: `file:${base}`,
        damage: {
          output: (runId, hash, text) => writeFile(join(base, runId, "outputs", `${hash}.json`), text),
          async checksum(runId, id, checksum) {
            const name = (await readdir(join(base, runId))).find((n) => n.endsWith(`-${id}.json`));
            if (!name) throw new Error(`no file of checkpoint ${id}`);
            const path = join(base, runId, name);
            const text = await readFile(path, "utf8");
            await writeFile(path, text.replace(/"checksum":"[0-9a-f]{64}"/, `"checksum":"${checksum}"`));
          },
        },
      };
    },
  },
  {
    name: "sqlite",
    open: () => {
      const dbPath = join(dir, "c.db");
      const run = (sql: string, ...params: unknown[]) => {
        const db = new Database(dbPath);
        try {
          db.prepare(sql).run(...params);
        } finally {
          db.close();
        }
      };
      return {
        url: `sqlite:${dbPath}`,
        damage: {
          output: async (runId, hash, text) =>
            run("UPDATE cairn_outputs SET body = ? WHERE pipeline_id = ? AND hash = ?", text, runId, hash),
          checksum: async (_runId, id, checksum) =>
            run("UPDATE cairn_checkpoints SET checksum = ? WHERE checkpoint_id = ?", checksum, id),
        },
      };
    },
  },
  {
    name: "postgres",
    skip: !postgresUp,
    open: () => {
      const schema = uniqueName("cairn_salvage");
      schemas.push(schema);
      return {
        url: `${POSTGRES_URL}?schema=${schema}`,
        damage: {
          output: (runId, hash, text) =>
            pgQuery(`UPDATE "${schema}".cairn_outputs SET body = $1 WHERE pipeline_id = $2 AND hash = $3`, [
              text,
              runId,
              hash,
            ]),
          checksum: (_runId, id, checksum) =>
            pgQuery(`UPDATE "${schema}".cairn_checkpoints SET checksum = $1 WHERE checkpoint_id = $2`, [
              checksum,
              id,
            ]),
        },
      };
    },
  },
  {
    name: "redis",
    skip: !redisUp,
    open: () => {
      const prefix = `${uniqueName("cairn-salvage")}:`;
      prefixes.push(prefix);
      return {
        url: `${REDIS_URL}?keyPrefix=${prefix}`,
        damage: {
          output: (runId, hash, text) =>
            withRedis(async (r) => {
              await r.hset(`${prefix}run:${runId}:outputs`, hash, text);
            }),
          checksum: (_runId, id, checksum) =>
            withRedis(async (r) => {
              const key = `${prefix}ckpt:${id}`;
              const meta = JSON.parse((await r.hget(key, "meta")) as string) as { checksum: string };
              await r.hset(key, "meta", JSON.stringify({ ...meta, checksum }));
            }),
        },
      };
    },
  },
  { name: "s3", skip: !s3Up, open: () => objectStore(s3Url(objectPrefix("salvage"))) },
  { name: "azure", skip: !azureUp, open: () => objectStore(azureUrl(objectPrefix("salvage"))) },
];

/** An object store, damaged through a raw client: an output blob, a checkpoint object's record. */
function objectStore(url: string): { url: string; damage: Damage } {
  const withRaw = async (
    fn: (raw: import("../../src/stores/object/objects.js").ObjectClient) => Promise<void>,
  ) => {
    const raw = await rawObjects(url);
    try {
      await fn(raw);
    } finally {
      await raw.close();
    }
  };
  return {
    url,
    damage: {
      output: (runId, hash, text) =>
        withRaw(async (raw) => {
          await raw.put(`runs/${runId}/out/${hash}`, text);
        }),
      checksum: (runId, id, checksum) =>
        withRaw(async (raw) => {
          const { keys } = await raw.list(`runs/${runId}/cp/${id}.`);
          if (keys.length !== 1)
            throw new Error(`expected one object of checkpoint ${id}: ${keys.join(", ")}`);
          const key = keys[0] as string;
          const text = (await raw.get(key))?.body.toString("utf8") ?? "";
          await raw.put(key, text.replace(/"checksum":"[0-9a-f]{64}"/, `"checksum":"${checksum}"`));
        }),
    },
  };
}

/** a → (b, c) → d; c is slower than b, so the checkpoints are a, b, c, then d's failure. */
const NODES: NodeSpec[] = [
  { name: "a", dependsOn: [] },
  { name: "b", dependsOn: ["a"], delayMs: 5, inputs: { x: "$a.stage" } },
  { name: "c", dependsOn: ["a"], delayMs: 60, inputs: { x: "$a.stage" } },
  { name: "d", dependsOn: ["b", "c"], inputs: { b: "$b", c: "$c" } },
];

/** Runs the graph with d failing; returns the run id and its checkpoints' ids, oldest first. */
async function failedRun(manager: CheckpointManager): Promise<{ runId: string; ids: string[] }> {
  const error = await graphPipeline(manager, NODES, newTrace(), { fail: ["d"] })
    .execute()
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StageFailedError);
  const runId = (error as StageFailedError).pipelineId;
  const history = [...(await manager.getCheckpointHistory(runId))].sort((x, y) => x.sequence - y.sequence);
  expect(history.map((m) => [m.stageName, m.status])).toEqual([
    ["a", "completed"],
    ["b", "completed"],
    ["c", "completed"],
    ["d", "failed"],
  ]);
  return { runId, ids: history.map((m) => m.checkpointId) };
}

/** The address of stage `stage`'s output in checkpoint `id`. */
async function outputHash(manager: CheckpointManager, id: string, stage: string): Promise<string> {
  const record = await (await manager.getStore()).getCheckpoint(id);
  const refs = (JSON.parse(record?.body ?? "{}") as { output_refs?: Record<string, string> }).output_refs;
  const hash = refs?.[stage];
  if (!hash) throw new Error(`checkpoint ${id} references no output of ${stage}`);
  return hash;
}

describe.each(STORES)("salvage on the $name store", (store) => {
  it.skipIf(store.skip === true)(
    "b's stored output damaged: the resume re-runs b and d only, a and c come from the newest checkpoint",
    async () => {
      const { url, damage } = store.open();
      const manager = new CheckpointManager({ store: url });
      try {
        const { runId, ids } = await failedRun(manager);
        const newest = ids[3] as string;
        const hash = await outputHash(manager, newest, "b");
        await damage.output(runId, hash, '{"seen":{"x":"a"},"stage":"B"}');
        // Every checkpoint since b completed references the damaged output.
        const before = await manager.validateRun(runId);
        expect(before.checkpoints.map((c) => c.status)).toEqual(["valid", "invalid", "invalid", "invalid"]);

        const plan = await graphPipeline(manager, NODES, newTrace()).execute({ dryRun: true });
        expect(plan.resumeFrom).toBe(newest);
        // analyze (and so the report) names the checkpoint the resume starts from.
        expect((await analyzePipeline(manager, runId)).resumePoint?.checkpointId).toBe(newest);
        expect(plan.stages.map((s) => [s.stageName, s.action, s.source])).toEqual([
          ["a", "skip", newest],
          ["b", "rerun", undefined],
          ["c", "skip", newest],
          ["d", "run", undefined],
        ]);
        expect(plan.stages[1]?.reason).toMatch(
          /^its stored output failed verification: .*does not match its hash/,
        );

        const trace = newTrace();
        const result = await graphPipeline(manager, NODES, trace).execute();
        expect(result.pipelineId).toBe(runId);
        expect(result.resumedFrom).toBe(newest);
        expect(trace.calls).toEqual(["b", "d"]);
        expect(result.skippedStages).toEqual(["a", "c"]);
        expect(result.rerunStages.map((r) => r.stageName)).toEqual(["b"]);
        expect(result.finalOutputs.b).toEqual({ stage: "b", seen: { x: "a" } });
        // b's output was stored afresh under its address: the whole run verifies again.
        expect((await manager.validateRun(runId)).valid).toBe(true);
      } finally {
        await manager.close();
      }
    },
  );

  it.skipIf(store.skip === true)(
    "the newest records damaged or quarantined: the resume starts from the newest valid one and redoes only what it does not prove",
    async () => {
      const { url, damage } = store.open();
      const manager = new CheckpointManager({ store: url });
      try {
        const { runId, ids } = await failedRun(manager);
        // The failed record quarantined: the checkpoint before it proves a, b and c.
        await manager.updateCheckpointStatus(ids[3] as string, "expired", `${QUARANTINE_PREFIX}: test`);
        const quarantined = await graphPipeline(manager, NODES, newTrace()).execute({ dryRun: true });
        expect(quarantined.resumeFrom).toBe(ids[2]);
        expect(quarantined.stages.map((s) => [s.action, s.source])).toEqual([
          ["skip", ids[2]],
          ["skip", ids[2]],
          ["skip", ids[2]],
          ["run", undefined],
        ]);
        // c's record damaged too: the newest valid record proves a and b only.
        await damage.checksum(runId, ids[2] as string, "0".repeat(64));
        const trace = newTrace();
        const result = await graphPipeline(manager, NODES, trace).execute();
        expect(result.resumedFrom).toBe(ids[1]);
        expect(trace.calls).toEqual(["c", "d"]);
        expect(result.skippedStages).toEqual(["a", "b"]);
      } finally {
        await manager.close();
      }
    },
  );

  it.skipIf(store.skip === true)(
    "b's newest output damaged: an older checkpoint's verified copy of the same work is reused, and the plan names it",
    async () => {
      const { url, damage } = store.open();
      const manager = new CheckpointManager({ store: url });
      // b's output differs on every execution (a counter): two executions, two addresses.
      let executions = 0;
      const calls: string[] = [];
      const make = (bVersion: string) =>
        new Pipeline({
          name: "salvage-copy",
          checkpointEnabled: true,
          checkpointStore: manager,
          steps: [
            {
              name: "a",
              agent: {
                name: "A",
                version: "1",
                process: () => {
                  calls.push("a");
                  return { a: 1 };
                },
              },
            },
            {
              name: "b",
              agent: {
                name: "B",
                version: bVersion,
                process: () => {
                  calls.push("b");
                  return { b: ++executions };
                },
              },
            },
            {
              name: "c",
              agent: {
                name: "C",
                version: "1",
                process: () => {
                  calls.push("c");
                  throw new Error("c broke");
                },
              },
            },
          ],
        });
      const fail = (p: Pipeline, runId?: string) =>
        p.execute(runId ? { runId } : {}).catch((e: unknown) => e as StageFailedError);
      try {
        const runId = (await fail(make("1"))).pipelineId;
        // b under version 2, then back to 1: b's work of the first execution is current again.
        await fail(make("2"), runId);
        await fail(make("1"), runId);
        expect(calls).toEqual(["a", "b", "c", "b", "c", "b", "c"]);
        const history = [...(await manager.getCheckpointHistory(runId))].sort(
          (x, y) => x.sequence - y.sequence,
        );
        const newest = history.at(-1)?.checkpointId as string;
        // The first run's failed checkpoint is the newest holding b's first output (same fingerprint).
        expect(history.map((m) => m.stageName)).toEqual(["a", "b", "c", "b", "c", "b", "c"]);
        const first = history[2]?.checkpointId as string;
        await damage.output(runId, await outputHash(manager, newest, "b"), '{"b":99}');

        const plan = await make("1").execute({ runId, dryRun: true });
        expect(plan.resumeFrom).toBe(newest);
        expect(plan.stages.map((s) => [s.stageName, s.action, s.source])).toEqual([
          ["a", "skip", newest],
          ["b", "skip", first],
          ["c", "run", undefined],
        ]);
        calls.length = 0;
        const result = await make("1")
          .execute({ runId })
          .catch((e: unknown) => e);
        expect(result).toBeInstanceOf(StageFailedError);
        expect(calls).toEqual(["c"]);
        // The failed checkpoint the resume wrote carries the first output of b, verified.
        const latest = await manager.loadLatestCheckpoint(runId);
        expect(latest?.agentOutputs.b).toEqual({ b: 1 });
      } finally {
        await manager.close();
      }
    },
  );
});

describe("salvage with encryption at rest (sqlite)", () => {
  it("a damaged ciphertext of b's output: b and d re-run, a and c reused, and the run verifies again", async () => {
    const { url, damage } = (STORES[1] as (typeof STORES)[number]).open();
    const encryption = { keys: { k1: randomBytes(32).toString("base64") }, activeKeyId: "k1" };
    const manager = new CheckpointManager({ store: url, encryption });
    try {
      const { runId, ids } = await failedRun(manager);
      const newest = ids[3] as string;
      // Read through the manager, which opens the record: the output's (keyed) address.
      const hash = await outputHash(manager, newest, "b");
      await damage.output(runId, hash, '{"$cairn":"rest","v":1,"k":"k1","n":"AAAA","c":"AAAA"}');
      const trace = newTrace();
      const result = await graphPipeline(manager, NODES, trace).execute();
      expect(result.resumedFrom).toBe(newest);
      expect(trace.calls).toEqual(["b", "d"]);
      expect((await manager.validateRun(runId)).valid).toBe(true);
    } finally {
      await manager.close();
    }
  });
});
