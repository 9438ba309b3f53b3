/**
 * The Redis store's runs-by-name index and its keys' lifetimes, against a real server: with
 * `ttlSeconds` nothing a run creates outlives it (but the shared `runs` set), fencing tokens
 * still only grow, expired runs leave the name sets, and data an older cairn wrote is indexed.
 */
import { makeRecord } from "cairn-pipelines/testing";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, type Lease, Pipeline } from "../../src/index.js";
import { runMember } from "../../src/stores/redis/keys.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { REDIS_URL, redisUp, uniqueName } from "../support/services.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const minute = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();

let prefix: string;
let raw: Redis;
const cleanups: (() => Promise<unknown>)[] = [];

async function keysUnder(p: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = "0";
  do {
    const [next, keys] = await raw.scan(cursor, "MATCH", `${p}*`, "COUNT", 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== "0");
  return found.sort();
}

async function open(config: Record<string, unknown> = {}): Promise<RedisStore> {
  const store = await RedisStore.open({ url: REDIS_URL, keyPrefix: prefix, ...config });
  cleanups.push(() => store.close());
  await store.setup();
  return store;
}

async function leaseOf(store: RedisStore, run: string, owner: string, ttlMs = 60_000): Promise<Lease> {
  const attempt = await store.acquireLease(run, owner, ttlMs);
  if (!attempt.acquired) throw new Error(`${owner} did not get the lease on ${run}`);
  return attempt.lease;
}

/** Writes a run of `stages` checkpoints named `name`, the first at minute `start`. */
async function writeRun(store: RedisStore, run: string, name: string, start: number, finish = false) {
  const stages = finish ? ["s1", "pipeline_complete"] : ["s1"];
  for (const [i, stage] of stages.entries()) {
    const made = makeRecord(run, i + 1, { pipelineName: name, stage, timestamp: minute(start + i) });
    await store.putCheckpoint(made.record, made.outputs);
  }
}

describe.skipIf(!redisUp)("RedisStore runs and key lifetimes", () => {
  beforeEach(() => {
    prefix = `${uniqueName("cairn-rr")}:`;
    raw = new Redis(REDIS_URL);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const key of await keysUnder(prefix)) await raw.del(key);
    await raw.quit();
  });

  it("leaves every key it creates with a TTL, except the shared run index, layout and feed id", async () => {
    const store = await open({ ttlSeconds: 300 });
    // Leases taken, renewed, handed over and released, with fenced writes in between.
    const first = await leaseOf(store, "leased", "runner-a", 50);
    await writeRun(store, "leased", "leases", 1);
    await store.renewLease(first, 50);
    await sleep(120);
    const second = await leaseOf(store, "leased", "runner-b");
    const fenced = makeRecord("leased", 2, { pipelineName: "leases", timestamp: minute(2) });
    await store.putCheckpoint(fenced.record, fenced.outputs, second);
    await store.releaseLease(second);
    // A lease on a run that never writes, and a run deleted under a live lease.
    await leaseOf(store, "idle", "runner-c");
    await writeRun(store, "deleted", "leases", 3);
    await leaseOf(store, "deleted", "runner-d");
    await store.deleteRun("deleted");

    // Whole Pipeline runs through a manager: one completes, one fails and is resumed.
    const manager = new CheckpointManager({ store });
    cleanups.push(() => manager.close());
    let failing = true;
    const pipeline = new Pipeline({
      name: "leaky",
      checkpointEnabled: true,
      checkpointStore: manager,
      leaseTtlMs: 5000,
      steps: [
        { name: "extract", agent: () => ({ rows: [1, 2, 3] }) },
        {
          name: "load",
          agent: () => {
            if (failing) throw new Error("load broke");
            return { written: 3 };
          },
          inputs: { rows: "$extract.rows" },
        },
      ],
    });
    await pipeline.execute({ runId: "done-run", resume: false }).catch(() => undefined);
    failing = false;
    await pipeline.execute({ runId: "done-run" });
    await pipeline.execute({ runId: "other-run" });
    const history = await manager.getCheckpointHistory("done-run");
    await manager.updateCheckpointStatus(history.at(-1)?.checkpointId as string, "failed", "for the test");
    const other = await manager.getCheckpointHistory("other-run");
    expect(await store.deleteCheckpoints("other-run", [other[0]?.checkpointId as string])).toBe(1);
    // Retention: a whole run (deleteRun), and a run's old checkpoints and outputs only.
    await manager.cleanupOldCheckpoints({ retentionDays: 0, pipelineId: "other-run" });
    const recent = makeRecord("leased", 3, { pipelineName: "leases", timestamp: new Date().toISOString() });
    await store.putCheckpoint(recent.record, recent.outputs);
    const report = await manager.cleanupOldCheckpoints({ retentionDays: 1, pipelineId: "leased" });
    expect(report.deletedCheckpoints).toHaveLength(2);
    expect((await store.listRuns({ pipelineName: "leaky" })).runs.map((r) => r.pipelineId)).toEqual([
      "done-run",
    ]);

    const keys = await keysUnder(prefix);
    expect(keys.length).toBeGreaterThan(10);
    const withoutTtl: string[] = [];
    for (const key of keys) if ((await raw.pttl(key)) <= 0) withoutTtl.push(key);
    // The feed stream has the TTL too (each change refreshes it); its id never expires.
    expect(withoutTtl.sort()).toEqual([`${prefix}feed:id`, `${prefix}layout`, `${prefix}runs`]);
  });

  it("issues strictly growing fencing tokens while the run exists, also past the run's TTL", async () => {
    const store = await open({ ttlSeconds: 1 });
    const tokens: number[] = [];
    const a = await leaseOf(store, "p1", "runner-a");
    tokens.push(a.token);
    await writeRun(store, "p1", "tokens", 1);
    await store.releaseLease(a);
    // A lease that outlives the run's TTL keeps the token with it.
    const b = await leaseOf(store, "p1", "runner-b", 2500);
    tokens.push(b.token);
    await sleep(1300);
    expect((await store.acquireLease("p1", "runner-c", 1000)).acquired).toBe(false);
    expect((await store.renewLease(b, 2500))?.token).toBe(b.token);
    await store.releaseLease(b);
    tokens.push((await leaseOf(store, "p1", "runner-c", 50)).token);
    await sleep(100); // expired, never released
    tokens.push((await leaseOf(store, "p1", "runner-d")).token);
    tokens.push((await leaseOf(store, "p1", "runner-d")).token); // the holder again: same token
    expect(tokens).toEqual([1, 2, 3, 4, 4]);
  });

  it("drops expired runs from the name's pages and sets, and lists a reused run id once", async () => {
    const store = await open({ ttlSeconds: 1 });
    await writeRun(store, "old", "names", 1);
    await writeRun(store, "kept", "names", 2);
    await sleep(600);
    await store.getLatestCheckpoint("kept"); // a read keeps the run, and its name's sets, alive
    await sleep(600);
    expect(await raw.exists(`${prefix}run:old:head`)).toBe(0);
    expect(await raw.zcard(`${prefix}name:names:runs`)).toBe(2); // the dead member is still there
    expect((await store.listRuns({ pipelineName: "names" })).runs.map((r) => r.pipelineId)).toEqual(["kept"]);
    expect(await raw.zcard(`${prefix}name:names:runs`)).toBe(1); // pruned by the read
    // A member left by an earlier life of the id "kept" (another creation time) is not listed.
    await raw.zadd(`${prefix}name:names:runs`, 0, runMember(minute(9), "kept"));
    expect((await store.listRuns({ pipelineName: "names" })).runs.map((r) => r.pipelineId)).toEqual(["kept"]);
    expect(await raw.zcard(`${prefix}name:names:runs`)).toBe(1);
    // The expired id used again is a new run, listed once.
    await writeRun(store, "old", "names", 5);
    expect(
      (await store.listRuns({ pipelineName: "names" })).runs.map((r) => [r.pipelineId, r.createdAt]),
    ).toEqual([
      ["old", minute(5)],
      ["kept", minute(2)],
    ]);
    for (const key of ["name:names:runs", "name:names:open"]) {
      expect(await raw.pttl(`${prefix}${key}`)).toBeGreaterThan(500);
    }
  });

  it("reads only a page of the open runs, however many finished runs the name has", async () => {
    const store = await open();
    for (let i = 0; i < 40; i++) await writeRun(store, `done${i}`, "busy", i, true);
    await writeRun(store, "open1", "busy", 100);
    await writeRun(store, "open0", "busy", 0);
    const monitor = await raw.monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => seen.push(args));
    cleanups.push(async () => monitor.disconnect());
    const page = await store.listRuns({ pipelineName: "busy", unfinished: true, limit: 10 });
    expect(page).toEqual({
      runs: [
        { pipelineId: "open1", pipelineName: "busy", createdAt: minute(100), finished: false },
        { pipelineId: "open0", pipelineName: "busy", createdAt: minute(0), finished: false },
      ],
    });
    const marker = uniqueName("marker");
    await raw.echo(marker);
    for (let i = 0; i < 50 && !seen.some((a) => a.includes(marker)); i++) await sleep(20);
    const heads = seen.filter((a) => a[0]?.toLowerCase() === "hmget" && String(a[1]).endsWith(":head"));
    expect(heads.map((a) => a[1])).toEqual([`${prefix}run:open1:head`, `${prefix}run:open0:head`]);
  });

  it("indexes data an older cairn wrote once, on setup, and folds its lease tokens into the heads", async () => {
    const k = (rest: string) => `${prefix}${rest}`;
    // The layout before the runs-by-name index: no heads, no name sets, tokens in lease-token.
    const legacy = [
      { run: "r1", name: "legacy", stages: ["a", "pipeline_complete"], start: 1 },
      { run: "r2", name: "legacy", stages: ["a", "b"], start: 5 },
      { run: "r3", name: "another", stages: ["a"], start: 3 },
    ];
    for (const { run, name, stages, start } of legacy) {
      for (const [i, stage] of stages.entries()) {
        const { record, outputs } = makeRecord(run, i + 1, {
          pipelineName: name,
          stage,
          timestamp: minute(start + i),
        });
        const id = record.metadata.checkpoint_id;
        await raw.hset(k(`ckpt:${id}`), { meta: JSON.stringify(record.metadata), body: record.body, run });
        await raw.zadd(k(`run:${run}:index`), i + 1, id);
        for (const o of outputs) await raw.hset(k(`run:${run}:outputs`), o.hash, o.body);
      }
      await raw.zadd(k("runs"), 0, run);
    }
    await raw.set(k("lease-token:r2"), "7");

    const store = await open();
    expect((await store.listRuns({ pipelineName: "legacy" })).runs).toEqual([
      { pipelineId: "r2", pipelineName: "legacy", createdAt: minute(5), finished: false },
      { pipelineId: "r1", pipelineName: "legacy", createdAt: minute(1), finished: true },
    ]);
    expect(
      (await store.listRuns({ pipelineName: "legacy", unfinished: true })).runs.map((r) => r.pipelineId),
    ).toEqual(["r2"]);
    expect((await store.listRuns({ pipelineName: "another" })).runs.map((r) => r.pipelineId)).toEqual(["r3"]);
    expect(await raw.exists(k("lease-token:r2"))).toBe(0);
    expect((await leaseOf(store, "r2", "runner")).token).toBe(8);
    // Once is enough: a later setup does not build again (a lost entry stays lost until a rebuild).
    await raw.hdel(k("run:r3:head"), "member");
    await open();
    expect((await store.listRuns({ pipelineName: "another" })).runs).toEqual([]);
    expect(await store.rebuildIndexes?.("r3")).toEqual([
      `rebuilt the runs-by-name entry of r3 (another, created ${minute(3)})`,
    ]);
    expect((await store.listRuns({ pipelineName: "another" })).runs.map((r) => r.pipelineId)).toEqual(["r3"]);
  });

  it("refuses a cursor it did not give", async () => {
    const store = await open();
    await writeRun(store, "p1", "cursors", 1);
    await writeRun(store, "p2", "cursors", 2);
    const first = await store.listRuns({ pipelineName: "cursors", limit: 1 });
    expect(first.nextCursor).toEqual(expect.any(String));
    const rest = await store.listRuns({ pipelineName: "cursors", cursor: first.nextCursor as string });
    expect(rest).toEqual({ runs: [expect.objectContaining({ pipelineId: "p1" })] });
    for (const cursor of ["[x", "(", "1|p1", `${first.nextCursor} `]) {
      await expect(store.listRuns({ pipelineName: "cursors", cursor })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    }
  });
});
