import { makeRecord } from "cairn-pipelines/testing";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TipMovedError } from "../../src/core/errors.js";
import { parseRedisConfig } from "../../src/stores/redis/config.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import type { StoreChange } from "../../src/stores/types.js";
import { deleteKeyPrefixes, REDIS_URL, redisUp, uniqueName } from "../support/services.js";
import { startProxy } from "../support/tcp-proxy.js";

const server = new URL(REDIS_URL);
const HOST = server.hostname;
const PORT = Number(server.port || 6379);

let prefix: string;
let raw: Redis;
const prefixes: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

async function open(config: Record<string, unknown> = {}, keyPrefix = prefix): Promise<RedisStore> {
  const store = await RedisStore.open({ url: REDIS_URL, keyPrefix, ...config });
  cleanups.push(() => store.close());
  await store.setup();
  return store;
}

/** The changes without cursors and times, which tests cannot know in advance. */
const shape = (changes: StoreChange[]) => changes.map(({ cursor: _c, at: _a, ...rest }) => rest);

async function put(store: RedisStore, run: string, sequence: number, name = "feedy") {
  const made = makeRecord(run, sequence, { pipelineName: name });
  await store.putCheckpoint(made.record, made.outputs);
  return made.record.metadata.checkpoint_id;
}

describe.skipIf(!redisUp)("RedisStore change feed", () => {
  beforeEach(() => {
    prefix = `${uniqueName("cairn-feed")}:`;
    prefixes.push(prefix);
    raw = new Redis(REDIS_URL);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await deleteKeyPrefixes(...prefixes.splice(0));
    await raw.quit();
  });

  it("records each mutation, in order, with cursors that continue the feed", async () => {
    const store = await open();
    const start = await store.feedCursor();
    expect(start).toMatch(/^[0-9a-f]{16}:0-0$/);
    expect(await store.readChanges(start, 100)).toEqual([]);

    const a1 = await put(store, "ra", 1);
    const a2 = await put(store, "ra", 2);
    await store.updateCheckpoint(a2, { status: "failed", error_message: "boom" });
    expect(await store.deleteCheckpoints("ra", [a1, "ra_missing"])).toBe(1);
    const b1 = await put(store, "rb", 1, "other");
    await store.deleteRun("rb");
    await store.deleteRun("never-stored"); // nothing stored: no change
    const imported = [
      makeRecord("rc", 1, { pipelineName: "imp" }),
      makeRecord("rc", 2, { pipelineName: "imp" }),
    ];
    await store.importRun("rc", imported, { replace: false });
    const again = [makeRecord("rc", 1, { pipelineName: "imp" })];
    await store.importRun("rc", again, { replace: true });

    const changes = await store.readChanges(start, 100);
    const ids = imported.map((c) => c.record.metadata.checkpoint_id);
    expect(shape(changes)).toEqual([
      { type: "checkpoint", pipelineId: "ra", pipelineName: "feedy", checkpointId: a1, sequence: 1 },
      { type: "checkpoint", pipelineId: "ra", pipelineName: "feedy", checkpointId: a2, sequence: 2 },
      { type: "status", pipelineId: "ra", pipelineName: "feedy", checkpointId: a2, sequence: 2 },
      { type: "deleted", pipelineId: "ra", pipelineName: "feedy", checkpointId: a1, sequence: 1 },
      { type: "checkpoint", pipelineId: "rb", pipelineName: "other", checkpointId: b1, sequence: 1 },
      { type: "deleted", pipelineId: "rb", pipelineName: "other" },
      { type: "checkpoint", pipelineId: "rc", pipelineName: "imp", checkpointId: ids[0], sequence: 1 },
      { type: "checkpoint", pipelineId: "rc", pipelineName: "imp", checkpointId: ids[1], sequence: 2 },
      { type: "deleted", pipelineId: "rc", pipelineName: "imp" },
      {
        type: "checkpoint",
        pipelineId: "rc",
        pipelineName: "imp",
        checkpointId: again[0]?.record.metadata.checkpoint_id,
        sequence: 1,
      },
    ]);
    for (const change of changes) expect(Date.parse(change.at)).toBeGreaterThan(Date.now() - 60_000);
    // Every cursor continues after its own change, and the newest is the feed's cursor.
    for (let i = 0; i < changes.length; i++) {
      const after = await store.readChanges(changes[i]?.cursor, 100);
      expect(after.map((c) => c.cursor)).toEqual(changes.slice(i + 1).map((c) => c.cursor));
    }
    expect(await store.feedCursor()).toBe(changes.at(-1)?.cursor);
    expect((await store.readChanges(start, 3)).map((c) => c.cursor)).toEqual(
      changes.slice(0, 3).map((c) => c.cursor),
    );
    // Without a cursor: from the oldest retained.
    expect((await store.readChanges(undefined, 100)).map((c) => c.cursor)).toEqual(
      changes.map((c) => c.cursor),
    );
  });

  it("adds no change for a write that fails its checks", async () => {
    const store = await open();
    const first = await put(store, "r1", 1);
    const cursor = await store.feedCursor();
    const tipMoved = makeRecord("r1", 2);
    await expect(
      store.putCheckpoint(tipMoved.record, [], undefined, { expectedTip: "r1_not_the_tip" }),
    ).rejects.toBeInstanceOf(TipMovedError);
    const clash = makeRecord("r1", 3, { id: first });
    await expect(store.putCheckpoint(clash.record, [])).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
    const lease = await store.acquireLease("r1", "owner-a", 60_000);
    expect(lease.acquired).toBe(true);
    const fenced = makeRecord("r1", 4);
    const stale = { pipelineId: "r1", owner: "owner-b", token: 99, expiresAt: new Date() };
    await expect(store.putCheckpoint(fenced.record, [], stale)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
    await expect(store.updateCheckpoint("r1_missing", { status: "failed" })).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await expect(store.importRun("r1", [makeRecord("r1", 5)], { replace: false })).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    expect(await store.deleteCheckpoints("r1", ["r1_missing"])).toBe(0);
    // Outputs, leases and meta values are not changes either.
    await store.releaseLease(lease.acquired ? lease.lease : stale);
    await store.putMeta("replica.x", "{}");
    expect(await store.readChanges(cursor, 100)).toEqual([]);
    expect(await store.feedCursor()).toBe(cursor);
  });

  it("refuses a cursor of another feed, and cursors it never wrote", async () => {
    const store = await open();
    const otherPrefix = `${uniqueName("cairn-feed-other")}:`;
    prefixes.push(otherPrefix);
    const other = await open({}, otherPrefix);
    await put(other, "r1", 1);
    const foreign = await other.feedCursor();
    await put(store, "r1", 1);
    await expect(store.readChanges(foreign, 10)).rejects.toMatchObject({
      code: "CAIRN_FEED_TRIMMED",
      cursor: foreign,
    });
    // The wait answers at once, so the caller's read meets the error.
    expect(await store.waitForChanges(foreign, 60_000)).toBe(true);
    // The prefix's data recreated: a new feed id, so old cursors are refused.
    const before = await store.feedCursor();
    await deleteKeyPrefixes(prefix);
    const recreated = await open();
    await expect(recreated.readChanges(before, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
    const ownId = (await store.feedCursor()).split(":")[0];
    for (const bad of ["", "nope", `${ownId}:12`, "0123456789abcdef:1-x", "zz:0-0", `${ownId}:1-2-3`]) {
      await expect(store.readChanges(bad, 10)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
    }
    // Another kind of store's cursor (sqlite, memory: a number after the feed id) is another feed.
    await expect(store.readChanges("0123456789abcdef:12", 10)).rejects.toMatchObject({
      code: "CAIRN_FEED_TRIMMED",
    });
    expect(await store.waitForChanges("0123456789abcdef:12", 60_000)).toBe(true);
    await expect(store.waitForChanges("nope", 10)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
  });

  it("reports changes trimmed by the retention as FeedTrimmedError, never a silent gap", async () => {
    const store = await open({ feedRetention: 100 });
    const start = await store.feedCursor();
    const runs = Array.from({ length: 400 }, (_, i) => `t${i}`);
    let middle = "";
    for (const run of runs) {
      await put(store, run, 1);
      if (run === "t10") middle = await store.feedCursor();
    }
    expect(await raw.xlen(`${prefix}feed`)).toBeLessThan(400);
    for (const trimmed of [start, middle]) {
      await expect(store.readChanges(trimmed, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
    }
    // From the oldest retained, the feed still reads to its end without a gap in what it kept.
    const kept = await store.readChanges(undefined, 10_000);
    expect(kept.length).toBeGreaterThanOrEqual(100);
    expect(kept.map((c) => c.pipelineId)).toEqual(runs.slice(runs.length - kept.length));
    // The oldest kept change's cursor reads on from there.
    const rest = await store.readChanges(kept[0]?.cursor, 10_000);
    expect(rest.map((c) => c.cursor)).toEqual(kept.slice(1).map((c) => c.cursor));
  });

  it("puts the stream under the TTL rule; a lost stream refuses every older cursor", async () => {
    const store = await open({ ttlSeconds: 60 });
    const start = await store.feedCursor();
    expect(await raw.pttl(`${prefix}feed`)).toBe(-1); // the empty stream setup() made
    await put(store, "r1", 1);
    expect(await raw.pttl(`${prefix}feed`)).toBeGreaterThan(55_000);
    const cursor = await store.feedCursor();
    await raw.del(`${prefix}feed`); // as if it had expired
    await expect(store.readChanges(cursor, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
    await put(store, "r2", 1);
    for (const old of [start, cursor]) {
      await expect(store.readChanges(old, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
    }
    const now = await store.readChanges(undefined, 10);
    expect(shape(now).map((c) => c.pipelineId)).toEqual(["r2"]);
    // The restarted stream is another feed: its cursors carry a new feed id.
    expect((await store.feedCursor()).split(":")[0]).not.toBe(cursor.split(":")[0]);
  });

  it("refuses a cursor into a stream that expired under ttlSeconds", async () => {
    const store = await open({ ttlSeconds: 1 });
    await put(store, "r1", 1);
    const cursor = await store.feedCursor();
    await new Promise((r) => setTimeout(r, 1200));
    expect(await raw.exists(`${prefix}feed`)).toBe(0);
    await expect(store.readChanges(cursor, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
    await put(store, "r2", 1);
    await expect(store.readChanges(cursor, 10)).rejects.toMatchObject({ code: "CAIRN_FEED_TRIMMED" });
  });

  it("wakes a waiter when another instance writes; false on timeout and on abort", async () => {
    const watcher = await open();
    const writer = await open();
    const cursor = await watcher.feedCursor();
    expect(await watcher.waitForChanges(cursor, 50)).toBe(false);
    expect(await watcher.waitForChanges(cursor, 0)).toBe(false);

    const waiting = watcher.waitForChanges(cursor, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    await put(writer, "r1", 1);
    expect(await waiting).toBe(true);
    // A change already there answers at once.
    expect(await watcher.waitForChanges(cursor, 60_000)).toBe(true);
    expect(await watcher.waitForChanges(cursor, 0)).toBe(true);
    const newest = await watcher.feedCursor();

    const controller = new AbortController();
    const aborted = watcher.waitForChanges(newest, 60_000, controller.signal);
    setTimeout(() => controller.abort(), 100);
    expect(await aborted).toBe(false);
    // Two waits at once each get a connection; both wake.
    const both = [watcher.waitForChanges(newest, 60_000), watcher.waitForChanges(newest, 60_000)];
    await new Promise((r) => setTimeout(r, 100));
    await put(writer, "r1", 2);
    expect(await Promise.all(both)).toEqual([true, true]);
    const already = new AbortController();
    already.abort();
    expect(await watcher.waitForChanges(newest, 60_000, already.signal)).toBe(false);
  });

  it("closes its blocking connections with the store, answering a pending wait false", async () => {
    // A caller's client with a name: its duplicate has it too, so the server lists both.
    const name = uniqueName("cairn-feed-conn").replace(/[^A-Za-z0-9_-]/g, "_");
    const client = new Redis(REDIS_URL, { connectionName: name });
    cleanups.push(() => client.quit());
    const store = await RedisStore.open({ client: client as never, keyPrefix: prefix });
    await store.setup();
    const cursor = await store.feedCursor();
    expect(await named(name)).toBe(1);
    const waiting = store.waitForChanges(cursor, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await named(name)).toBe(2);
    await store.close();
    expect(await waiting).toBe(false);
    for (let i = 0; i < 100 && (await named(name)) > 1; i++) await new Promise((r) => setTimeout(r, 20));
    // The caller's client stays open; the blocking connection is gone.
    expect(await named(name)).toBe(1);
  });

  it("reports a wait cut off by the server going away as unavailable, not as no change", async () => {
    const proxy = await startProxy(HOST, PORT);
    cleanups.push(() => proxy.close());
    const store = await open({ url: undefined, host: HOST, port: proxy.port });
    const cursor = await store.feedCursor();
    const waiting = store.waitForChanges(cursor, 60_000);
    await new Promise((r) => setTimeout(r, 100));
    await proxy.down();
    await expect(waiting).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
  });

  it("keeps meta values outside every run, last write wins", async () => {
    const store = await open();
    expect(await store.getMeta("replica.abc")).toBeUndefined();
    await store.putMeta("replica.abc", '{"cursor":"x"}');
    await store.putMeta("replica.abc", '{"cursor":"y"}');
    await put(store, "r1", 1);
    await store.deleteRun("r1");
    const again = await open();
    expect(await again.getMeta("replica.abc")).toBe('{"cursor":"y"}');
    expect(await again.listPipelineIds()).toEqual([]);
    const big = "v".repeat(65_536);
    await again.putMeta("k-2", big);
    expect(await store.getMeta("k-2")).toBe(big);
  });

  it("gives an older cairn's keys (layout 1) a feed when a writer sets up, and moves the layout to 2", async () => {
    await raw.set(`${prefix}layout`, "1");
    const reader = await RedisStore.open({ url: REDIS_URL, keyPrefix: prefix }, { readOnly: true });
    cleanups.push(() => reader.close());
    await reader.setup();
    await expect(reader.feedCursor()).rejects.toMatchObject({ code: "CAIRN_STORE_UNSUPPORTED" });
    expect(await raw.get(`${prefix}layout`)).toBe("1");
    expect(await raw.exists(`${prefix}feed`, `${prefix}feed:id`)).toBe(0);

    const writer = await open();
    expect(await raw.get(`${prefix}layout`)).toBe("2");
    expect(await raw.type(`${prefix}feed`)).toBe("stream");
    const start = await writer.feedCursor();
    expect(start).toBe(`${await raw.get(`${prefix}feed:id`)}:0-0`);
    // A second setup keeps the feed (and its id).
    await (await open()).setup();
    expect(await writer.feedCursor()).toBe(start);
    await put(writer, "r1", 1);
    expect(shape(await reader.readChanges(start, 10)).map((c) => c.type)).toEqual(["checkpoint"]);
  });

  it("validates feedRetention in the config and the URL", () => {
    expect(parseRedisConfig({ url: REDIS_URL }).feedRetention).toBe(100_000);
    expect(parseRedisConfig({ url: `${REDIS_URL}?feedRetention=250` }).feedRetention).toBe(250);
    expect(parseRedisConfig({ host: "h", feedRetention: 100 }).feedRetention).toBe(100);
    for (const bad of [99, 0, 1.5, "200"]) {
      expect(() => parseRedisConfig({ host: "h", feedRetention: bad })).toThrow(
        /feedRetention must be an integer/,
      );
    }
    expect(() => parseRedisConfig({ url: `${REDIS_URL}?feedRetention=abc` })).toThrow(
      expect.objectContaining({ code: "CAIRN_INVALID_CONFIG" }),
    );
    expect(() => parseRedisConfig({ url: `${REDIS_URL}?feedRetention=200`, feedRetention: 300 })).toThrow(
      /given both/,
    );
  });
});

/** How many connections the server lists with this name. */
async function named(name: string): Promise<number> {
  const list = (await raw.call("CLIENT", "LIST")) as string;
  return list.split("\n").filter((line) => line.includes(` name=${name} `)).length;
}
