/**
 * The file store on a read-only folder: writes fail with a typed store error that names the
 * path refused, reads keep working, and nothing half-written appears. Root ignores permission
 * bits, so as root the folder is made read-only by the filesystem (a tmpfs remounted read-only,
 * a read-only bind mount); elsewhere the run folder gets mode 0555, and the whole-store case,
 * which needs a mount, is skipped loudly.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager, Pipeline } from "../../src/index.js";
import { makeFolderReadOnly, mountTmpfs, type Tmpfs } from "../support/mounts.js";
import { expectRunIntact } from "../support/run-checks.js";

let fs: Tmpfs | undefined;
let noMount: string | undefined;

beforeAll(() => {
  const mounted = mountTmpfs(8 * 1024 * 1024);
  if (typeof mounted === "string") {
    noMount = `needs a filesystem to remount read-only: ${mounted}`;
    console.warn(`\n⚠⚠⚠ SKIPPING the read-only store test: ${noMount} ⚠⚠⚠\n`);
  } else fs = mounted;
});
afterAll(() => fs?.unmount());

const stages = ["s1", "s2", "s3", "s4"];

/** Writes the checkpoint of stage `i` of a four-stage run. */
function writeStage(manager: CheckpointManager, pipelineId: string, i: number): Promise<string> {
  const done = stages.slice(0, i + 1);
  return manager.createCheckpoint({
    pipelineId,
    pipelineName: "ro",
    stageName: stages[i] as string,
    stageIndex: i,
    stateData: { i },
    completedStages: done,
    pendingStages: stages.slice(i + 1),
    agentOutputs: Object.fromEntries(done.map((s) => [s, { stage: s, rows: [1, 2, 3] }])),
  });
}

/** The write was refused with a typed store error naming a path under `dir`. */
async function expectRefused(write: Promise<unknown>, dir: string): Promise<void> {
  const error = await write.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toMatchObject({ code: "CAIRN_STORE_FAILED", store: "file" });
  expect((error as Error).message).toContain(dir);
  expect((error as Error).message).toMatch(/EROFS|EACCES|read-only|permission denied/i);
}

/** The reads a resume needs all still work on the run. */
async function expectReadable(manager: CheckpointManager, runId: string, ids: string[]): Promise<void> {
  expect(await expectRunIntact(manager, runId)).toEqual(ids);
  expect((await manager.loadLatestCheckpoint(runId))?.metadata.checkpointId).toBe(ids.at(-1));
  expect((await manager.getCheckpointHistory(runId)).map((m) => m.checkpointId)).toEqual([...ids].reverse());
  expect((await manager.loadCheckpoint(ids[0] as string)).agentOutputs.s1).toEqual({
    stage: "s1",
    rows: [1, 2, 3],
  });
  expect(await manager.getRunInfo(runId)).toMatchObject({ pipelineId: runId, finished: false });
}

describe("the file store on a read-only folder", () => {
  it("a read-only store refuses every write with a typed error naming the path, and reads keep working", async (ctx) => {
    if (noMount) ctx.skip(noMount);
    const basePath = join((fs as Tmpfs).dir, "store");
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    const runId = "ro_run";
    const ids = [await writeStage(manager, runId, 0), await writeStage(manager, runId, 1)];
    (fs as Tmpfs).readOnly();
    try {
      // Every write takes the run lock first (.leases/<run>.lock): the first path refused is there.
      await expectRefused(writeStage(manager, runId, 2), basePath);
      await expectRefused(writeStage(manager, "ro_new_run", 0), basePath);
      await expectRefused(manager.updateCheckpointStatus(ids[1] as string, "failed", "x"), basePath);
      const pipeline = new Pipeline({
        name: "ro",
        checkpointEnabled: true,
        checkpointStore: manager,
        steps: stages.map((name) => ({ name, agent: () => ({ stage: name, rows: [1, 2, 3] }) })),
      });
      await expectRefused(pipeline.execute({ runId }), basePath);
      await expectReadable(manager, runId, ids);
    } finally {
      (fs as Tmpfs).writable();
    }
    // Writable again: the run continues on its chain.
    ids.push(await writeStage(manager, runId, 2));
    await expectReadable(manager, runId, ids);
    expect(readdirSync(join(basePath, runId)).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    await manager.close();
  });

  it("a read-only run folder refuses writes to that run only", async () => {
    const root = fs ? join(fs.dir, "folder") : await mkdtemp(join(tmpdir(), "cairn-ro-"));
    mkdirSync(root, { recursive: true });
    const manager = new CheckpointManager({ strategy: "file", config: { basePath: root } });
    const runId = "ro_folder_run";
    const ids = [await writeStage(manager, runId, 0), await writeStage(manager, runId, 1)];
    const other = [await writeStage(manager, "rw_run", 0)];
    const restore = makeFolderReadOnly(join(root, runId));
    try {
      await expectRefused(writeStage(manager, runId, 2), join(root, runId));
      await expectReadable(manager, runId, ids);
      // Another run of the same store is not affected.
      other.push(await writeStage(manager, "rw_run", 1));
      expect(await expectRunIntact(manager, "rw_run")).toEqual(other);
    } finally {
      restore();
    }
    ids.push(await writeStage(manager, runId, 2));
    await expectReadable(manager, runId, ids);
    await manager.close();
    if (!fs) rmSync(root, { recursive: true, force: true });
  });
});
