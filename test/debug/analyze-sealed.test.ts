/**
 * Analysis and the recovery report of an encrypted run without its key (issue 13): the run walk
 * reports sealed checkpoints, never invalid ones, and names the key id; with the key nothing
 * changes; validation without the key still refuses with CAIRN_KEY_MISSING.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { analyzePipeline, renderAnalysisText } from "../../src/debug/analyze.js";
import { buildRecoveryReport, renderReport } from "../../src/debug/report.js";
import { CheckpointManager, ErrorCode, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { renderChain } from "../../src/manager/chain-text.js";

const STAGES = ["a", "b", "c"];
const MARKER = "SECRET-ROWS-41c9";
const k1 = randomBytes(32);
let dir: string;
const opened: CheckpointManager[] = [];

function open(withKey: boolean): CheckpointManager {
  const manager = new CheckpointManager({
    store: `sqlite:${join(dir, "c.db")}`,
    ...(withKey ? { encryption: { keys: { k1 }, activeKeyId: "k1" } } : {}),
  });
  opened.push(manager);
  return manager;
}

/** Writes `count` checkpoints of a three-stage run with the key; the last one finishes it when `finish`. */
async function writeRun(manager: CheckpointManager, pipelineId: string, finish = false): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        pipelineName: "secret",
        stageName: stage,
        stageIndex: i,
        stateData: { marker: MARKER, i },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, { rows: MARKER, s }])),
      }),
    );
  }
  if (finish) {
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        pipelineName: "secret",
        stageName: PIPELINE_COMPLETE_STAGE,
        stageIndex: STAGES.length,
        stateData: { marker: MARKER },
        completedStages: STAGES,
        pendingStages: [],
        agentOutputs: Object.fromEntries(STAGES.map((s) => [s, { rows: MARKER, s }])),
      }),
    );
  }
  return ids;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-analyze-sealed-"));
});
afterEach(async () => {
  for (const manager of opened.splice(0)) await manager.close();
  await rm(dir, { recursive: true, force: true });
});

describe("analysis of an encrypted run without its key", () => {
  it("counts the checkpoints as sealed (not invalid), names the key id, and says the resume point is unknown", async () => {
    const ids = await writeRun(open(true), "run-s");
    const keyless = open(false);
    const a = await analyzePipeline(keyless, "run-s");
    expect(a.checkpoints).toEqual({
      total: 3,
      healthy: 0,
      corrupted: 0,
      orphaned: 0,
      sealed: 3,
      keyMissing: { keyId: "k1", kind: "key-encryption-key" },
    });
    expect(a.corrupted).toEqual([]);
    expect(a.resumePoint).toBeNull();
    expect(a.resumeKeyMissing).toEqual({ keyId: "k1", kind: "key-encryption-key" });
    // The clear outline: every output the checkpoints reference is known, none unreferenced.
    expect(a.storage).toMatchObject({ outputs: 3, unreferencedOutputs: 0 });
    expect(a.storage.atRest.encryptedRecords).toBeGreaterThan(0);

    const text = renderAnalysisText(a);
    expect(text).toContain("Checkpoints:     3 (3 not verified: encrypted under key id k1; pass --key-file)");
    expect(text).toContain("Resume point:    unknown (encrypted under key id k1; pass --key-file)");
    expect(text).not.toContain("invalid");
    expect(text).not.toContain(MARKER);
    const advice = a.recommendations.join("\n");
    expect(advice).toContain("3 checkpoints not verified: encrypted under key id k1");
    expect(advice).toContain("cairn analyze --pipeline-id run-s --key-file <key-file>");
    expect(advice).toContain("The resume point is unknown");
    expect(advice).not.toContain("verify and the chain has no gaps");

    // The walk itself, as the chain shows it.
    const run = await keyless.validateRun("run-s", { sealed: "report" });
    expect(run.valid).toBe(false);
    expect(run.summary).toMatchObject({ listed: 3, valid: 0, invalid: 0, gone: 0, sealed: 3 });
    expect(run.checkpoints.map((v) => v.status)).toEqual(["sealed", "sealed", "sealed"]);
    // Format 2's version fields sort before provenance_hashes: they stay in the clear outline.
    expect(run.checkpoints[2]?.body).toEqual({
      completed_stages: STAGES,
      pending_stages: [],
      output_refs: expect.any(Object),
      output_versions: { a: 1, b: 1, c: 1 },
      output_migrations: {},
      pipeline_version: null,
    });
    const chain = renderChain("run-s", run.checkpoints);
    expect(chain).toContain("0 valid, 3 not verified (encrypted)");
    expect(chain).toContain(`${ids[0]}  not verified: encrypted under key id k1`);
    expect(chain).not.toContain("invalid (");
  });

  it("builds the recovery report; a sealed pipeline_complete is finished by its metadata, not verified", async () => {
    await writeRun(open(true), "run-f", true);
    const report = await buildRecoveryReport(open(false), "run-f");
    expect(report.statistics).toMatchObject({ checkpoints: 4, healthy: 0, corrupted: 0, sealed: 4 });
    expect(report.statistics.keyMissing).toEqual({ keyId: "k1", kind: "key-encryption-key" });
    expect(report.run).toMatchObject({ status: "completed", finished: false, finishedUnverified: true });
    expect(report.corrupted).toEqual([]);
    const text = renderReport(report, "text");
    expect(text).toContain("4 (4 not verified: encrypted under key id k1; pass --key-file)");
    expect(text).toContain("completed (finished; not verified: encrypted)");
    expect(text).not.toContain(MARKER);
    expect(renderReport(report, "html")).toContain('class="warn"');
  });

  it("with the key, every checkpoint is healthy as before", async () => {
    const ids = await writeRun(open(true), "run-k");
    const a = await analyzePipeline(open(true), "run-k");
    expect(a.checkpoints).toEqual({ total: 3, healthy: 3, corrupted: 0, orphaned: 0, sealed: 0 });
    expect(a.resumePoint).toMatchObject({ checkpointId: ids[2], isNewest: true });
    expect(a.resumeKeyMissing).toBeUndefined();
    expect(a.recommendations).toContain("All 3 checkpoints verify and the chain has no gaps.");
    expect(renderAnalysisText(a)).toContain("Checkpoints:     3 (3 healthy, 0 invalid, 0 orphaned)");
  });

  it("validateRun without the option still throws CAIRN_KEY_MISSING naming the key", async () => {
    await writeRun(open(true), "run-v");
    const keyless = open(false);
    await expect(keyless.validateRun("run-v")).rejects.toMatchObject({
      code: ErrorCode.KeyMissing,
      keyId: "k1",
    });
    await expect(keyless.validateRun("run-v", { sealed: "throw" })).rejects.toMatchObject({
      code: ErrorCode.KeyMissing,
    });
  });
});
