/**
 * Issue 11: run walks and writes on the file store must not list the run folder once per
 * checkpoint. Folder listings are counted through a pass-through wrapper of `node:fs` (the real
 * calls still run), so linearity is shown by counts, not timings: a walk lists the run folder a
 * fixed number of times whatever the run's length, and a write at the end of a long run lists it
 * not at all. Also the cases the id index must keep right: stale markers, runs without the
 * indexed flag, hand-deleted files, one id claimed from two runs or two store instances.
 */
import { mkdtemp, readdir, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TipMovedError } from "../../src/core/errors.js";
import { analyzePipeline } from "../../src/debug/analyze.js";
import { buildRecoveryReport } from "../../src/debug/report.js";
import { buildCheckpointGraph } from "../../src/debug/visualize/graph.js";
import { CheckpointManager } from "../../src/index.js";
import { FileStore } from "../../src/stores/file/file-store.js";
import type { CheckpointRecord } from "../../src/stores/types.js";
import { checkpointFile } from "../support/file-store.js";

/** How many times each folder was listed, by absolute path. */
const listings = vi.hoisted(() => new Map<string, number>());

vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const readdirSync = ((path: Parameters<typeof fs.readdirSync>[0], ...rest: unknown[]) => {
    listings.set(String(path), (listings.get(String(path)) ?? 0) + 1);
    return (fs.readdirSync as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readdirSync;
  return { ...fs, default: { ...fs, readdirSync }, readdirSync };
});
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs/promises")>();
  const readdir = ((path: Parameters<typeof fs.readdir>[0], ...rest: unknown[]) => {
    listings.set(String(path), (listings.get(String(path)) ?? 0) + 1);
    return (fs.readdir as (...args: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readdir;
  return { ...fs, default: { ...fs, readdir }, readdir };
});

let basePath: string;
const managers: CheckpointManager[] = [];
beforeEach(async () => {
  basePath = resolve(await mkdtemp(join(tmpdir(), "cairn-linear-")));
  listings.clear();
});
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
  await rm(basePath, { recursive: true, force: true });
});

function manager(): CheckpointManager {
  const m = new CheckpointManager({ strategy: "file", config: { basePath, fsync: false } });
  managers.push(m);
  return m;
}

/** A chained run of `n` checkpoints, each with one output; returns the ids. */
async function writeRun(runId: string, n: number): Promise<string[]> {
  const m = manager();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(
      await m.createCheckpoint({
        pipelineId: runId,
        pipelineName: "linear",
        stageName: `s${i}`,
        stageIndex: i,
        stateData: { i },
        completedStages: [`s${i}`],
        pendingStages: [],
        agentOutputs: { [`s${i}`]: { i } },
      }),
    );
  }
  return ids;
}

/** Listings of the run's folder made while `action` runs. */
async function runListings(runId: string, action: () => Promise<unknown>): Promise<number> {
  listings.clear();
  await action();
  return listings.get(join(basePath, runId)) ?? 0;
}

