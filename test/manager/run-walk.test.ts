/**
 * One check, one run walk: what `validate` calls invalid is exactly what `exportPipeline` leaves
 * out; the walk lists a run once and reads each checkpoint once; a checkpoint deleted while the
 * run is walked is reported as gone, not as damage and not as a crash.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StoredMetadata } from "../../src/core/record.js";
import { CheckpointManager } from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import type { ListedCheckpoint } from "../../src/stores/types.js";
import { recordWithOutputs } from "../support/records.js";

/** A memory store that counts reads and can run a hook after a listing or an output read. */
class WatchedStore extends MemoryStore {
  gets = 0;
  lists = 0;
  outputsRead = 0;
  afterList: (() => Promise<void>) | undefined;
  beforeOutputs: (() => Promise<void>) | undefined;

  override async getCheckpoint(checkpointId: string) {
    this.gets++;
    return super.getCheckpoint(checkpointId);
  }

  override async listCheckpoints(pipelineId: string): Promise<ListedCheckpoint[]> {
    this.lists++;
    const listing = await super.listCheckpoints(pipelineId);
    const hook = this.afterList;
    this.afterList = undefined;
    await hook?.();
    return listing;
  }

  override async getOutputs(pipelineId: string, hashes: readonly string[]) {
    const hook = this.beforeOutputs;
    this.beforeOutputs = undefined;
    await hook?.();
    this.outputsRead += hashes.length;
    return super.getOutputs(pipelineId, hashes);
  }
}

const FUTURE = '{"$cairn":"vector","v":[1,2]}';
const PLAIN = '{"rows":3}';

/** Stores a hand-sealed checkpoint of run1, so its outputs can hold text this cairn cannot decode. */
async function putSealed(
  store: MemoryStore,
  sequence: number,
  outputs: Record<string, string>,
  parent?: StoredMetadata,
): Promise<StoredMetadata> {
  const sealed = recordWithOutputs("run1", sequence, outputs, parent);
  await store.putCheckpoint(sealed.record, sealed.outputs);
  return sealed.record.metadata;
}

let dir: string;
let store: WatchedStore;
let manager: CheckpointManager;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-walk-"));
  store = new WatchedStore();
  manager = new CheckpointManager({ store });
});
afterEach(async () => {
  await manager.close();
  await rm(dir, { recursive: true, force: true });
});

describe("one checkpoint check for validate and export", () => {
  it("skips exactly what validate calls invalid: an output with a valid hash and an unknown codec tag", async () => {
    const a = await putSealed(store, 1, { a: PLAIN });
    const b = await putSealed(store, 2, { a: PLAIN, b: FUTURE }, a);
    const c = await putSealed(store, 3, { a: PLAIN, b: FUTURE, c: PLAIN }, b);

    const invalid = [b.checkpoint_id, c.checkpoint_id];
    for (const id of invalid) expect((await manager.validateCheckpoint(id)).valid).toBe(false);

    const path = join(dir, "run.json");
    await expect(manager.exportPipeline("run1", path)).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
      message: expect.stringContaining("output of stage b does not decode"),
    });
    const report = await manager.exportPipeline("run1", path, { skipCorrupt: true });
    expect(report.checkpointIds).toEqual([a.checkpoint_id]);
    expect(report.skipped).toEqual(
      invalid.map((id) => ({
        checkpointId: id,
        location: null,
        reason: expect.stringContaining("output of stage b does not decode"),
      })),
    );
    const file = JSON.parse(await readFile(path, "utf8")) as { skipped_corrupt: unknown[] };
    expect(file.skipped_corrupt).toHaveLength(2);

    const run = await manager.validateRun("run1");
    expect(run.valid).toBe(false);
    expect(run.summary).toEqual({ listed: 3, valid: 1, invalid: 2, gone: 0, sealed: 0, quarantined: 0 });
    expect(run.checkpoints.filter((v) => v.status === "invalid").map((v) => v.checkpointId)).toEqual(invalid);

    // A single checkpoint is refused for the same reason.
    await expect(manager.exportCheckpoint(b.checkpoint_id, join(dir, "b.json"))).rejects.toMatchObject({
      code: "CAIRN_CORRUPT",
    });
  });

  it("walks a run with one listing, one read per checkpoint and one per output, parents from the listing", async () => {
    let parent: StoredMetadata | undefined;
    const outputs: Record<string, string> = {};
    for (let i = 1; i <= 20; i++) {
      outputs[`s${i}`] = `{"i":${i}}`;
      parent = await putSealed(store, i, { ...outputs }, parent);
    }
    store.gets = 0;
    store.lists = 0;
    store.outputsRead = 0;
    const run = await manager.validateRun("run1");
    expect(run.summary).toEqual({ listed: 20, valid: 20, invalid: 0, gone: 0, sealed: 0, quarantined: 0 });
    expect(store.lists).toBe(1);
    expect(store.gets).toBe(20);
    // Checkpoint k holds k outputs: 210 references, 20 distinct outputs.
    expect(store.outputsRead).toBe(20);
  });

  it("reports an unknown run as not found", async () => {
    await expect(manager.validateRun("nope")).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
    await expect(manager.exportPipeline("nope", join(dir, "x.json"))).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
  });
});

describe("a checkpoint deleted while the run is walked", () => {
  it("is gone, not invalid, when deleted between the listing and its read", async () => {
    const a = await putSealed(store, 1, { a: PLAIN });
    const b = await putSealed(store, 2, { a: PLAIN, b: '{"b":1}' }, a);
    const c = await putSealed(store, 3, { a: PLAIN, b: '{"b":1}', c: '{"c":1}' }, b);
    store.afterList = async () => {
      await store.deleteCheckpoints("run1", [b.checkpoint_id]);
    };
    const run = await manager.validateRun("run1");
    expect(run.valid).toBe(true);
    expect(run.summary).toEqual({ listed: 3, valid: 2, invalid: 0, gone: 1, sealed: 0, quarantined: 0 });
    expect(run.checkpoints.map((v) => [v.checkpointId, v.status])).toEqual([
      [a.checkpoint_id, "valid"],
      [b.checkpoint_id, "gone"],
      [c.checkpoint_id, "valid"],
    ]);

    store.afterList = async () => {
      await store.deleteCheckpoints("run1", [a.checkpoint_id]);
    };
    const report = await manager.exportPipeline("run1", join(dir, "run.json"));
    expect(report.checkpointIds).toEqual([c.checkpoint_id]);
    expect(report.skipped).toEqual([]);
  });

  it("is gone when the run is deleted after its record was read, outputs and all", async () => {
    await putSealed(store, 1, { a: PLAIN });
    store.beforeOutputs = async () => {
      await store.deleteRun("run1");
    };
    const run = await manager.validateRun("run1");
    expect(run.summary).toEqual({ listed: 1, valid: 0, invalid: 0, gone: 1, sealed: 0, quarantined: 0 });
    expect(run.checkpoints[0]?.problems).toEqual([]);
  });
});
