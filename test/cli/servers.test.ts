import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";
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

const schema = uniqueName("cairn_cli");
const prefix = `${uniqueName("cairn-cli")}:`;
const objects = objectPrefix("cli");
let dir: string;

function cairn(args: string[]): Promise<CliResult> {
  return runCairn(args, { cwd: dir });
}

const cases = [
  { name: "postgres", up: postgresUp, store: () => `${POSTGRES_URL}?schema=${schema}` },
  { name: "redis", up: redisUp, store: () => `${REDIS_URL}?keyPrefix=${prefix}` },
  // A prefix in the file's bucket / container, removed with it after the file (object-servers.ts).
  { name: "s3", up: s3Up, store: () => s3Url(objects) },
  { name: "azure", up: azureUp, store: () => azureUrl(objects) },
];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-servers-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  if (postgresUp) await dropSchemas(schema);
  if (redisUp) await deleteKeyPrefixes(prefix);
});

describe.each(cases)("the cairn command on $name", (c) => {
  it.skipIf(!c.up)(
    "lists, inspects, validates, exports, imports and draws a run",
    async () => {
      const store = c.store();
      const manager = new CheckpointManager({ store });
      const run = `cli-${c.name}`;
      await manager.createCheckpoint({
        pipelineId: run,
        stageName: "extract",
        stageIndex: 0,
        agentOutputs: { extract: [1] },
      });
      const last = await manager.createCheckpoint({
        pipelineId: run,
        stageName: "load",
        stageIndex: 1,
        completedStages: ["extract", "load"],
        agentOutputs: { extract: [1], load: { rows: 1 } },
        status: "completed",
      });
      await manager.close();

      const list = await cairn(["list", "--store", store, "--json"]);
      expect(list.code).toBe(0);
      expect(JSON.stringify(JSON.parse(list.stdout))).toContain(run);
      expect((await cairn(["inspect", "--checkpoint-id", last, "--store", store])).stdout).toContain(
        "Validation: valid",
      );
      expect((await cairn(["validate", "--all", "--store", store])).code).toBe(0);
      expect((await cairn(["inspect", "--checkpoint-id", `${run}_nope`, "--store", store])).code).toBe(3);
      expect(
        (await cairn(["export", "--pipeline-id", run, "--output", `${c.name}.json`, "--store", store])).code,
      ).toBe(0);
      const imported = await cairn(["import", "--input", `${c.name}.json`, "--store", `sqlite:${c.name}.db`]);
      expect(imported.code).toBe(0);
      expect((await cairn(["validate", "--all", "--store", `sqlite:${c.name}.db`])).code).toBe(0);
      expect(
        (await cairn(["visualize", "--pipeline-id", run, "--output", `${c.name}.svg`, "--store", store]))
          .code,
      ).toBe(0);
      expect(await readFile(join(dir, `${c.name}.svg`), "utf8")).toContain("<svg");
      const stats = JSON.parse((await cairn(["stats", "--store", store, "--json"])).stdout);
      expect(stats.totalCheckpoints).toBeGreaterThanOrEqual(2);
      expect((await cairn(["migrate", "--store", store])).code).toBe(0);
    },
    60_000,
  );
});
