/** Export and import of whole runs: verified both ways, ids, order and chain kept, conflicts found first. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { exportRun, importRun } from "../../src/manager/run-transfer.js";
import { checkpointFile } from "../support/file-store.js";

let dir: string;
let basePath: string;
let source: CheckpointManager;
let target: CheckpointManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-run-transfer-"));
  basePath = join(dir, "files");
  source = new CheckpointManager({ strategy: "file", config: { basePath } });
  target = new CheckpointManager({ store: `sqlite:${join(dir, "cairn.db")}` });
});
afterEach(async () => {
  await Promise.all([source.close(), target.close()]);
  await rm(dir, { recursive: true, force: true });
});

const STAGES = ["extract", "transform", "load"];

/** A run with one checkpoint per stage; returns the ids, oldest first. */
async function makeRun(manager: CheckpointManager, pipelineId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { total: (i + 1) * 100, when: new Date("2024-01-01T00:00:00Z") },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, { rows: [s, i] }])),
        status: "completed",
      }),
    );
  }
  return ids;
}

const fileOfRun = (pipelineId: string, checkpointId: string) =>
  checkpointFile(basePath, pipelineId, checkpointId);

describe("exportPipeline / importPipeline", () => {
  it("moves a run with its ids, sequences, data and hash chain", async () => {
    const ids = await makeRun(source, "etl");
    const path = join(dir, "run.json");
    const progress: [number, number][] = [];
    const report = await source.exportPipeline("etl", path, { onProgress: (d, t) => progress.push([d, t]) });
    expect(report).toMatchObject({ pipelineId: "etl", checkpointIds: ids, skipped: [] });
    expect(progress.at(-1)).toEqual([3, 3]);

    const file = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown> & {
      checkpoints: unknown[];
    };
    expect(file).toMatchObject({ export_version: "1.2", kind: "run", pipeline_id: "etl" });
    expect(file.checkpoints).toHaveLength(3);

    const phases = new Set<string>();
    const imported = await target.importPipeline(path, { onProgress: (_d, _t, phase) => phases.add(phase) });
    expect(imported).toEqual({ kind: "run", pipelineId: "etl", checkpointIds: ids, replaced: 0 });
    expect(phases).toEqual(new Set(["checking", "writing"]));

    const before = await source.getCheckpointHistory("etl");
    const after = await target.getCheckpointHistory("etl");
    expect(after).toEqual(before);
    for (const id of ids) {
      expect(await target.loadCheckpoint(id)).toStrictEqual(await source.loadCheckpoint(id));
      expect(await target.validateCheckpoint(id)).toMatchObject({ valid: true });
    }
    expect((await target.resumePipeline("etl"))?.checkpointId).toBe(ids[2]);
  });

  it("finds a conflict before writing anything, and replaces the whole run with overwrite", async () => {
    const ids = await makeRun(source, "etl");
    const runPath = join(dir, "run.json");
    const onePath = join(dir, "one.json");
    await source.exportPipeline("etl", runPath);
    await source.exportCheckpoint(ids[0] as string, onePath);
    expect(await target.importPipeline(onePath)).toMatchObject({
      kind: "checkpoint",
      checkpointIds: [ids[0]],
    });

    await expect(target.importPipeline(runPath)).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
      message: expect.stringContaining("overwrite"),
    });
    expect((await target.getCheckpointHistory("etl")).map((m) => m.checkpointId)).toEqual([ids[0]]);

    const replaced = await target.importPipeline(runPath, { overwrite: true });
    expect(replaced.replaced).toBe(1);
    expect((await target.getCheckpointHistory("etl")).map((m) => m.checkpointId)).toEqual([...ids].reverse());
  });

  it("refuses a tampered, reordered or foreign file and writes nothing", async () => {
    await makeRun(source, "etl");
    const path = join(dir, "run.json");
    await source.exportPipeline("etl", path);
    const text = await readFile(path, "utf8");

    await writeFile(join(dir, "edited.json"), text.replace('"total":200', '"total":201'));
    await expect(target.importPipeline(join(dir, "edited.json"))).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
    });

    const file = JSON.parse(text) as { checkpoints: unknown[]; kind: string };
    await writeFile(
      join(dir, "reordered.json"),
      JSON.stringify({ ...file, checkpoints: [...file.checkpoints].reverse() }),
    );
    await expect(target.importPipeline(join(dir, "reordered.json"))).rejects.toThrow(/out of order/);

    await writeFile(join(dir, "other.json"), JSON.stringify({ ...file, pipeline_id: "other" }));
    await expect(target.importPipeline(join(dir, "other.json"))).rejects.toThrow(/belongs to run etl/);

    await writeFile(join(dir, "kind.json"), JSON.stringify({ ...file, kind: "bundle" }));
    await expect(target.importPipeline(join(dir, "kind.json"))).rejects.toThrow(/unknown kind/);

    await expect(target.importCheckpoint(path)).rejects.toThrow(/export of a whole run/);
    expect(await target.listPipelines()).toEqual([]);
  });

  it("refuses to export a corrupt run unless skipCorrupt, which leaves the corrupt checkpoint out", async () => {
    const ids = await makeRun(source, "etl");
    const tampered = await fileOfRun("etl", ids[1] as string);
    await writeFile(tampered, (await readFile(tampered, "utf8")).replace('"total":200', '"total":202'));
    const path = join(dir, "run.json");

    await expect(source.exportPipeline("etl", path)).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
      message: expect.stringContaining(ids[1] as string),
    });
    await expect(readFile(path)).rejects.toMatchObject({ code: "ENOENT" });

    const report = await source.exportPipeline("etl", path, { skipCorrupt: true });
    expect(report.checkpointIds).toEqual([ids[0], ids[2]]);
    expect(report.skipped.map((s) => s.checkpointId)).toEqual([ids[1]]);
    const file = JSON.parse(await readFile(path, "utf8")) as { skipped_corrupt: { checkpointId: string }[] };
    expect(file.skipped_corrupt.map((s) => s.checkpointId)).toEqual([ids[1]]);

    // The gap left by the corrupt checkpoint is no break, as for a parent removed by retention.
    expect((await target.importPipeline(path)).checkpointIds).toEqual([ids[0], ids[2]]);
    expect((await target.validateCheckpoint(ids[2] as string)).valid).toBe(true);
  });

  it("is available as plain functions over a store, and reports an unknown run", async () => {
    await makeRun(source, "etl");
    const path = join(dir, "run.json");
    const store = await source.getStore();
    await expect(exportRun(store, "nope", path, new Date())).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await exportRun(store, "etl", path, new Date("2024-02-02T00:00:00Z"));
    expect(JSON.parse(await readFile(path, "utf8"))).toMatchObject({
      exported_at: "2024-02-02T00:00:00.000Z",
    });
    const memory = new CheckpointManager({ strategy: "memory" });
    expect((await importRun(await memory.getStore(), path)).checkpointIds).toHaveLength(3);
    await memory.close();
  });
});

describe("cleanup progress", () => {
  it("reports each run examined", async () => {
    await makeRun(source, "a");
    await makeRun(source, "b");
    const seen: [number, number][] = [];
    await source.cleanupOldCheckpoints({
      retentionDays: 1,
      dryRun: true,
      onProgress: (d, t) => seen.push([d, t]),
    });
    expect(seen).toEqual([
      [0, 2],
      [1, 2],
      [2, 2],
    ]);
  });
});
