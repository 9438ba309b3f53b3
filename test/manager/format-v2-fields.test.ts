/** The fields format 2 adds, through `createCheckpoint`: stored, loaded, resumed, and checked. */
import { describe, expect, it } from "vitest";
import { parseBody } from "../../src/core/formats.js";
import { CheckpointManager, FORMAT_VERSION, InvalidArgumentError } from "../../src/index.js";
import { rawStore } from "../../src/manager/sealed-transfer.js";

const base = {
  pipelineId: "v2run",
  stageName: "load",
  stageIndex: 1,
  completedStages: ["extract", "load"],
  agentOutputs: { extract: { rows: 3 }, load: { total: 6 } },
};

describe("format 2 fields", () => {
  it("stores the pipeline version, output versions and migrations, and gives them back", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const id = await manager.createCheckpoint({
      ...base,
      pipelineVersion: "2.0.0",
      outputVersions: { load: 2 },
      outputMigrations: { load: { from: 1, to: 2, by: "2.0.0" } },
      status: "completed",
    });
    const record = await rawStore(await manager.getStore()).getCheckpoint(id);
    expect(record?.metadata.format_version).toBe(FORMAT_VERSION);
    expect(parseBody(record?.metadata as never, record?.body as string)).toMatchObject({
      pipeline_version: "2.0.0",
      output_versions: { extract: 1, load: 2 },
      output_migrations: { load: { from: 1, to: 2, by: "2.0.0" } },
    });
    const loaded = await manager.loadCheckpoint(id);
    expect(loaded.pipelineVersion).toBe("2.0.0");
    expect(loaded.outputVersions).toEqual({ extract: 1, load: 2 });
    expect(loaded.outputMigrations).toEqual({ load: { from: 1, to: 2, by: "2.0.0" } });
    const resumed = await manager.resumePipeline("v2run");
    expect(resumed).toMatchObject({
      pipelineVersion: "2.0.0",
      outputVersions: { extract: 1, load: 2 },
      outputMigrations: { load: { from: 1, to: 2, by: "2.0.0" } },
    });
  });

  it("defaults to no pipeline version, version 1 outputs and no migrations; a migration without a pipeline version has by undefined", async () => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const plain = await manager.loadCheckpoint(await manager.createCheckpoint(base));
    expect(plain.pipelineVersion).toBeUndefined();
    expect(plain.outputVersions).toEqual({ extract: 1, load: 1 });
    expect(plain.outputMigrations).toEqual({});
    const migrated = await manager.loadCheckpoint(
      await manager.createCheckpoint({
        ...base,
        outputVersions: { extract: 3 },
        outputMigrations: { extract: { from: 1, to: 3, by: undefined } },
      }),
    );
    expect(migrated.outputMigrations).toEqual({ extract: { from: 1, to: 3, by: undefined } });
  });

  it.each([
    ["a pipeline version that is empty", { pipelineVersion: "" }, /pipelineVersion/],
    ["a pipeline version with a newline", { pipelineVersion: "1\n2" }, /pipelineVersion/],
    ["a pipeline version too long", { pipelineVersion: "v".repeat(129) }, /pipelineVersion/],
    ["a pipeline version not a string", { pipelineVersion: 2 }, /pipelineVersion/],
    ["output versions not an object", { outputVersions: [1] }, /outputVersions must be an object/],
    ["an output version of 0", { outputVersions: { load: 0 } }, /outputVersions.load must be an integer/],
    ["an output version of 1.5", { outputVersions: { load: 1.5 } }, /outputVersions.load must be an integer/],
    [
      "an output version of a stage without output",
      { outputVersions: { report: 2 } },
      /no agentOutputs entry/,
    ],
    [
      "a migration of a stage without output",
      { outputMigrations: { report: { from: 1, to: 2, by: "x" } } },
      /no agentOutputs entry/,
    ],
    [
      "a migration that does not go up",
      { outputVersions: { load: 2 }, outputMigrations: { load: { from: 2, to: 2, by: "x" } } },
      /from < to/,
    ],
    [
      "a migration to another version than the output's",
      { outputVersions: { load: 2 }, outputMigrations: { load: { from: 1, to: 3, by: "x" } } },
      /is not the stage's output version/,
    ],
    [
      "a migration whose by is not a string",
      { outputVersions: { load: 2 }, outputMigrations: { load: { from: 1, to: 2, by: 2 } } },
      /by must be/,
    ],
  ])("refuses %s with InvalidArgumentError and writes nothing", async (_label, change, message) => {
    const manager = new CheckpointManager({ strategy: "memory" });
    const error = await manager.createCheckpoint({ ...base, ...(change as object) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(message);
    expect(await manager.getCheckpointHistory("v2run")).toEqual([]);
  });
});
