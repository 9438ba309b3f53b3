/**
 * `import --overwrite` of a single-checkpoint export replaces the stored checkpoint in one atomic
 * step: it never deletes first, so a failure (or a kill) part-way leaves the old checkpoint; the
 * rest of the run stays as it was; a run being executed is left alone.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, openStore, StoreUnavailableError } from "../../src/index.js";
import type { CheckpointStore } from "../../src/stores/types.js";

let dir: string;
let basePath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-replace-"));
  basePath = join(dir, "files");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STAGES = ["extract", "transform", "load"];

async function makeRun(manager: CheckpointManager, pipelineId: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [i, stage] of STAGES.entries()) {
    ids.push(
      await manager.createCheckpoint({
        pipelineId,
        stageName: stage,
        stageIndex: i,
        stateData: { total: (i + 1) * 100 },
        completedStages: STAGES.slice(0, i + 1),
        pendingStages: STAGES.slice(i + 1),
        agentOutputs: { [stage]: { rows: [stage, i] } },
        status: "completed",
      }),
    );
  }
  return ids;
}

/** A real file store whose whole-run and single writes fail, as a full disk would make them. */
function failingWrites(store: CheckpointStore): CheckpointStore {
  const fail = async () => {
    throw new StoreUnavailableError("file", "injected: the disk is full");
  };
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === "importRun" || key === "putCheckpoint") return fail;
      const value = Reflect.get(target, key, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** An export of the run's middle checkpoint, edited so it differs from the stored one. */
async function editedExport(manager: CheckpointManager, id: string): Promise<string> {
  const path = join(dir, "one.json");
  await manager.exportCheckpoint(id, path);
  const file = JSON.parse(await readFile(path, "utf8")) as { metadata: { status: string } };
  // Status is outside the checksum, so the edited export still verifies.
  file.metadata.status = "failed";
  await writeFile(path, JSON.stringify(file));
  return path;
}

describe("importCheckpoint with overwrite", () => {
  it("replaces the checkpoint and keeps the rest of the run, its chain and its outputs", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    try {
      const ids = await makeRun(manager, "etl");
      const path = await editedExport(manager, ids[1] as string);
      expect(await manager.importCheckpoint(path, { overwrite: true })).toBe(ids[1]);
      // Newest first.
      const history = (await manager.getCheckpointHistory("etl")).reverse();
      expect(history.map((h) => [h.checkpointId, h.status])).toEqual([
        [ids[0], "completed"],
        [ids[1], "failed"],
        [ids[2], "completed"],
      ]);
      const report = await manager.validateRun("etl");
      expect(report.valid).toBe(true);
      expect((await manager.loadCheckpoint(ids[2] as string)).agentOutputs).toEqual({
        load: { rows: ["load", 2] },
      });
    } finally {
      await manager.close();
    }
  });

  it("keeps the old checkpoint when the write fails (it never deletes first)", async () => {
    const setup = new CheckpointManager({ strategy: "file", config: { basePath } });
    const ids = await makeRun(setup, "etl");
    const path = await editedExport(setup, ids[1] as string);
    await setup.close();

    const store = await openStore({ strategy: "file", config: { basePath } });
    const manager = new CheckpointManager({ store: failingWrites(store) });
    try {
      await expect(manager.importCheckpoint(path, { overwrite: true })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    } finally {
      await manager.close();
    }
    const check = new CheckpointManager({ strategy: "file", config: { basePath } });
    try {
      const history = (await check.getCheckpointHistory("etl")).reverse();
      expect(history.map((h) => h.checkpointId)).toEqual(ids);
      expect(history[1]?.status).toBe("completed");
      expect((await check.validateRun("etl")).valid).toBe(true);
    } finally {
      await check.close();
    }
  });

  it("leaves a run alone while a runner holds its lease", async () => {
    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    const store = await openStore({ strategy: "file", config: { basePath } });
    try {
      const ids = await makeRun(manager, "etl");
      const path = await editedExport(manager, ids[1] as string);
      const attempt = await store.acquireLease("etl", "runner-1", 60_000);
      expect(attempt.acquired).toBe(true);
      await expect(manager.importCheckpoint(path, { overwrite: true })).rejects.toMatchObject({
        code: "CAIRN_CONFLICT",
        message: expect.stringContaining("runner-1"),
      });
      expect((await manager.getCheckpointHistory("etl")).find((h) => h.checkpointId === ids[1])?.status).toBe(
        "completed",
      );
    } finally {
      await Promise.all([manager.close(), store.close()]);
    }
  });
});
