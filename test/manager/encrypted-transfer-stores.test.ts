/**
 * A sealed run export imports into every store kind this machine has (file, sqlite, PostgreSQL,
 * Redis): read back equal, valid, stored sealed under the exported run key. A store without run
 * key records (which encryption needs) is a visible skip naming why.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { storeUrls } from "../support/store-urls.js";

const RING = { keys: { k1: randomBytes(32).toString("base64") }, activeKeyId: "k1" };
const MARKER = "MARKER-stores-91aa";
const STAGES = ["extract", "transform", "load"];
const stores = storeUrls("enc-transfer");

let dir: string;
let source: CheckpointManager;
let ids: string[];
let sealedPath: string;
let plainPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-enc-transfer-"));
  source = new CheckpointManager({ store: "memory:", encryption: RING });
  ids = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await source.createCheckpoint({
        pipelineId: "etl",
        stageName: stage,
        stageIndex: i,
        stateData: { secret: `${MARKER}-${i}` },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(
          STAGES.slice(0, i + 1).map((s) => [s, { rows: [`${MARKER}-${s}`] }]),
        ),
        status: "completed",
      }),
    );
  }
  sealedPath = join(dir, "sealed.json");
  plainPath = join(dir, "plain.json");
  await source.exportPipeline("etl", sealedPath);
  await source.exportPipeline("etl", plainPath, { decrypt: true });
  expect(await readFile(sealedPath, "utf8")).not.toContain(MARKER);
});
afterAll(async () => {
  await source.close();
  await rm(dir, { recursive: true, force: true });
});

describe.each(Object.keys(stores.urls))("into the %s store", (kind) => {
  it("a sealed export imports equal, valid and sealed; a decrypted one replaces it in plaintext, and back sealed", async (ctx) => {
    const url = (stores.urls[kind] as () => string)();
    const target = new CheckpointManager({ store: url, encryption: RING });
    try {
      const store = await target.getStore().catch((error: unknown) => {
        if (String((error as Error).message).includes("cannot hold encrypted runs")) return undefined;
        throw error;
      });
      if (!store) return ctx.skip(`the ${kind} store has no run key records yet (encryption needs them)`);
      await target.importPipeline(sealedPath, { overwrite: true });
      expect(await target.getCheckpointHistory("etl")).toEqual(await source.getCheckpointHistory("etl"));
      for (const id of ids)
        expect(await target.loadCheckpoint(id)).toStrictEqual(await source.loadCheckpoint(id));
      expect((await target.validateRun("etl")).valid).toBe(true);
      expect(await store.getRunKey?.("etl")).toBe(await (await source.getStore()).getRunKey?.("etl"));
      const raw = await store.inner.getCheckpoint(ids[2] as string);
      expect(raw?.body).not.toContain(MARKER);

      // The decrypted export replaces it from a manager without keys: a plaintext run, no key record.
      const plain = new CheckpointManager({ store: url });
      try {
        await plain.importPipeline(plainPath, { overwrite: true });
        expect((await plain.validateRun("etl")).valid).toBe(true);
        expect((await plain.loadCheckpoint(ids[2] as string)).stateData).toEqual({ secret: `${MARKER}-2` });
        expect(await (await plain.getStore()).getRunKey?.("etl")).toBeUndefined();
      } finally {
        await plain.close();
      }
      // And a plaintext export into the encrypting manager: sealed under a new data key, valid.
      await target.importPipeline(plainPath, { overwrite: true });
      expect((await target.validateRun("etl")).valid).toBe(true);
      expect(await store.getRunKey?.("etl")).toBeDefined();
      expect((await store.inner.getCheckpoint(ids[2] as string))?.body).not.toContain(MARKER);
    } finally {
      await target.close();
    }
  });
});
