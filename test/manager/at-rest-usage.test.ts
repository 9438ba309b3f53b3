/**
 * `getStatistics().atRest`: bytes as stored against uncompressed and the shares of compressed
 * and encrypted records, the same with and without the key wherever the key is not needed to
 * know them.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("at-rest-usage");
const ring = { keys: { k1: randomBytes(32) }, activeKeyId: "k1" };
const STAGES = ["s1", "s2", "s3"];

/** Writes the same three-stage run into a fresh SQLite store with `options`; returns the store URL. */
async function write(tag: string, options: Omit<CheckpointManagerOptions, "store">): Promise<string> {
  const url = `sqlite:${dir()}/${tag}.db`;
  const manager = new CheckpointManager({ store: url, ...options });
  try {
    for (const [i, stage] of STAGES.entries()) {
      await manager.createCheckpoint({
        pipelineId: "run",
        stageName: stage,
        stageIndex: i,
        stateData: { i, note: "state ".repeat(50) },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(
          STAGES.slice(0, i + 1).map((s) => [s, { rows: `${s} `.repeat(2000) }]),
        ),
      });
    }
  } finally {
    await manager.close();
  }
  return url;
}

async function usage(url: string, options: Omit<CheckpointManagerOptions, "store"> = {}) {
  const manager = new CheckpointManager({ store: url, readOnly: true, ...options });
  try {
    return (await manager.getStatistics()).atRest;
  } finally {
    await manager.close();
  }
}

describe("atRest statistics", () => {
  it("plain, compressed, encrypted, both: stored against uncompressed bytes, with and without the key", async () => {
    const plain = await usage(await write("plain", {}));
    // 3 checkpoint bodies and 3 distinct outputs, stored as they are.
    expect(plain).toEqual({
      storedBytes: plain.plainBytes,
      plainBytes: plain.storedBytes,
      records: 6,
      compressedRecords: 0,
      encryptedRecords: 0,
      unsizedRecords: 0,
    });

    // Compressed only: readable without any key, the same content as the plain store.
    const zipped = await usage(await write("zipped", { compression: "gzip" }));
    expect(zipped).toMatchObject({
      plainBytes: plain.plainBytes,
      records: 6,
      encryptedRecords: 0,
      unsizedRecords: 0,
    });
    expect(zipped.compressedRecords).toBeGreaterThanOrEqual(3);
    expect(zipped.storedBytes).toBeLessThan(plain.plainBytes / 3);

    // Encrypted only: the uncompressed size is known from the ciphertext, key or no key.
    const sealedUrl = await write("sealed", { encryption: ring });
    const keyed = await usage(sealedUrl, { encryption: ring });
    const keyless = await usage(sealedUrl);
    expect(keyed).toMatchObject({ records: 6, encryptedRecords: 6, compressedRecords: 0, unsizedRecords: 0 });
    expect(keyless).toEqual(keyed);
    expect(keyed.storedBytes).toBeGreaterThan(keyed.plainBytes);

    // Both: without the key the uncompressed size of each record is unknown, and said so.
    const bothUrl = await write("both", { encryption: ring, compression: "gzip" });
    const bothKeyed = await usage(bothUrl, { encryption: ring });
    expect(bothKeyed).toMatchObject({ records: 6, encryptedRecords: 6, unsizedRecords: 0 });
    expect(bothKeyed.storedBytes).toBeLessThan(bothKeyed.plainBytes / 3);
    const bothKeyless = await usage(bothUrl);
    expect(bothKeyless.storedBytes).toBe(bothKeyed.storedBytes);
    expect(bothKeyless.unsizedRecords).toBe(bothKeyless.compressedRecords);
    expect(bothKeyless.plainBytes).toBeLessThan(bothKeyed.plainBytes);
  });
});
