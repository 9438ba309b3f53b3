/**
 * The S3 ObjectClient against a real Ceph RGW (scripts/rgw.sh): every method, the conditional
 * semantics the object stores are built on, races, and an unreachable endpoint.
 */
import { createServer } from "node:net";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StoreOperationError, StoreUnavailableError } from "../../src/core/errors.js";
import { createS3Objects, type S3Objects } from "../../src/stores/s3/objects.js";
import { createTestBucket, deleteTestBucket, rawS3, rgwServer } from "../support/rgw.js";
import { startProxy } from "../support/tcp-proxy.js";

const server = await rgwServer();

describe.skipIf(!server)("S3Objects on Ceph RGW", () => {
  // biome-ignore lint/style/noNonNullAssertion: skipped when undefined
  const rgw = server!;
  let bucket: string;
  let objects: S3Objects;

  beforeAll(async () => {
    bucket = await createTestBucket(rgw, "objects");
    objects = await createS3Objects({
      bucket,
      prefix: "/p/q/",
      endpoint: rgw.endpoint,
      region: rgw.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
  });
  afterAll(async () => {
    await objects?.close();
    if (bucket) await deleteTestBucket(rgw, bucket);
  });

  it("puts, gets and deletes under the prefix", async () => {
    expect(await objects.get("a/missing.json")).toBeUndefined();
    const put = await objects.put("a/one.json", '{"x":1}');
    expect(put.ok).toBe(true);
    const got = await objects.get("a/one.json");
    expect(got?.body.toString()).toBe('{"x":1}');
    expect(put.ok && got?.etag).toBe(put.ok && put.etag);
    expect(got?.etag).not.toMatch(/"/);
    // The server's clock, from its Date header (1 s resolution).
    expect(Math.abs((got?.serverTime.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    // The key really is under the prefix.
    const raw = rawS3(rgw);
    const direct = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: "p/q/a/one.json" }));
    expect(await direct.Body?.transformToString()).toBe('{"x":1}');
    raw.destroy();
    expect(await objects.delete("a/one.json")).toBe(true);
    expect(await objects.delete("a/one.json")).toBe(false);
    expect(await objects.get("a/one.json")).toBeUndefined();
  });

  it("create-only: the second create of a key fails and leaves the first body", async () => {
    const first = await objects.put("c/once", "first", { ifNoneMatch: "*" });
    expect(first.ok).toBe(true);
    const second = await objects.put("c/once", "second", { ifNoneMatch: "*" });
    expect(second).toEqual({ ok: false });
    expect((await objects.get("c/once"))?.body.toString()).toBe("first");
  });

  it("compare-and-swap: the right ETag wins, a stale one fails, a missing key fails", async () => {
    const created = await objects.put("cas/tip", "v1", { ifNoneMatch: "*" });
    if (!created.ok) throw new Error("create failed");
    const swapped = await objects.put("cas/tip", "v2", { ifMatch: created.etag });
    expect(swapped.ok).toBe(true);
    if (!swapped.ok) return;
    expect(swapped.etag).not.toBe(created.etag);
    // The first ETag is stale now.
    expect(await objects.put("cas/tip", "v3", { ifMatch: created.etag })).toEqual({ ok: false });
    expect((await objects.get("cas/tip"))?.body.toString()).toBe("v2");
    // The ETag as read also works, quoted or not by the caller.
    const read = await objects.get("cas/tip");
    expect((await objects.put("cas/tip", "v4", { ifMatch: `"${read?.etag}"` })).ok).toBe(true);
    // If-Match on a key that does not exist is a failed condition (RGW: 412, AWS: 404).
    expect(await objects.put("cas/none", "x", { ifMatch: created.etag })).toEqual({ ok: false });
    expect(await objects.get("cas/none")).toBeUndefined();
  });

  it("20 concurrent create-only writes of one key: exactly one succeeds, and its body is stored", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => objects.put("race/one", `writer ${i}`, { ifNoneMatch: "*" })),
    );
    const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
    expect(winners).toHaveLength(1);
    expect((await objects.get("race/one"))?.body.toString()).toBe(`writer ${winners[0]}`);
  });

  it("50 concurrent compare-and-swaps from one ETag (RGW answers some with 500): exactly one succeeds", async () => {
    // maxAttempts 1: RGW's 500s reach the adapter unretried and must be resolved by read-back.
    const unretried = await createS3Objects({
      bucket,
      prefix: "p/q",
      endpoint: rgw.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      maxAttempts: 1,
    });
    try {
      for (const [round, client] of [objects, unretried, objects, unretried].entries()) {
        const created = await client.put(`race/tip${round}`, "base", { ifNoneMatch: "*" });
        if (!created.ok) throw new Error("create failed");
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            client.put(`race/tip${round}`, `cas ${i}`, { ifMatch: created.etag }),
          ),
        );
        const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
        expect(winners).toHaveLength(1);
        const stored = await client.get(`race/tip${round}`);
        expect(stored?.body.toString()).toBe(`cas ${winners[0]}`);
        const won = results[winners[0] ?? -1];
        expect(won?.ok && won.etag).toBe(stored?.etag);
      }
    } finally {
      await unretried.close();
    }
  });

  it("lists one page at a time, with delimiter, startAfter and continuation", async () => {
    await Promise.all(["l/a/1", "l/a/2", "l/b/1", "l/c", "l/d", "m/x"].map((k) => objects.put(k, k)));
    const all = await objects.list("l/");
    expect(all.keys).toEqual(["l/a/1", "l/a/2", "l/b/1", "l/c", "l/d"]);
    expect(all.continuation).toBeUndefined();
    const grouped = await objects.list("l/", { delimiter: "/" });
    expect(grouped.keys).toEqual(["l/c", "l/d"]);
    expect(grouped.prefixes).toEqual(["l/a/", "l/b/"]);
    expect((await objects.list("l/", { startAfter: "l/b/1" })).keys).toEqual(["l/c", "l/d"]);
    const seen: string[] = [];
    let continuation: string | undefined;
    let pages = 0;
    do {
      const page = await objects.list("l/", { maxKeys: 2, continuation });
      seen.push(...page.keys);
      continuation = page.continuation;
      pages++;
    } while (continuation);
    expect(seen).toEqual(all.keys);
    expect(pages).toBe(3);
  });

  it("deleteMany deletes more than one batch of 1,000 keys, missing keys included", async () => {
    const keys = Array.from({ length: 1105 }, (_, i) => `many/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < keys.length; i += 64)
      await Promise.all(keys.slice(i, i + 64).map((k) => objects.put(k, "x")));
    await objects.deleteMany([...keys, "many/never-written"]);
    expect((await objects.list("many/")).keys).toEqual([]);
    await objects.deleteMany([]);
  });

  it("a 500 to a conditional put is resolved by reading back", async () => {
    // RGW answers 500 to racing conditional puts; simulate one by failing the request after
    // the server applied it (the adapter must then read the key back and find its bytes).
    const client = (objects as unknown as { client: import("@aws-sdk/client-s3").S3Client }).client;
    let failNext = true;
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        if (failNext) {
          failNext = false;
          const error = Object.assign(new Error("InternalError"), {
            name: "InternalError",
            $metadata: { httpStatusCode: 500, attempts: 1 },
          });
          throw error;
        }
        return result;
      },
      { step: "deserialize", name: "testFail500", priority: "low" },
    );
    try {
      const result = await objects.put("unknown/one", "mine", { ifNoneMatch: "*" });
      expect(result.ok).toBe(true);
      failNext = true;
      // Applied? No: the condition failed on the server, the read-back finds other bytes.
      expect(await objects.put("unknown/one", "other", { ifNoneMatch: "*" })).toEqual({ ok: false });
    } finally {
      client.middlewareStack.remove("testFail500");
    }
  });

  it("deleteMany throws when the server reports keys it did not delete", async () => {
    await objects.put("refused/a", "x");
    const client = (objects as unknown as { client: import("@aws-sdk/client-s3").S3Client }).client;
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        // The server deleted it; pretend it refused, as S3 does per key (AccessDenied...).
        if ((args.input as { Delete?: unknown }).Delete !== undefined)
          (result.output as { Errors?: unknown[] }).Errors = [
            { Key: "p/q/refused/a", Code: "AccessDenied", Message: "Access Denied" },
          ];
        return result;
      },
      { step: "initialize", name: "testDeleteErrors" },
    );
    try {
      const error = await objects.deleteMany(["refused/a"]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreOperationError);
      expect(`${(error as Error).message} ${String((error as Error).cause)}`).toContain("AccessDenied");
    } finally {
      client.middlewareStack.remove("testDeleteErrors");
    }
  });

  it("a bucket that does not exist is a StoreOperationError, not an empty store", async () => {
    const other = await createS3Objects({
      bucket: "cairn-no-such-bucket-here",
      endpoint: rgw.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      maxAttempts: 1,
    });
    await expect(other.put("k", "v")).rejects.toBeInstanceOf(StoreOperationError);
    // Not "no such object": a missing bucket must not read as an empty store.
    await expect(other.get("k")).rejects.toBeInstanceOf(StoreOperationError);
    await expect(other.list("")).rejects.toBeInstanceOf(StoreOperationError);
    await other.close();
  });

  it("a server outage is StoreUnavailableError, a lost reply maybe committed, and it recovers", async () => {
    const endpoint = new URL(rgw.endpoint);
    const proxy = await startProxy(endpoint.hostname, Number(endpoint.port));
    const through = await createS3Objects({
      bucket,
      prefix: "p/q",
      endpoint: `http://127.0.0.1:${proxy.port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
      requestTimeoutMs: 2000,
      maxAttempts: 1,
    });
    try {
      expect((await through.put("outage/a", "1", { ifNoneMatch: "*" })).ok).toBe(true);
      await proxy.down();
      const refused = await through.get("outage/a").catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StoreUnavailableError);
      const write = await through.put("outage/b", "1", { ifNoneMatch: "*" }).catch((e: unknown) => e);
      expect(write).toBeInstanceOf(StoreUnavailableError);
      await proxy.up();
      // The request reaches the server, its reply is lost: the write may have happened.
      proxy.holdReplies(true);
      const lost = await through.put("outage/c", "1", { ifNoneMatch: "*" }).catch((e: unknown) => e);
      expect(lost).toBeInstanceOf(StoreUnavailableError);
      expect((lost as StoreUnavailableError).maybeCommitted).toBe(true);
      proxy.holdReplies(false);
      proxy.cut();
      expect((await through.get("outage/a"))?.body.toString()).toBe("1");
      expect((await through.get("outage/c"))?.body.toString()).toBe("1");
    } finally {
      await through.close();
      await proxy.close();
    }
  });

  it("works with a caller's own client (which it does not close)", async () => {
    const raw = rawS3(rgw);
    const mine = await createS3Objects({ bucket, client: raw });
    expect((await mine.put("own/k", "v", { ifNoneMatch: "*" })).ok).toBe(true);
    await mine.close();
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: "own/still-open", Body: "y" }));
    raw.destroy();
  });
});

describe("S3Objects with an unreachable endpoint", () => {
  it("throws StoreUnavailableError within the request timeout", async () => {
    // A port that accepts connections and never answers: the deadline must cut it short.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as { port: number }).port;
    const objects = await createS3Objects({
      bucket: "b",
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: "a", secretAccessKey: "b" },
      requestTimeoutMs: 1500,
    });
    try {
      const error = await objects.put("k", "v", { ifNoneMatch: "*" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as StoreUnavailableError).maybeCommitted).toBe(true);
      const refused = await createS3Objects({
        bucket: "b",
        endpoint: "http://127.0.0.1:1",
        forcePathStyle: true,
        credentials: { accessKeyId: "a", secretAccessKey: "b" },
        requestTimeoutMs: 1500,
      });
      const e2 = await refused.get("k").catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(StoreUnavailableError);
      await refused.close();
    } finally {
      await objects.close();
      silent.close();
    }
  });
});
