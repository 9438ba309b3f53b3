/** Run exports hold each output once (format 1.1), and 1.0 exports, which repeat them, still import. */
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, EXPORT_VERSION } from "../../src/index.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures");
let dir: string;
let source: CheckpointManager;
let target: CheckpointManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-export-dedup-"));
  source = new CheckpointManager({ store: `sqlite:${join(dir, "source.db")}` });
  target = new CheckpointManager({ store: `file:${join(dir, "files")}` });
});
afterEach(async () => {
  await Promise.all([source.close(), target.close()]);
  await rm(dir, { recursive: true, force: true });
});

const STAGES = ["s1", "s2", "s3", "s4", "s5", "s6", "s7"];
/** A 20 kB output, unique to its stage, with a marker to count in the file. */
const outputOf = (stage: string) => ({ marker: `<<${stage}>>`, rows: `${stage}:`.repeat(4000) });

/** A run whose every checkpoint carries the outputs of every stage so far, as the pipeline does. */
async function makeRun(pipelineId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await source.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { i },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, outputOf(s)])),
        status: "completed",
      }),
    );
  }
  return ids;
}

describe("run export format 1.1", () => {
  it("writes each output once: the file's size follows the distinct outputs, not the checkpoints", async () => {
    const ids = await makeRun("wide");
    const path = join(dir, "run.json");
    await source.exportPipeline("wide", path);
    const text = await readFile(path, "utf8");
    expect(JSON.parse(text)).toMatchObject({ export_version: EXPORT_VERSION, kind: "run" });
    for (const stage of STAGES) expect(text.split(`<<${stage}>>`)).toHaveLength(2);
    const distinct = STAGES.reduce((sum, s) => sum + JSON.stringify(outputOf(s)).length, 0);
    const { size } = await stat(path);
    // 1.0 wrote 28 outputs for these 7 distinct ones (4x); what is left is metadata and state.
    expect(size).toBeGreaterThan(distinct);
    expect(size).toBeLessThan(distinct * 1.1);

    await target.importPipeline(path);
    expect(await target.getCheckpointHistory("wide")).toEqual(await source.getCheckpointHistory("wide"));
    for (const id of ids)
      expect(await target.loadCheckpoint(id)).toStrictEqual(await source.loadCheckpoint(id));
    expect((await target.validateRun("wide")).valid).toBe(true);
  });

  it("refuses a file whose shared output was changed or is missing, and writes nothing", async () => {
    await makeRun("wide");
    const path = join(dir, "run.json");
    await source.exportPipeline("wide", path);
    const text = await readFile(path, "utf8");

    await writeFile(join(dir, "edited.json"), text.replace("s3:s3:", "s3:S3:"));
    await expect(target.importPipeline(join(dir, "edited.json"))).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
    });
    const lines = text.split("\n");
    const first = JSON.parse((lines[1] as string).replace(/,$/, "")) as Record<string, unknown>;
    lines[1] = `${JSON.stringify({ ...first, outputs: {} })},`;
    await writeFile(join(dir, "dropped.json"), lines.join("\n"));
    await expect(target.importPipeline(join(dir, "dropped.json"))).rejects.toThrow(
      /output of stage s1 .* is not in the file before it/,
    );
    expect(await target.listPipelines()).toEqual([]);
  });

  it("still imports 1.0 exports (a run and a checkpoint), which re-export as 1.2", async () => {
    const run = join(dir, "run-1.0.json");
    await copyFile(join(FIXTURES, "run-v1.0.export"), run);
    expect(JSON.parse(await readFile(run, "utf8"))).toMatchObject({ export_version: "1.0" });
    const report = await target.importPipeline(run);
    expect(report).toMatchObject({ kind: "run", pipelineId: "etl_v10" });
    expect(report.checkpointIds).toHaveLength(3);
    expect((await target.validateRun("etl_v10")).valid).toBe(true);
    const last = await target.loadCheckpoint(report.checkpointIds[2] as string);
    expect(last?.agentOutputs).toEqual({
      extract: { rows: ["extract", 7] },
      transform: { rows: ["transform", 9] },
      load: { rows: ["load", 4] },
    });

    const single = await target.importCheckpoint(join(FIXTURES, "checkpoint-v1.0.export"));
    expect((await target.validateCheckpoint(single)).valid).toBe(true);

    const again = join(dir, "run-1.1.json");
    await target.exportPipeline("etl_v10", again);
    expect(JSON.parse(await readFile(again, "utf8"))).toMatchObject({ export_version: EXPORT_VERSION });
    await source.importPipeline(again);
    expect(await source.getCheckpointHistory("etl_v10")).toEqual(
      await target.getCheckpointHistory("etl_v10"),
    );
  });
});
