import { createServer, type Server, type Socket } from "node:net";
import { makeRecord } from "cairn-pipelines/testing";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { sha256 } from "../../src/core/record.js";
import { parseRedisConfig } from "../../src/stores/redis/config.js";
import { RUNS_INDEX_MARKER, runMember } from "../../src/stores/redis/keys.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { REDIS_URL, redisUp, uniqueName } from "../support/services.js";
import { startProxy } from "../support/tcp-proxy.js";

const server = new URL(REDIS_URL);
const HOST = server.hostname;
const PORT = Number(server.port || 6379);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Every key of run `p` (checkpoints, index, outputs, head) with its PTTL. */
async function runPttls(p: string): Promise<Record<string, number>> {
  const keys = (await keysUnder(prefix)).filter((k) => k.includes(`ckpt:${p}_`) || k.includes(`run:${p}:`));
  return Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await raw.pttl(k)] as const)));
}

describe.skipIf(!redisUp)("RedisStore", () => {
  beforeEach(() => {
    prefix = `${uniqueName("cairn-rs")}:`;
    raw = new Redis(REDIS_URL);
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    for (const key of await keysUnder(prefix)) await raw.del(key);
    await raw.quit();
  });

  it("lays keys out as documented, with JSON and exact text values", async () => {
    const store = await open();
    const body = '"héllo 🌍 \\u0000 \\n"';
    const made = makeRecord("p1", 1, { outputs: { s1: body } });
    await store.putCheckpoint(made.record, made.outputs);
    const lease = await store.acquireLease("p1", "runner-a", 60_000);
    const id = made.record.metadata.checkpoint_id;
    const k = (rest: string) => `${prefix}${rest}`;
    const name = made.record.metadata.pipeline_name;
    expect(await keysUnder(prefix)).toEqual(
      [
        `ckpt:${id}`,
        "feed",
        "feed:id",
        "layout",
        "lease:p1",
        `name:${name}:open`,
        `name:${name}:runs`,
        "run:p1:head",
        "run:p1:index",
        "run:p1:outputs",
        "runs",
      ]
        .map(k)
        .sort(),
    );
    expect(await raw.get(k("layout"))).toBe("2");
    expect(await raw.get(k("feed:id"))).toMatch(/^[0-9a-f]{16}$/);
    expect(await raw.type(k("feed"))).toBe("stream");
    expect(await raw.pttl(k("layout"))).toBe(-1);
    expect(await raw.type(k(`ckpt:${id}`))).toBe("hash");
    const hash = await raw.hgetall(k(`ckpt:${id}`));
    expect(Object.keys(hash).sort()).toEqual(["body", "meta", "run"]);
    expect(JSON.parse(hash.meta as string)).toEqual(made.record.metadata);
    expect(hash.body).toBe(made.record.body);
    expect(hash.run).toBe("p1");
    expect(await raw.zrange(k("run:p1:index"), 0, -1, "WITHSCORES")).toEqual([id, "1"]);
    expect(await raw.hgetall(k("run:p1:outputs"))).toEqual({ [sha256(body)]: body });
    expect(await raw.zrange(k("runs"), 0, -1, "WITHSCORES")).toEqual([RUNS_INDEX_MARKER, "-1", "p1", "0"]);
    const member = runMember(made.record.metadata.timestamp, "p1");
    expect(await raw.hgetall(k("run:p1:head"))).toEqual({
      name,
      created: made.record.metadata.timestamp,
      member,
      finished: "0",
      seq: "1",
      tip: id,
      sum: made.record.metadata.checksum,
      token: "1",
    });
    expect(await raw.zrange(k(`name:${name}:runs`), 0, -1)).toEqual([member]);
    expect(await raw.zrange(k(`name:${name}:open`), 0, -1)).toEqual([member]);
    expect(JSON.parse((await raw.get(k("lease:p1"))) as string)).toEqual({
      owner: "runner-a",
      token: 1,
      expiresAt: lease.acquired ? lease.lease.expiresAt.getTime() : 0,
    });
    // Without ttlSeconds nothing expires but the lease.
    for (const key of await keysUnder(prefix)) {
      if (key !== k("lease:p1")) expect(await raw.pttl(key), key).toBe(-1);
    }
    expect(await raw.pttl(k("lease:p1"))).toBeGreaterThan(50_000);
    expect((await store.getOutputs("p1", [sha256(body)])).get(sha256(body))).toBe(body);
    expect(store.location).toBe(`redis://${HOST}:${PORT}/0 (prefix ${prefix})`);
  });

  it("gives every key of a run the TTL on write, the lease its own", async () => {
    const store = await open({ ttlSeconds: 60 });
    await store.putCheckpoint(makeRecord("p1", 1, { outputs: { a: '"a"' } }).record, [
      { hash: sha256('"a"'), body: '"a"' },
    ]);
    await store.putCheckpoint(makeRecord("p1", 2).record, []);
    await store.acquireLease("p1", "runner-a", 5000);
    const ttls = await runPttls("p1");
    expect(Object.keys(ttls)).toHaveLength(5); // two checkpoints, index, outputs, head
    for (const pttl of Object.values(ttls)) expect(pttl).toBeGreaterThan(55_000);
    expect(await raw.pttl(`${prefix}runs`)).toBe(-1);
    expect(await raw.pttl(`${prefix}lease:p1`)).toBeLessThanOrEqual(5000);
  });

  it("refreshes the TTL of all of a run's keys on every read and write", async () => {
    const store = await open({ ttlSeconds: 5 });
    const first = makeRecord("p1", 1, { outputs: { a: '"a"' } });
    await store.putCheckpoint(first.record, first.outputs);
    // Aged by hand rather than by sleeping: the keys' TTLs drop, then a read must raise them.
    const aged = await runPttls("p1");
    expect(Object.keys(aged)).toHaveLength(4);
    for (const key of Object.keys(aged)) await raw.pexpire(key, 1000);
    await store.getCheckpoint(first.record.metadata.checkpoint_id);
    for (const pttl of Object.values(await runPttls("p1"))) expect(pttl).toBeGreaterThan(3500);

    // The other reads, and a write, refresh every key of the run too (older checkpoints included).
    const second = makeRecord("p1", 2);
    const operations: [string, () => Promise<unknown>][] = [
      ["putCheckpoint", () => store.putCheckpoint(second.record, [])],
      ["getLatestCheckpoint", () => store.getLatestCheckpoint("p1")],
      ["listCheckpoints", () => store.listCheckpoints("p1")],
      ["getOutputs", () => store.getOutputs("p1", [sha256('"a"')])],
      ["listOutputHashes", () => store.listOutputHashes("p1")],
      ["updateCheckpoint", () => store.updateCheckpoint(first.record.metadata.checkpoint_id, {})],
    ];
    for (const [name, operation] of operations) {
      for (const key of Object.keys(await runPttls("p1"))) await raw.pexpire(key, 1000);
      await operation();
      const after = await runPttls("p1");
      expect(Object.keys(after), name).toHaveLength(5); // two checkpoints, index, outputs, head
      for (const pttl of Object.values(after)) expect(pttl, name).toBeGreaterThan(3000);
    }
  });

  it("forgets an expired run entirely: no run id, no listing, nothing corrupt", async () => {
    const store = await open({ ttlSeconds: 1 });
    const made = makeRecord("p1", 1, { outputs: { a: '"a"' } });
    await store.putCheckpoint(made.record, made.outputs);
    await store.putCheckpoint(makeRecord("p1", 2).record, []);
    await sleep(1200);
    expect(await store.listPipelineIds()).toEqual([]);
    expect(await raw.zscore(`${prefix}runs`, "p1")).toBeNull(); // pruned from the run index
    expect(await store.listCheckpoints("p1")).toEqual([]);
    expect(await store.getCheckpoint(made.record.metadata.checkpoint_id)).toBeUndefined();
    expect(await store.getLatestCheckpoint("p1")).toBeUndefined();
    expect(await store.listRuns({ pipelineName: made.record.metadata.pipeline_name })).toEqual({ runs: [] });
    // Only the shared run index (holding nothing but its marker), the layout and the feed's id
    // are left: the feed stream expired with the run.
    expect(await keysUnder(prefix)).toEqual([`${prefix}feed:id`, `${prefix}layout`, `${prefix}runs`]);
    expect(await raw.zrange(`${prefix}runs`, 0, -1)).toEqual([RUNS_INDEX_MARKER]);
  });

  it("prunes index entries whose checkpoint key vanished instead of reporting them", async () => {
    const store = await open();
    const [a, b, c] = [1, 2, 3].map((n) => makeRecord("p1", n).record);
    for (const r of [a, b, c]) if (r) await store.putCheckpoint(r, []);
    const ids = [a, b, c].map((r) => r?.metadata.checkpoint_id as string);
    await raw.del(`${prefix}ckpt:${ids[2]}`); // as if it had expired
    expect((await store.getLatestCheckpoint("p1"))?.metadata.checkpoint_id).toBe(ids[1]);
    await raw.del(`${prefix}ckpt:${ids[0]}`);
    expect(await store.listCheckpoints("p1")).toEqual([{ ok: true, metadata: b?.metadata }]);
    expect(await raw.zrange(`${prefix}run:p1:index`, 0, -1)).toEqual([ids[1]]);
  });

  it("lists foreign or broken checkpoint data as corrupt, refuses to get it, and deletes it with the run", async () => {
    const store = await open();
    const good = makeRecord("p1", 1).record;
    await store.putCheckpoint(good, []);
    const bad = makeRecord("p1", 2).record;
    await store.putCheckpoint(bad, []);
    const badKey = `${prefix}ckpt:${bad.metadata.checkpoint_id}`;
    await raw.hset(badKey, "meta", JSON.stringify({ ...bad.metadata, status: "bogus" }));
    await raw.set(`${prefix}ckpt:p1_str`, "not a hash");
    await raw.zadd(`${prefix}run:p1:index`, 3, "p1_str");

    const listed = await store.listCheckpoints("p1");
    expect(listed.map((e) => e.ok)).toEqual([true, false, false]);
    expect(listed[1]).toEqual({
      ok: false,
      corrupt: {
        pipelineId: "p1",
        checkpointId: bad.metadata.checkpoint_id,
        location: badKey,
        reason: expect.stringContaining('status "bogus" is unknown'),
      },
    });
    expect(listed[2]).toMatchObject({
      corrupt: { location: `${prefix}ckpt:p1_str`, reason: "holds a string, not a hash" },
    });
    await expect(store.getCheckpoint(bad.metadata.checkpoint_id)).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
    });
    await expect(store.getCheckpoint("p1_str")).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await expect(store.getLatestCheckpoint("p1")).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await store.deleteRun("p1");
    const shared = ["runs", "layout", "feed", "feed:id"].map((k) => `${prefix}${k}`);
    expect((await keysUnder(prefix)).filter((k) => !shared.includes(k))).toEqual([]);
  });

  it("stores none of a conflicting put's outputs and keeps the original", async () => {
    const store = await open();
    const first = makeRecord("p1", 1, { outputs: { a: '"a"' } });
    await store.putCheckpoint(first.record, first.outputs);
    const clash = makeRecord("p1", 2, { id: first.record.metadata.checkpoint_id, outputs: { b: '"b"' } });
    await expect(store.putCheckpoint(clash.record, clash.outputs)).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    expect(await store.listOutputHashes("p1")).toEqual([sha256('"a"')]);
    expect(await store.getCheckpoint(first.record.metadata.checkpoint_id)).toEqual(first.record);
  });

  it("never sends KEYS (or SCAN) to the server", async () => {
    const monitor = await raw.monitor();
    const seen: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => seen.push(args));
    cleanups.push(async () => monitor.disconnect());
    const store = await open({ ttlSeconds: 60 });
    const made = makeRecord("p1", 1, { outputs: { a: '"a"' } });
    const id = made.record.metadata.checkpoint_id;
    const attempt = await store.acquireLease("p1", "runner", 10_000);
    await store.putCheckpoint(made.record, made.outputs, attempt.acquired ? attempt.lease : undefined);
    await store.getCheckpoint(id);
    await store.getLatestCheckpoint("p1");
    await store.listCheckpoints("p1");
    await store.listPipelineIds();
    await store.getOutputs("p1", [sha256('"a"')]);
    await store.listOutputHashes("p1");
    await store.updateCheckpoint(id, { status: "failed" });
    await store.deleteOutputs("p1", [sha256('"a"')]);
    await store.deleteCheckpoints("p1", [id]);
    if (attempt.acquired) await store.releaseLease(attempt.lease);
    await store.deleteRun("p1");
    const marker = uniqueName("marker");
    await raw.echo(marker);
    for (let i = 0; i < 50 && !seen.some((a) => a.includes(marker)); i++) await sleep(20);
    const names = seen.map((args) => String(args[0]).toLowerCase());
    // The monitor saw the store's scripts (ioredis sends EVAL the first time on a connection).
    expect(names.filter((n) => n === "eval" || n === "evalsha").length).toBeGreaterThanOrEqual(12);
    expect(names).not.toContain("keys");
    expect(seen.filter((a) => a[0]?.toLowerCase() === "scan" && a.join(" ").includes(prefix))).toEqual([]);
  });

  it("authenticates with an ACL user and reports a wrong password clearly", async () => {
    const user = `cairn_test_${process.pid}`;
    await raw.call("ACL", "SETUSER", user, "on", ">secret", `~${prefix}*`, "+@all");
    cleanups.push(() => raw.call("ACL", "DELUSER", user));
    const store = await open({ url: undefined, host: HOST, port: PORT, username: user, password: "secret" });
    const made = makeRecord("p1", 1, { outputs: { a: '"a"' } });
    await store.putCheckpoint(made.record, made.outputs);
    expect(await store.getCheckpoint(made.record.metadata.checkpoint_id)).toEqual(made.record);
    expect((await store.acquireLease("p1", "runner", 1000)).acquired).toBe(true);
    expect(store.location).not.toContain("secret");
    // The same user in the URL form.
    const viaUrl = await open({ url: `redis://${user}:secret@${HOST}:${PORT}/0` });
    expect(await viaUrl.listPipelineIds()).toEqual(["p1"]);
    const wrong = RedisStore.open({
      host: HOST,
      port: PORT,
      username: user,
      password: "wrong",
      keyPrefix: prefix,
    });
    await expect(wrong).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
      message: expect.stringContaining("WRONGPASS"),
    });
  });

  it("uses a caller's client and leaves it open", async () => {
    const client = new Redis(REDIS_URL);
    cleanups.push(() => client.quit());
    const store = await RedisStore.open({ client, keyPrefix: prefix.slice(0, -1) });
    await store.setup();
    const made = makeRecord("p1", 1);
    await store.putCheckpoint(made.record, []);
    expect(await raw.exists(`${prefix}ckpt:${made.record.metadata.checkpoint_id}`)).toBe(1);
    expect(store.location).toBe(`redis://${HOST}:${PORT}/0 (prefix ${prefix})`);
    await store.close();
    expect(client.status).toBe("ready");
    expect(await client.ping()).toBe("PONG");
    const prefixed = new Redis(REDIS_URL, { keyPrefix: "app:", lazyConnect: true });
    await expect(RedisStore.open({ client: prefixed })).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
      problems: [expect.stringContaining("keyPrefix")],
    });
    await expect(RedisStore.open({ client, url: REDIS_URL })).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
    });
  });

  it("reports every configuration problem at once", async () => {
    const bad = {
      port: 0,
      db: -1,
      keyPrefix: "a b",
      ttlSeconds: 1.5,
      tls: "yes",
      connectTimeoutMs: 0,
      colour: 1,
    };
    await expect(RedisStore.open(bad)).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
      problems: expect.any(Array),
    });
    const problems = await RedisStore.open(bad).catch((e: { problems: string[] }) => e.problems);
    expect(problems).toHaveLength(7);
    const urlProblems = await RedisStore.open({ url: "http://x/abc?keyPrefix=a&family=6", host: "h" }).catch(
      (e: { problems: string[] }) => e.problems,
    );
    expect(urlProblems).toEqual([
      expect.stringContaining("redis:// or rediss://"),
      expect.stringContaining("/<database number>"),
      expect.stringContaining('unknown query parameter "family"'),
      expect.stringContaining("host must not be"),
    ]);
    expect(() => parseRedisConfig({ url: "redis://h?ttlSeconds=soon" })).toThrow(/ttlSeconds/);
    expect(() => parseRedisConfig({ url: "redis://h?ttlSeconds=5", ttlSeconds: 6 })).toThrow(/both/);
    const fromUrl = parseRedisConfig({
      url: "rediss://u:p%40ss@cache.local:7000/3?keyPrefix=app&ttlSeconds=3600",
    });
    expect(fromUrl).toMatchObject({
      prefix: "app:",
      ttlSeconds: 3600,
      location: "rediss://cache.local:7000/3 (prefix app:)",
      connection: { host: "cache.local", port: 7000, db: 3, username: "u", password: "p@ss", tls: {} },
    });
    expect(parseRedisConfig({})).toMatchObject({ prefix: "cairn:", ttlSeconds: 0, connectTimeoutMs: 5000 });
  });

  it("takes keyPrefix and ttlSeconds from the URL and hands ioredis neither", async () => {
    const store = await open({ keyPrefix: undefined, url: `${REDIS_URL}?keyPrefix=${prefix}&ttlSeconds=60` });
    const made = makeRecord("p1", 1);
    await store.putCheckpoint(made.record, []);
    const key = `${prefix}ckpt:${made.record.metadata.checkpoint_id}`;
    expect(await raw.exists(key)).toBe(1); // not prefixed twice
    expect(await raw.pttl(key)).toBeGreaterThan(55_000);
  });

  it("fails fast with CAIRN_STORE_UNAVAILABLE when nothing answers", async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => sockets.add(socket)); // accepts, never replies
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as { port: number }).port;
    // The connect timeout is what ends the attempt: the error says so.
    await expect(RedisStore.open({ host: "127.0.0.1", port, connectTimeoutMs: 300 })).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
      message: expect.stringContaining("no answer within 300 ms"),
    });
    const tls = RedisStore.open({ host: HOST, port: PORT, tls: true, connectTimeoutMs: 1000 });
    await expect(tls).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
  });

  it("rejects writes while the server is away, stores none of them, and recovers", async () => {
    const proxy = await startProxy(HOST, PORT);
    cleanups.push(() => proxy.close());
    const store = await open({ url: undefined, host: "127.0.0.1", port: proxy.port });
    const first = makeRecord("p1", 1);
    await store.putCheckpoint(first.record, []);
    await proxy.down();
    const made = makeRecord("p1", 2, { outputs: { b: '"b"' } });
    const id = made.record.metadata.checkpoint_id;
    await expect(store.putCheckpoint(made.record, made.outputs)).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
    });
    await expect(store.getCheckpoint(id)).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    expect(await raw.exists(`${prefix}ckpt:${id}`)).toBe(0);
    expect(await raw.zscore(`${prefix}run:p1:index`, id)).toBeNull();
    expect(await raw.hexists(`${prefix}run:p1:outputs`, sha256('"b"'))).toBe(0);

    await proxy.up();
    // ioredis reconnects in the background; until it has, puts keep failing fast.
    let stored = false;
    for (let i = 0; i < 100 && !stored; i++) {
      try {
        await store.putCheckpoint(made.record, made.outputs);
        stored = true;
      } catch (error) {
        expect(error).toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
        await sleep(100);
      }
    }
    expect(stored).toBe(true);
    expect(await store.getCheckpoint(id)).toEqual(made.record);
    expect((await store.listCheckpoints("p1")).map((e) => e.ok && e.metadata.sequence)).toEqual([1, 2]);
  });
});
