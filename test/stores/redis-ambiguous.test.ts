/**
 * A connection lost while the `put` script is on the wire: the Redis store cannot know whether
 * the server ran it, and says so (`maybeCommitted`). The server is real; the lost connection is
 * a proxy that holds the server's reply (the script ran) or drops the request (it did not).
 */
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { record } from "../support/records.js";
import { deleteKeyPrefixes, REDIS_URL, redisUp, uniqueName } from "../support/services.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";

let prefix = "";
let raw: Redis;
let proxy: TcpProxy;
let store: RedisStore;

/** Waits until `check` holds, polling; the test's own timeout bounds it. */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function failure(promise: Promise<unknown>): Promise<StoreUnavailableError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StoreUnavailableError);
  return error as StoreUnavailableError;
}

const sequences = async () =>
  (await raw.zrange(`${prefix}run:p1:index`, 0, -1)).map((id) => Number(id.replace("p1_s", "")));

describe.skipIf(!redisUp)("RedisStore: a write whose reply is lost", () => {
  beforeEach(async () => {
    prefix = `${uniqueName("cairn-ambig")}:`;
    raw = new Redis(REDIS_URL);
    const target = new URL(REDIS_URL);
    proxy = await startProxy(target.hostname, Number(target.port || 6379));
    store = await RedisStore.open({
      host: "127.0.0.1",
      port: proxy.port,
      keyPrefix: prefix,
      connectTimeoutMs: 2000,
    });
    await store.setup();
    await store.putCheckpoint(record("p1", 1), []);
  });

  afterEach(async () => {
    await store.close();
    await proxy.close();
    await deleteKeyPrefixes(prefix);
    await raw.quit();
  });

  it("reports a put the server ran but never answered as maybe committed", async () => {
    const second = record("p1", 2, { parent_checkpoint_id: "p1_s1" });
    proxy.holdReplies(true);
    const put = store.putCheckpoint(second, [], undefined, { expectedTip: "p1_s1" });
    await until(async () => (await raw.exists(`${prefix}ckpt:p1_s2`)) === 1);
    proxy.cut();
    proxy.holdReplies(false);
    const error = await failure(put);
    expect(error.maybeCommitted).toBe(true);
    expect(error.message).toMatch(/may have been applied/);
    expect(await sequences()).toEqual([1, 2]);
  });

  it("reports a put the server never got as maybe committed too: the client cannot tell", async () => {
    proxy.dropRequests(true);
    const sent = proxy.clientBytes;
    const put = store.putCheckpoint(record("p1", 2), [], undefined, { expectedTip: "p1_s1" });
    await until(() => proxy.clientBytes > sent);
    proxy.cut();
    proxy.dropRequests(false);
    expect((await failure(put)).maybeCommitted).toBe(true);
    expect(await sequences()).toEqual([1]);
  });

  it("never reports a read as maybe committed, nor a put that could not be sent", async () => {
    proxy.holdReplies(true);
    const sent = proxy.clientBytes;
    const read = store.getCheckpoint("p1_s1");
    await until(() => proxy.clientBytes > sent);
    await proxy.down();
    proxy.holdReplies(false);
    expect((await failure(read)).maybeCommitted).toBe(false);
    const put = await failure(store.putCheckpoint(record("p1", 2), []));
    expect(put.maybeCommitted).toBe(false);
    expect(put.message).not.toMatch(/may have been applied/);
  });
});
