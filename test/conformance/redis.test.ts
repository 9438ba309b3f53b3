import { describeStoreConformance } from "cairn-pipelines/testing";
import { Redis } from "ioredis";
import { describe } from "vitest";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { REDIS_URL, redisUp, uniqueName } from "../support/services.js";

/** Deletes every key under `prefix` with SCAN (never KEYS, which blocks the server). */
async function deleteByPrefix(client: Redis, prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`;
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== "0");
}

describe.skipIf(!redisUp)("redis", () => {
  describeStoreConformance("redis", async () => {
    const keyPrefix = `${uniqueName("cairn-t")}:`;
    const raw = new Redis(REDIS_URL);
    const index = (pipelineId: string) => `${keyPrefix}run:${pipelineId}:index`;
    return {
      store: await RedisStore.open({ url: REDIS_URL, keyPrefix }),
      // The second store reads its prefix from the URL, the form `redis://...` store URLs take.
      reopen: () => RedisStore.open({ url: `${REDIS_URL}?keyPrefix=${encodeURIComponent(keyPrefix)}` }),
      async corruptOutput(pipelineId, hash, body) {
        await raw.hset(`${keyPrefix}run:${pipelineId}:outputs`, hash, body);
      },
      async addGarbage(pipelineId) {
        const id = `${pipelineId}_garbage`;
        await raw.hset(`${keyPrefix}ckpt:${id}`, { meta: "{not json", body: "{", run: pipelineId });
        await raw.zadd(index(pipelineId), 99, id);
      },
      async dropIndexEntry(pipelineId, checkpointId) {
        await raw.zrem(index(pipelineId), checkpointId);
      },
      async cleanup() {
        await deleteByPrefix(raw, keyPrefix);
        await raw.quit();
      },
    };
  });
});
