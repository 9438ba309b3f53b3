/**
 * What an operator does to a file store by hand, and what cairn makes of it.
 */
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";

let root: string;
let basePath: string;
let manager: CheckpointManager;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-tamper-"));
  basePath = join(root, "store");
  manager = new CheckpointManager({ strategy: "file", config: { basePath } });
});
afterEach(async () => {
  await manager.close();
  await rm(root, { recursive: true, force: true });
});

async function threeStages(pipelineId: string, clock?: () => Date) {
  const m = clock ? new CheckpointManager({ strategy: "file", config: { basePath }, clock }) : manager;
  const ids: string[] = [];
  const stages = ["extract", "transform", "load"];
  for (const [i, stage] of stages.entries()) {
    ids.push(
      await m.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { total: (i + 1) * 100 },
        completedStages: stages.slice(0, i + 1),
        pendingStages: stages.slice(i + 1),
        agentOutputs: Object.fromEntries(stages.slice(0, i + 1).map((s) => [s, { rows: [s, i] }])),
        status: "completed",
      }),
    );
  }
  return ids;
}

const fileOfRun = (pipelineId: string, checkpointId: string) =>
  checkpointFile(basePath, pipelineId, checkpointId);

describe("a file store edited by hand", () => {
  it("refuses a hand-edited checkpoint file and resumes from the previous valid one", async () => {
    const [, transform, load] = await threeStages("etl");
    const path = await fileOfRun("etl", load as string);
    const text = await readFile(path, "utf8");
    expect(text).toContain('"total":300');
    await writeFile(path, text.replace('"total":300', '"total":301'));
    await expect(manager.loadCheckpoint(load as string)).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
      checkpointId: load,
    });
    const ctx = await manager.resumePipeline("etl");
    expect(ctx).toMatchObject({ checkpointId: transform, resumeFromStage: "load", resumeFromIndex: 2 });
    expect(ctx?.stateData).toEqual({ total: 200 });
  });

  it("refuses an edited output file, and a status edit is not tampering", async () => {
    const [, , load] = await threeStages("etl");
    const path = await fileOfRun("etl", load as string);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace('"status":"completed"', '"status":"failed"'));
    expect((await manager.loadCheckpoint(load as string)).metadata.status).toBe("failed");
    const outputs = join(basePath, "etl", "outputs");
    const [first] = (await readdir(outputs)).filter((n) => n.endsWith(".json"));
    await writeFile(join(outputs, first as string), '{"rows":["forged"]}');
    expect((await manager.validateCheckpoint(load as string)).problems.map((p) => p.kind)).toContain(
      "output_hash_mismatch",
    );
  });

  it("shows a garbage file in a run's folder as corrupt", async () => {
    await threeStages("etl");
    await writeFile(join(basePath, "etl", "notes.json"), "not a checkpoint");
    await writeFile(join(basePath, "etl", "0000000004-etl_x.json"), '{"metadata":');
    const listing = await (await manager.getStore()).listCheckpoints("etl");
    const corrupt = listing.filter((e) => !e.ok);
    expect(corrupt.map((e) => !e.ok && e.corrupt.location).sort()).toEqual(
      [join(basePath, "etl", "0000000004-etl_x.json"), join(basePath, "etl", "notes.json")].sort(),
    );
    expect((await manager.getStatistics()).corruptCheckpoints).toBe(2);
    expect((await manager.listPipelines())[0]).toMatchObject({ corruptCount: 2, checkpointCount: 3 });
  });

  it("refuses names that would escape the store's folder and writes nothing outside it", async () => {
    for (const bad of ["../x", "../../etc", "a/b", "..", "x\\..\\y"]) {
      await expect(
        manager.createCheckpoint({ pipelineId: bad, stageName: "s", stageIndex: 0 }),
      ).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
      await expect(
        manager.createCheckpoint({ pipelineId: "ok", stageName: bad, stageIndex: 0 }),
      ).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
    }
    expect(await readdir(root)).toEqual([]);
  });

  it("cleans up by the checkpoints' own timestamps, not by file modification times", async () => {
    await threeStages("old", () => new Date("2020-01-01T00:00:00Z"));
    await threeStages("new");
    // Make the old run's files look fresh and the new run's look ancient.
    for (const run of ["old", "new"]) {
      const when = run === "old" ? new Date() : new Date("2000-01-01T00:00:00Z");
      for (const name of await readdir(join(basePath, run))) {
        if (name.endsWith(".json")) await utimes(join(basePath, run, name), when, when);
      }
    }
    expect(await manager.autoCleanup({ retentionDays: 7 })).toBe(3);
    expect((await manager.listPipelines()).map((r) => r.pipelineId)).toEqual(["new"]);
    // Besides the run folders: the store's dot-folders (leases, runs index).
    expect((await readdir(basePath)).filter((n) => !n.startsWith("."))).toEqual(["new"]);
  });
});
