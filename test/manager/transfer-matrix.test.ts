/** Export from each store and import into each other store: every pair keeps id, data and chain. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CheckpointManager, type PipelineCheckpoint } from "../../src/index.js";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "../support/object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";

let dir: string;
const schema = uniqueName("cairn_matrix");
const prefix = `${uniqueName("cairn-matrix")}:`;
const objects = objectPrefix("matrix");
const stores: Record<string, () => CheckpointManager> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-matrix-"));
  stores.memory = () => new CheckpointManager({ store: "memory:matrix" });
  stores.file = () => new CheckpointManager({ store: `file:${join(dir, "files")}` });
  stores.sqlite = () => new CheckpointManager({ store: `sqlite:${join(dir, "c.db")}` });
  if (postgresUp)
    stores.postgres = () => new CheckpointManager({ store: `${POSTGRES_URL}?schema=${schema}` });
  if (redisUp) stores.redis = () => new CheckpointManager({ store: `${REDIS_URL}?keyPrefix=${prefix}` });
  // The bucket and container go after the file (object-servers.ts).
  if (s3Up) stores.s3 = () => new CheckpointManager({ store: s3Url(objects) });
  if (azureUp) stores.azure = () => new CheckpointManager({ store: azureUrl(objects) });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (postgresUp) await dropSchemas(schema);
  if (redisUp) await deleteKeyPrefixes(prefix);
});

it("moves a checkpoint between every pair of stores", async () => {
  const names = Object.keys(stores);
  expect(names.length).toBeGreaterThanOrEqual(3);
  let pairs = 0;
  for (const from of names) {
    for (const to of names) {
      if (from === to) continue;
      const source = (stores[from] as () => CheckpointManager)();
      const target = (stores[to] as () => CheckpointManager)();
      const run = `m-${from}-${to}`;
      const first = await source.createCheckpoint({
        pipelineId: run,
        stageName: "extract",
        stageIndex: 0,
        agentOutputs: { extract: { rows: [1, 2] } },
      });
      const id = await source.createCheckpoint({
        pipelineId: run,
        stageName: "load",
        stageIndex: 1,
        stateData: { at: new Date("2024-02-29T12:00:00.000Z"), big: 2n ** 64n },
        completedStages: ["extract", "load"],
        agentOutputs: { extract: { rows: [1, 2] }, load: new Map([["written", 2]]) },
        status: "completed",
      });
      const original: PipelineCheckpoint = await source.loadCheckpoint(id);
      const file = join(dir, `${run}.json`);
      await source.exportCheckpoint(id, file);
      expect(await target.importCheckpoint(file)).toBe(id);
      const copy = await target.loadCheckpoint(id);
      expect(copy).toStrictEqual(original);
      expect(copy.metadata.parentCheckpointId).toBe(first);
      expect((await target.validateCheckpoint(id)).valid).toBe(true);
      await expect(target.importCheckpoint(file)).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
      await Promise.all([source.close(), target.close()]);
      pairs++;
    }
  }
  expect(pairs).toBe(names.length * (names.length - 1));
}, 60_000);
