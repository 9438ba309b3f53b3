/**
 * The CLI agrees with the library on what is valid: `validate` names a checkpoint whose output
 * does not decode, `export` leaves out exactly that one, and `analyze` does not call a run
 * finished when its `pipeline_complete` checkpoint is corrupt.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StoredMetadata } from "../../src/core/record.js";
import { CheckpointManager, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { recordWithOutputs } from "../support/records.js";

let dir: string;
let basePath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-verify-"));
  basePath = join(dir, "checkpoints");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (...args: string[]) => runCairn([...args, "--base-path", basePath], { cwd: dir });

/** Stores hand-sealed checkpoints of run1, each chained to the one before; returns their metadata. */
async function storeRun(outputs: Record<string, string>[]): Promise<StoredMetadata[]> {
  const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
  const store = await manager.getStore();
  const written: StoredMetadata[] = [];
  try {
    for (const [i, refs] of outputs.entries()) {
      const sealed = recordWithOutputs("run1", i + 1, refs, written.at(-1));
      await store.putCheckpoint(sealed.record, sealed.outputs);
      written.push(sealed.record.metadata);
    }
  } finally {
    await manager.close();
  }
  return written;
}

describe("one definition of valid on the command line", () => {
  it("validate reports an output with an unknown codec tag, and export leaves exactly it out", async () => {
    const [first, second] = await storeRun([
      { a: '{"rows":3}' },
      { a: '{"rows":3}', b: '{"$cairn":"vector","v":[1]}' },
    ]);
    const validate = await cairn("validate", "--pipeline-id", "run1");
    expect(validate.code).toBe(4);
    expect(validate.stdout).toContain(second?.checkpoint_id);
    expect(validate.stdout).toContain("output of stage b does not decode");

    const output = join(dir, "run.json");
    expect((await cairn("export", "--pipeline-id", "run1", "--output", output)).code).toBe(4);
    const exported = await cairn(
      "export",
      "--pipeline-id",
      "run1",
      "--output",
      output,
      "--skip-corrupt",
      "--json",
    );
    expect(exported.code).toBe(0);
    const report = JSON.parse(exported.stdout) as {
      checkpointIds: string[];
      skipped: { checkpointId: string }[];
    };
    expect(report.checkpointIds).toEqual([first?.checkpoint_id]);
    expect(report.skipped.map((s) => s.checkpointId)).toEqual([second?.checkpoint_id]);
    expect(JSON.parse(await readFile(output, "utf8")).checkpoints).toHaveLength(1);
  });

  it("analyze does not call a run finished when its pipeline_complete checkpoint is corrupt", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    try {
      await manager.createCheckpoint({
        pipelineId: "run1",
        stageName: "extract",
        stageIndex: 0,
        completedStages: ["extract"],
      });
      const end = await manager.createCheckpoint({
        pipelineId: "run1",
        stageName: PIPELINE_COMPLETE_STAGE,
        stageIndex: 1,
        completedStages: ["extract"],
        agentOutputs: { extract: { rows: 1 } },
      });
      const store = await manager.getStore();
      // The output the final checkpoint alone holds is lost: the checkpoint no longer verifies.
      const hashes = await store.listOutputHashes("run1");
      expect(await store.deleteOutputs("run1", hashes)).toBe(1);
      expect((await manager.validateCheckpoint(end)).valid).toBe(false);
    } finally {
      await manager.close();
    }
    const analyze = await cairn("analyze", "--pipeline-id", "run1", "--json");
    expect(JSON.parse(analyze.stdout)).toMatchObject({ finished: false, checkpoints: { corrupted: 1 } });
  });
});
