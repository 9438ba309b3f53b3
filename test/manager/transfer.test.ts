/** Export and import across strategies: file → sqlite → memory keeps the id and the data. */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-transfer-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("moves a checkpoint file → sqlite → memory with its id, data, provenance and chain", async () => {
  const file = new CheckpointManager({ strategy: "file", config: { basePath: join(dir, "files") } });
  const sqlite = new CheckpointManager({ store: `sqlite:${join(dir, "cairn.db")}` });
  const memory = new CheckpointManager({ strategy: "memory" });
  const state = {
    inputs: { since: new Date("2024-01-01T00:00:00Z"), ids: new Set([1, 2]) },
    big: 10n ** 30n,
  };
  await file.createCheckpoint({
    pipelineId: "co2",
    stageName: "extract",
    stageIndex: 0,
    agentOutputs: { extract: [1] },
  });
  const id = await file.createCheckpoint({
    pipelineId: "co2",
    stageName: "transform",
    stageIndex: 1,
    stateData: state,
    completedStages: ["extract", "transform"],
    pendingStages: ["load"],
    agentOutputs: { extract: [1], transform: new Map([["kg", 12.5]]) },
    provenanceHashes: { extract: "p1", transform: "p2" },
    status: "completed",
  });
  const original = await file.loadCheckpoint(id);

  await file.exportCheckpoint(id, join(dir, "a.json"));
  expect(await sqlite.importCheckpoint(join(dir, "a.json"))).toBe(id);
  await sqlite.exportCheckpoint(id, join(dir, "b.json"));
  expect(await memory.importCheckpoint(join(dir, "b.json"))).toBe(id);

  for (const m of [sqlite, memory]) {
    const copy = await m.loadCheckpoint(id);
    expect(copy).toStrictEqual(original);
    expect((await m.validateCheckpoint(id)).valid).toBe(true);
    expect((await m.resumePipeline("co2"))?.resumeFromStage).toBe("load");
  }
  // The two exports differ only in their export time.
  const a = JSON.parse(await readFile(join(dir, "a.json"), "utf8"));
  const b = JSON.parse(await readFile(join(dir, "b.json"), "utf8"));
  expect({ ...a, exported_at: 0 }).toEqual({ ...b, exported_at: 0 });
  await Promise.all([file.close(), sqlite.close(), memory.close()]);
});

it("refuses files that are not cairn exports", async () => {
  const memory = new CheckpointManager({ strategy: "memory" });
  const { writeFile } = await import("node:fs/promises");
  await writeFile(join(dir, "x.json"), '{"hello":1}');
  await expect(memory.importCheckpoint(join(dir, "x.json"))).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
  await writeFile(join(dir, "y.json"), "{");
  await expect(memory.importCheckpoint(join(dir, "y.json"))).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
  await expect(memory.importCheckpoint(join(dir, "missing.json"))).rejects.toMatchObject({
    code: "CAIRN_NOT_FOUND",
  });
});
