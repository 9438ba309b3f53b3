/**
 * Files that disappear between the file store listing a run and reading it (a concurrent
 * cleanup, an operator's `rm`). The store's reads are hooked so the file is deleted right after
 * the folder was listed and right before the file is read. Listing, validation and resume must
 * not crash: a checkpoint deleted this way is simply gone, a checkpoint whose output went is
 * invalid (`output_missing`), and resume falls back to the newest checkpoint still whole.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { checkpointFile } from "../support/file-store.js";

/** Paths to delete the moment the store is about to read them (each once). */
const doomed = vi.hoisted(() => new Set<string>());

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const readFileSync = ((path: Parameters<typeof fs.readFileSync>[0], ...rest: unknown[]) => {
    const target = String(path);
    if (doomed.delete(target)) fs.unlinkSync(target);
    return (fs.readFileSync as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  return { ...fs, default: { ...fs, readFileSync }, readFileSync };
});

let basePath: string;
let manager: CheckpointManager;
beforeEach(async () => {
  basePath = await mkdtemp(join(tmpdir(), "cairn-vanish-"));
  manager = new CheckpointManager({ strategy: "file", config: { basePath } });
});
afterEach(async () => {
  doomed.clear();
  await manager.close();
  await rm(basePath, { recursive: true, force: true });
});

const stages = ["s1", "s2", "s3", "s4"];
const outputOf = (stage: string) => ({ stage, rows: [stage, stage] });

/** Checkpoints of the first `n` stages of a run; returns their ids. */
async function writeRun(runId: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const done = stages.slice(0, i + 1);
    ids.push(
      await manager.createCheckpoint({
        pipelineId: runId,
        pipelineName: "vanish",
        stageName: stages[i] as string,
        stageIndex: i,
        stateData: { i },
        completedStages: done,
        pendingStages: stages.slice(i + 1),
        agentOutputs: Object.fromEntries(done.map((s) => [s, outputOf(s)])),
      }),
    );
  }
  return ids;
}

/** The file of the output a checkpoint stores for `stage`. */
async function outputFile(runId: string, checkpointId: string, stage: string): Promise<string> {
  const record = await (await manager.getStore()).getCheckpoint(checkpointId);
  const refs = (JSON.parse(record?.body ?? "{}") as { output_refs: Record<string, string> }).output_refs;
  return join(basePath, runId, "outputs", `${refs[stage]}.json`);
}

/** Marks a file to vanish on its next read, and checks later that the hook did fire. */
function vanishOnRead(path: string): () => void {
  expect(existsSync(path)).toBe(true);
  doomed.add(path);
  return () => {
    expect(doomed.has(path), `${basename(path)} was never read`).toBe(false);
  };
}

describe("a file that disappears between listing and reading", () => {
  it("a checkpoint deleted after the listing is left out of the listing and the history", async () => {
    const ids = await writeRun("run_a", 3);
    const fired = vanishOnRead(await checkpointFile(basePath, "run_a", ids[1] as string));
    const listing = await (await manager.getStore()).listCheckpoints("run_a");
    fired();
    expect(listing.map((e) => (e.ok ? e.metadata.checkpoint_id : e.corrupt.location))).toEqual([
      ids[0],
      ids[2],
    ]);
    expect((await manager.getCheckpointHistory("run_a")).map((m) => m.checkpointId)).toEqual([
      ids[2],
      ids[0],
    ]);
    // Its child still validates: a deleted parent is not a broken chain.
    expect(await manager.validateCheckpoint(ids[2] as string)).toMatchObject({ valid: true });
  });

  it("a parent deleted while its child is validated is not a broken chain", async () => {
    const ids = await writeRun("run_b", 3);
    const fired = vanishOnRead(await checkpointFile(basePath, "run_b", ids[1] as string));
    expect(await manager.validateCheckpoint(ids[2] as string)).toMatchObject({ valid: true, problems: [] });
    fired();
  });

  it("the newest checkpoint deleted as resume reads it: resume falls back to the one before", async () => {
    const ids = await writeRun("run_c", 3);
    const fired = vanishOnRead(await checkpointFile(basePath, "run_c", ids[2] as string));
    const context = await manager.resumePipeline("run_c");
    fired();
    expect(context).toMatchObject({ checkpointId: ids[1], resumeFromStage: "s3" });
    const history = await manager.getCheckpointHistory("run_c");
    expect(history.map((m) => m.checkpointId)).toEqual([ids[1], ids[0]]);
    for (const id of ids.slice(0, 2))
      expect(await manager.validateCheckpoint(id as string)).toMatchObject({ valid: true });
  });

  it("an output deleted as it is read makes its checkpoint invalid (output_missing) and resume falls back", async () => {
    const ids = await writeRun("run_d", 3);
    const output = await outputFile("run_d", ids[2] as string, "s3");
    const fired = vanishOnRead(output);
    const result = await manager.validateCheckpoint(ids[2] as string);
    fired();
    expect(result.valid).toBe(false);
    expect(result.problems.map((p) => p.kind)).toEqual(["output_missing"]);
    await expect(manager.loadCheckpoint(ids[2] as string)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    expect(await manager.resumePipeline("run_d")).toMatchObject({
      checkpointId: ids[1],
      resumeFromStage: "s3",
    });
    // The listing still shows the checkpoint (its file is there); it is just not whole.
    const listing = await (await manager.getStore()).listCheckpoints("run_d");
    expect(listing.every((e) => e.ok)).toBe(true);
    expect(listing).toHaveLength(3);
  });

  it.each(["the same Pipeline", "a new Pipeline"])(
    "a run whose output vanished as %s resumed it re-runs that stage and stores the output again",
    async (which) => {
      let failS4 = true;
      const ran: string[] = [];
      const make = () =>
        new Pipeline({
          name: "vanish",
          checkpointEnabled: true,
          checkpointStrategy: "file",
          checkpointConfig: { basePath },
          steps: stages.map((name) => ({
            name,
            agent: () => {
              ran.push(name);
              if (name === "s4" && failS4) throw new Error("s4 fails the first time");
              return outputOf(name);
            },
          })),
        });
      let pipeline = make();
      const runId = "run_e";
      await expect(pipeline.execute({ runId })).rejects.toMatchObject({ code: "CAIRN_STAGE_FAILED" });
      const before = await manager.getCheckpointHistory(runId);
      expect(before.map((m) => m.stageName)).toEqual(["s4", "s3", "s2", "s1"]);
      // The output of s3 goes as the resume reads the newest checkpoint, which references it.
      const s3Output = await outputFile(runId, before[0]?.checkpointId as string, "s3");
      const fired = vanishOnRead(s3Output);
      failS4 = false;
      if (which === "a new Pipeline") {
        await pipeline.close();
        pipeline = make();
      }
      const results = await pipeline.execute({ runId });
      fired();
      expect(results).toMatchObject({ status: "completed", skippedStages: ["s1", "s2"] });
      expect(ran).toEqual(["s1", "s2", "s3", "s4", "s3", "s4"]);
      // The checkpoints written after the fall-back are whole: s3's output was stored again.
      expect(existsSync(s3Output)).toBe(true);
      const history = await manager.getCheckpointHistory(runId);
      for (const m of history.slice(0, 3))
        expect(await manager.validateCheckpoint(m.checkpointId), m.stageName).toMatchObject({ valid: true });
      expect(history.map((m) => m.stageName)).toEqual([
        "pipeline_complete",
        "s4",
        "s3",
        "s4",
        "s3",
        "s2",
        "s1",
      ]);
      await pipeline.close();
    },
  );
});
