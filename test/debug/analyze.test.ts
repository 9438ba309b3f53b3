/** `analyzePipeline` on runs built through the library in a file store, then damaged by hand. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzePipeline } from "../../src/debug/analyze.js";
import { buildRecoveryReport } from "../../src/debug/report.js";
import { type CheckpointManager, CheckpointNotFoundError, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { checkpointFile, editBody, fileManager, writeStages } from "./fixtures.js";

let root: string;
let basePath: string;
let manager: CheckpointManager;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-analyze-"));
  basePath = join(root, "store");
  manager = fileManager(basePath);
});
afterEach(async () => {
  await manager.close();
  await rm(root, { recursive: true, force: true });
});

describe("analyzePipeline", () => {
  it("reports a healthy run: counts, storage as the store holds it, and the resume point", async () => {
    const ids = await writeStages(manager, "run-ok", 3);
    const a = await analyzePipeline(manager, "run-ok");
    expect(a).toMatchObject({
      pipelineId: "run-ok",
      pipelineName: "etl",
      checkpoints: { total: 3, healthy: 3, corrupted: 0, orphaned: 0 },
      corrupted: [],
      orphaned: [],
      resumes: { totalResumeCount: 0, resumedCheckpoints: 0 },
      resumeSuccessRate: null,
      finished: false,
      failurePoints: [],
    });
    const history = await manager.getCheckpointHistory("run-ok");
    expect(a.storage.checkpointBytes).toBe(history.reduce((sum, m) => sum + m.dataSize, 0));
    const store = await manager.getStore();
    const hashes = await store.listOutputHashes("run-ok");
    const texts = await store.getOutputs("run-ok", hashes);
    expect(a.storage).toMatchObject({ outputs: 3, unreferencedOutputs: 0 });
    expect(a.storage.outputBytes).toBe([...texts.values()].reduce((n, t) => n + Buffer.byteLength(t), 0));
    expect(a.resumePoint).toMatchObject({
      checkpointId: ids[2],
      stageName: "load",
      sequence: 3,
      isNewest: true,
    });
    expect(a.recommendations).toContain("All 3 checkpoints verify and the chain has no gaps.");
    expect(a.recommendations.join("\n")).toContain(`Resume will use checkpoint ${ids[2]} (stage load`);
  });

  it("counts healthy, corrupted and orphaned checkpoints, and an unparseable file as corrupted", async () => {
    const ids = await writeStages(manager, "run-bad", 5);
    await editBody(basePath, "run-bad", ids[4] as string);
    // A checkpoint removed from the middle of the chain: the next one becomes an orphan.
    await (await manager.getStore()).deleteCheckpoints("run-bad", [ids[2] as string]);
    await writeFile(join(basePath, "run-bad", "notes.json"), "not a checkpoint");

    const a = await analyzePipeline(manager, "run-bad");
    expect(a.checkpoints).toEqual({ total: 5, healthy: 2, corrupted: 2, orphaned: 1, sealed: 0 });
    expect(a.corrupted.map((c) => c.checkpointId ?? c.location)).toEqual([
      ids[4],
      join(basePath, "run-bad", "notes.json"),
    ]);
    expect(a.corrupted[0]?.problems.join(" ")).toContain("checksum mismatch");
    expect(a.orphaned).toEqual([
      { checkpointId: ids[3], stageName: "report", sequence: 4, missingParentId: ids[2] },
    ]);
    // The edited newest checkpoint is skipped; the orphan still verifies and is the resume point.
    expect(a.resumePoint).toMatchObject({ checkpointId: ids[3], isNewest: false });
    const text = a.recommendations.join("\n");
    expect(text).toContain(`1 invalid checkpoint (${ids[4]})`);
    expect(text).toContain(`cairn inspect --checkpoint-id ${ids[4]}`);
    expect(text).toContain("1 unreadable entry with no checkpoint id");
    expect(text).toContain("1 orphaned checkpoint");
    expect(text).toContain(`Resume will use checkpoint ${ids[3]}`);
  });

  it("counts a truncated checkpoint file as corrupted, under its id", async () => {
    const ids = await writeStages(manager, "run-cut", 2);
    const path = await checkpointFile(basePath, "run-cut", ids[1] as string);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.slice(0, text.length / 2));
    const a = await analyzePipeline(manager, "run-cut");
    expect(a.checkpoints).toEqual({ total: 2, healthy: 1, corrupted: 1, orphaned: 0, sealed: 0 });
    expect(a.corrupted[0]).toMatchObject({ checkpointId: ids[1], location: path });
    expect(a.resumePoint?.checkpointId).toBe(ids[0]);
  });

  it("does not call the oldest survivor of retention an orphan", async () => {
    const old = fileManager(basePath, Date.parse("2020-01-01T00:00:00Z"));
    await writeStages(old, "run-kept", 2);
    await old.close();
    const later = await writeStages(manager, "run-kept", 2);
    expect(await manager.autoCleanup({ retentionDays: 30 })).toBe(2);
    const a = await analyzePipeline(manager, "run-kept");
    expect(a.checkpoints).toEqual({ total: 2, healthy: 2, corrupted: 0, orphaned: 0, sealed: 0 });
    expect((await manager.getCheckpointHistory("run-kept")).at(-1)?.parentCheckpointId).toBeDefined();
    expect(a.resumePoint?.checkpointId).toBe(later[1]);
  });

  it("aggregates failure points by stage, from failed checkpoints and error messages", async () => {
    await writeStages(manager, "run-fail", 1);
    const create = (stageName: string, status: "failed" | "completed", errorMessage?: string) =>
      manager.createCheckpoint({
        pipelineId: "run-fail",
        stageName,
        stageIndex: stageName === "transform" ? 1 : 2,
        stateData: { source: "orders.csv" },
        completedStages: ["extract"],
        pendingStages: ["transform", "load"],
        status,
        ...(errorMessage !== undefined ? { errorMessage } : {}),
      });
    await create("transform", "failed", "timeout");
    await create("load", "failed", "disk full");
    const resumedFrom = await create("transform", "failed", "connection reset");
    // Resuming from a failed checkpoint changes its status; its error message still counts.
    await manager.updateCheckpointStatus(resumedFrom, "resumed");
    await create("transform", "failed");

    const a = await analyzePipeline(manager, "run-fail");
    expect(a.failurePoints.map((f) => [f.stageName, f.count, f.lastError])).toEqual([
      ["transform", 3, "connection reset"],
      ["load", 1, "disk full"],
    ]);
    const history = await manager.getCheckpointHistory("run-fail");
    expect(a.failurePoints[0]?.lastAt).toEqual(history[0]?.timestamp);
    expect(a.recommendations.join("\n")).toContain("Stage transform failed 3 times");
    expect(a.recommendations.join("\n")).toContain("Stage load failed once, last at");
  });

  it("rates this run's resumes: null, then 0 while unfinished, then 1 once finished", async () => {
    await writeStages(manager, "run-resume", 2);
    expect((await analyzePipeline(manager, "run-resume")).resumeSuccessRate).toBeNull();
    await manager.resumePipeline("run-resume");
    const resumed = await analyzePipeline(manager, "run-resume");
    expect(resumed).toMatchObject({
      resumeSuccessRate: 0,
      finished: false,
      resumes: { totalResumeCount: 1, resumedCheckpoints: 1 },
    });
    expect(resumed.recommendations.join("\n")).toContain("resumed once without finishing");
    await manager.createCheckpoint({
      pipelineId: "run-resume",
      stageName: PIPELINE_COMPLETE_STAGE,
      stageIndex: 4,
      completedStages: ["extract", "transform", "load", "report"],
      status: "completed",
    });
    const done = await analyzePipeline(manager, "run-resume");
    expect(done).toMatchObject({ resumeSuccessRate: 1, finished: true });
    expect(done.recommendations.join("\n")).toContain("The run finished: nothing to resume");
  });

  it("does not count a run as finished when its pipeline_complete checkpoint is corrupt", async () => {
    await writeStages(manager, "run-end", 4);
    const end = await manager.createCheckpoint({
      pipelineId: "run-end",
      pipelineName: "etl",
      stageName: PIPELINE_COMPLETE_STAGE,
      stageIndex: 4,
      stateData: { source: "orders.csv" },
      completedStages: ["extract", "transform", "load", "report"],
      status: "completed",
    });
    expect((await analyzePipeline(manager, "run-end")).finished).toBe(true);
    await editBody(basePath, "run-end", end);
    const a = await analyzePipeline(manager, "run-end");
    expect(a.finished).toBe(false);
    expect(a.corrupted.map((c) => c.checkpointId)).toEqual([end]);
    const report = await buildRecoveryReport(manager, "run-end");
    // Unfinished by the walk, and no runner holds its lease.
    expect(report.run).toMatchObject({ finished: false, status: "paused" });
    expect(report.resumeCommand).toContain("--run-id run-end");
  });

  it("leaves out a checkpoint deleted while the run is walked", async () => {
    const ids = await writeStages(manager, "run-gone", 3);
    const store = await manager.getStore();
    const read = store.getCheckpoint.bind(store);
    // The first read of the walk deletes a checkpoint the listing still holds.
    store.getCheckpoint = async (id) => {
      store.getCheckpoint = read;
      await store.deleteCheckpoints("run-gone", [ids[1] as string]);
      return read(id);
    };
    const a = await analyzePipeline(manager, "run-gone");
    expect(a.checkpoints).toEqual({ total: 2, healthy: 1, corrupted: 0, orphaned: 1, sealed: 0 });
    expect(a.corrupted).toEqual([]);
  });

  it("counts outputs no checkpoint references, with their bytes", async () => {
    const ids = await writeStages(manager, "run-outputs", 3);
    await (await manager.getStore()).deleteCheckpoints("run-outputs", [ids[2] as string]);
    const a = await analyzePipeline(manager, "run-outputs");
    expect(a.storage).toMatchObject({ outputs: 3, unreferencedOutputs: 1 });
    expect(a.recommendations.join("\n")).toMatch(/1 stored output \(\d+ B\) referenced by no checkpoint:/);
  });

  it("recommends retention for old checkpoints, and warns when it would delete the resume point", async () => {
    const old = fileManager(basePath, Date.parse("2020-01-01T00:00:00Z"));
    await writeStages(old, "run-old", 2);
    await old.close();
    const args = { storeArgs: ["--store", "file:./my store"] };
    const unfinished = await analyzePipeline(manager, "run-old", args);
    expect(unfinished.recommendations.join("\n")).toContain(
      "2 checkpoints older than 30 days, the resume point among them: `cairn cleanup --retention-days 30 --store 'file:./my store'` would delete it",
    );
    await writeStages(manager, "run-old", 1);
    const now = new Date();
    const later = await analyzePipeline(manager, "run-old", { ...args, now, retentionDays: 7 });
    expect(later.recommendations.join("\n")).toContain(
      "No retention policy has removed 2 checkpoints older than 7 days: run `cairn cleanup --retention-days 7 --dry-run --store 'file:./my store'`",
    );
  });

  it("rejects an unknown run with CheckpointNotFoundError", async () => {
    await writeStages(manager, "run-a", 1);
    const error = await analyzePipeline(manager, "run-zzz").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointNotFoundError);
    expect(error).toMatchObject({ code: "CAIRN_NOT_FOUND", id: "run-zzz" });
  });
});
