/**
 * The file store on a full filesystem (a 2 MB tmpfs filled to the last page): a checkpoint write
 * fails with a typed store error, nothing half-written becomes visible (no partial checkpoint,
 * no temp file, no stray output), the checkpoints written before still load, and once space is
 * freed the run resumes and completes. Mounting needs root; elsewhere the file is skipped loudly.
 */
import { readdirSync, rmSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { fillUp, mountTmpfs, type Tmpfs } from "../support/mounts.js";
import { expectRunIntact } from "../support/run-checks.js";

let fs: Tmpfs | undefined;
let skipReason: string | undefined;

beforeAll(() => {
  const mounted = mountTmpfs(2 * 1024 * 1024);
  if (typeof mounted === "string") {
    skipReason = `needs a small tmpfs to fill: ${mounted}`;
    console.warn(`\n⚠⚠⚠ SKIPPING full-filesystem tests: ${skipReason} ⚠⚠⚠\n`);
  } else fs = mounted;
});
afterAll(() => fs?.unmount());
beforeEach((ctx) => {
  if (skipReason) ctx.skip(skipReason);
});
// A failed test must not leave the disk full for the next one.
afterEach(() => {
  if (fs)
    for (const name of readdirSync(fs.dir)) rmSync(join(fs.dir, name), { recursive: true, force: true });
});

/** Every file under `dir`, recursively, as paths relative to it. */
function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path, `${prefix}${name}/`) : [`${prefix}${name}`];
  });
}

/** A stage output of about `kb` kilobytes that differs per `seed`, so each is stored anew. */
const blob = (seed: string, kb: number) => ({ seed, text: `${seed}:`.repeat(kb * 1024).slice(0, kb * 1024) });

/** No temp file, and no run lock left behind by a write that failed half-way. */
const expectNoTempFiles = (dir: string) =>
  expect(walk(dir).filter((p) => p.endsWith(".tmp") || p.endsWith(".lock"))).toEqual([]);

/** The ENOSPC behind a cairn store error. */
function expectDiskFull(error: unknown): void {
  expect(error).toMatchObject({ code: "CAIRN_STORE_FAILED", store: "file" });
  let cause: unknown = error;
  while (cause instanceof Error && (cause as NodeJS.ErrnoException).code !== "ENOSPC") cause = cause.cause;
  expect((cause as NodeJS.ErrnoException | undefined)?.code).toBe("ENOSPC");
}

describe("the file store on a full filesystem", () => {
  it("createCheckpoint fails with a typed error, leaves nothing half-written, and resumes once space is freed", async () => {
    const basePath = join((fs as Tmpfs).dir, "manager");
    const filler = join((fs as Tmpfs).dir, "filler-manager");
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    const runId = "full_run";
    const stages = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"];
    const outputs: Record<string, unknown> = {};
    const write = (i: number) => {
      const stage = stages[i] as string;
      outputs[stage] = blob(stage, 48);
      return manager.createCheckpoint({
        pipelineId: runId,
        stageName: stage,
        stageIndex: i,
        stateData: { at: stage },
        completedStages: stages.slice(0, i + 1),
        pendingStages: stages.slice(i + 1),
        agentOutputs: { ...outputs },
      });
    };
    const written = [await write(0), await write(1)];
    // Fill the disk to the last page, then free a little: the next writes fit until one does not.
    truncateSync(filler, fillUp(filler) - 100 * 1024);
    let failure: unknown;
    let next = 2;
    for (; next < stages.length && failure === undefined; next++) {
      const before = walk(basePath);
      try {
        written.push(await write(next));
      } catch (error) {
        failure = error;
        // The failed write left no trace: not its checkpoint, not its output, not a temp file.
        expect(walk(basePath)).toEqual(before);
      }
    }
    expectDiskFull(failure);
    const failed = next - 1;
    expect(written).toHaveLength(failed);
    expectNoTempFiles(basePath);
    // What was there still loads, and is all the run holds.
    expect(await expectRunIntact(manager, runId)).toEqual(written);
    expect((await manager.loadLatestCheckpoint(runId))?.metadata.checkpointId).toBe(written.at(-1));
    expect((await manager.loadCheckpoint(written[0] as string)).agentOutputs.s1).toEqual(blob("s1", 48));

    // Writes keep failing while the disk stays full, each leaving nothing behind.
    const before = walk(basePath);
    for (let attempt = 0; attempt < 3; attempt++) {
      delete outputs[stages[failed] as string];
      expectDiskFull(await write(failed).catch((e: unknown) => e));
    }
    expect(walk(basePath)).toEqual(before);
    delete outputs[stages[failed] as string];

    rmSync(filler);
    for (let i = failed; i < stages.length; i++) written.push(await write(i));
    expect(await expectRunIntact(manager, runId)).toEqual(written);
    expectNoTempFiles(basePath);
    await manager.close();
  });

  it("a run whose checkpoint hits a full disk stops with a typed error and resumes where it stopped", async () => {
    const dir = (fs as Tmpfs).dir;
    const basePath = join(dir, "pipeline");
    const filler = join(dir, "filler-pipeline");
    const ran: string[] = [];
    const stage = (name: string) => {
      ran.push(name);
      return blob(name, 64);
    };
    const pipeline = new Pipeline({
      name: "full_disk",
      checkpointEnabled: true,
      checkpointStrategy: "file",
      checkpointConfig: { basePath },
      steps: [
        { name: "s1", agent: () => stage("s1") },
        {
          name: "s2",
          agent: () => {
            ran.push("s2");
            // The disk fills up while the stage runs: its checkpoint is the write that fails.
            if (ran.filter((s) => s === "s2").length === 1) fillUp(filler);
            return blob("s2", 64);
          },
        },
        { name: "s3", agent: () => stage("s3") },
      ],
    });
    const runId = "full_disk_run";
    try {
      const failure = await pipeline.execute({ runId }).catch((e: unknown) => e);
      expectDiskFull(failure);
      expectNoTempFiles(basePath);
      const observer = new CheckpointManager({ strategy: "file", config: { basePath } });
      const kept = await expectRunIntact(observer, runId);
      expect((await observer.getCheckpointHistory(runId)).map((m) => m.stageName)).toEqual(["s1"]);
      expect(kept).toHaveLength(1);
      expectNoTempFiles(basePath);

      rmSync(filler);
      const results = await pipeline.execute({ runId });
      expect(results).toMatchObject({ pipelineId: runId, status: "completed", skippedStages: ["s1"] });
      expect(ran).toEqual(["s1", "s2", "s2", "s3"]);
      const ids = await expectRunIntact(observer, runId);
      expect(ids[0]).toBe(kept[0]);
      expect((await observer.getCheckpointHistory(runId)).map((m) => m.stageName)).toEqual([
        "pipeline_complete",
        "s3",
        "s2",
        "s1",
      ]);
      expectNoTempFiles(basePath);
      await observer.close();
    } finally {
      await pipeline.close();
    }
  });
});