describe("file store walks and writes at any run length", () => {
  it("validates, analyzes, reports, exports and draws a run with a fixed number of folder listings, whatever its length", async () => {
    const counts: number[][] = [];
    for (const [runId, n] of [
      ["short", 20],
      ["long", 120],
    ] as const) {
      await writeRun(runId, n);
      // A fresh manager: nothing remembered from the writes.
      const validated = await runListings(runId, async () => {
        const result = await manager().validateRun(runId);
        expect(result.summary).toMatchObject({ listed: n, valid: n, invalid: 0 });
      });
      const analyzed = await runListings(runId, () => analyzePipeline(manager(), runId));
      const reported = await runListings(runId, () => buildRecoveryReport(manager(), runId));
      const exported = await runListings(runId, () =>
        manager().exportPipeline(runId, join(basePath, `${runId}.export.json`)),
      );
      const drawn = await runListings(runId, () => buildCheckpointGraph(manager(), runId));
      counts.push([validated, analyzed, reported, exported, drawn]);
    }
    expect(counts[1]).toEqual(counts[0]);
    for (const count of counts.flat()) expect(count).toBeLessThanOrEqual(3);
  });

  it("writes at the end of a long run without listing its folder, and finds a checkpoint by id without it", async () => {
    const ids = await writeRun("run", 60);
    const store = new FileStore({ basePath, fsync: false });
    const last = (await store.getCheckpoint(ids.at(-1) as string)) as CheckpointRecord;
    const next = nextRecord(last, "run_next_1");
    expect(
      await runListings("run", async () => {
        expect((await store.getCheckpoint(ids[3] as string))?.metadata.checkpoint_id).toBe(ids[3]);
        await store.putCheckpoint(next, [], undefined, { expectedTip: last.metadata.checkpoint_id });
      }),
    ).toBe(0);
    expect((await store.getLatestCheckpoint("run"))?.metadata.checkpoint_id).toBe("run_next_1");
    // The same id again, and a stale tip, are still refused.
    await expect(store.putCheckpoint(nextRecord(next, "run_next_1"), [])).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    await expect(
      store.putCheckpoint(nextRecord(next, "run_next_2"), [], undefined, {
        expectedTip: last.metadata.checkpoint_id,
      }),
    ).rejects.toBeInstanceOf(TipMovedError);
  });

  it("passes over a stale marker: a hand-deleted checkpoint is absent, and its id can be written again", async () => {
    const ids = await writeRun("run", 3);
    const store = new FileStore({ basePath, fsync: false });
    const second = (await store.getCheckpoint(ids[1] as string)) as CheckpointRecord;
    await unlink(await checkpointFile(basePath, "run", ids[1] as string));
    expect(await store.getCheckpoint(ids[1] as string)).toBeUndefined();
    const walk = await manager().validateRun("run");
    expect(walk.summary.listed).toBe(2);
    // Written again under a new sequence (the marker pointed at the deleted file).
    const again = { ...second, metadata: { ...second.metadata, sequence: 9 } };
    await store.putCheckpoint(again, []);
    expect((await store.getCheckpoint(ids[1] as string))?.metadata.sequence).toBe(9);
  });

  it("keeps lookups and the id check right for a run without the indexed flag, until a repair indexes it", async () => {
    const ids = await writeRun("old", 5);
    // As an older cairn left it: no flag, no markers.
    await unlink(join(basePath, "old", "outputs", ".indexed"));
    await rm(join(basePath, ".ids"), { recursive: true });
    const store = new FileStore({ basePath, fsync: false });
    expect((await store.getCheckpoint(ids[2] as string))?.metadata.checkpoint_id).toBe(ids[2]);
    const last = (await store.getCheckpoint(ids[4] as string)) as CheckpointRecord;
    await expect(store.putCheckpoint(nextRecord(last, ids[0] as string), [])).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    const fresh = new FileStore({ basePath, fsync: false });
    expect(await runListings("old", () => fresh.getCheckpoint(ids[1] as string))).toBeGreaterThan(0);
    const done = await store.rebuildIndexes("old");
    expect(done.join("\n")).toContain("flagged run old as indexed");
    const repaired = new FileStore({ basePath, fsync: false });
    expect(await runListings("old", () => repaired.getCheckpoint(ids[1] as string))).toBe(0);
    await expect(repaired.putCheckpoint(nextRecord(last, ids[0] as string), [])).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    // The repair removed the head hint: the first write finds the tip by listing, the next does not.
    const first = nextRecord(last, "old_new_1");
    await repaired.putCheckpoint(first, []);
    expect(await runListings("old", () => repaired.putCheckpoint(nextRecord(first, "old_new_2"), []))).toBe(
      0,
    );
  });

  it("refuses an id another run holds, and lets one of two store instances claim an id", async () => {
    const [first] = await writeRun("a", 1);
    const store = new FileStore({ basePath, fsync: false });
    const record = (await store.getCheckpoint(first as string)) as CheckpointRecord;
    const moved = { ...record, metadata: { ...record.metadata, pipeline_id: "b" } };
    await expect(store.putCheckpoint(moved, [])).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
    expect(await readdir(basePath)).not.toContain("b");
    // Two instances (each with its own in-process queue) race for one new id of one run.
    const other = new FileStore({ basePath, fsync: false });
    const racing = [store, other, store, other].map((s, i) =>
      s.putCheckpoint(
        nextRecord({ ...record, metadata: { ...record.metadata, sequence: 1 + i } }, "a_race_1"),
        [],
      ),
    );
    const results = await Promise.allSettled(racing);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const files = (await readdir(join(basePath, "a"))).filter((n) => n.endsWith("-a_race_1.json"));
    expect(files).toHaveLength(1);
  });
});

describe("file store run imports", () => {
  it("refuses to import an id a run that its id does not name already holds", async () => {
    const [first] = await writeRun("y", 1);
    const store = new FileStore({ basePath, fsync: false });
    const stored = (await store.getCheckpoint(first as string)) as CheckpointRecord;
    // Put into run y under an id naming no run of the store (as an import of a renamed run leaves it).
    const foreign = { ...stored, metadata: { ...stored.metadata, checkpoint_id: "other_a_1", sequence: 2 } };
    await store.putCheckpoint(foreign, []);
    const imported = { ...foreign, metadata: { ...foreign.metadata, pipeline_id: "z", sequence: 1 } };
    await expect(
      store.importRun("z", [{ record: imported, outputs: [] }], { replace: false }),
    ).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    expect(await readdir(basePath)).not.toContain("z");
    expect((await store.getCheckpoint("other_a_1"))?.metadata.pipeline_id).toBe("y");
  });
});

/** The checkpoint after `prev` in its run, under a new id. */
function nextRecord(prev: CheckpointRecord, checkpointId: string): CheckpointRecord {
  const m = prev.metadata;
  return {
    body: prev.body,
    metadata: {
      ...m,
      checkpoint_id: checkpointId,
      sequence: m.sequence + 1,
      parent_checkpoint_id: m.checkpoint_id,
      parent_checksum: m.checksum,
    },
  };
}
