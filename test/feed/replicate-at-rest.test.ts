/**
 * Encrypted and compressed runs replicate as they are stored: the replicator holds no keys, the
 * target gets the same texts and the run's key record, and a manager with the same key ring
 * reads the replica. What can be checked without the key is checked: a record naming another
 * data key, or compressed data that does not decompress or match its checksum, is not copied.
 */
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { isEnvelope } from "../../src/core/sealed.js";
import { CheckpointManager, type CheckpointManagerOptions, replicate } from "../../src/index.js";
import { type MemoryStore, sharedMemoryStore } from "../../src/stores/memory/memory-store.js";
import { flipField, ring } from "../support/at-rest-runs.js";
import { expectSameRuns, writeRun, writeStage } from "../support/replica.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

function manager(store: string, options: Omit<CheckpointManagerOptions, "store"> = {}): CheckpointManager {
  const m = new CheckpointManager({ store, ...options });
  managers.push(m);
  return m;
}

function pair() {
  const tag = randomBytes(4).toString("hex");
  return {
    from: `memory:src-${tag}`,
    to: `memory:dst-${tag}`,
    source: sharedMemoryStore(`src-${tag}`),
    target: sharedMemoryStore(`dst-${tag}`),
  };
}

/** Replaces a stored record's body behind the store's back. */
function setBody(
  store: MemoryStore,
  pipelineId: string,
  checkpointId: string,
  edit: (body: string) => string,
) {
  const runs = (store as unknown as { runs: Map<string, { checkpoints: Map<string, { body: string }> }> })
    .runs;
  const record = runs.get(pipelineId)?.checkpoints.get(checkpointId);
  if (!record) throw new Error(`no ${checkpointId}`);
  record.body = edit(record.body);
}

describe("replicate: encrypted and compressed runs", () => {
  it("copies an encrypted, compressed run as stored, with its key record; the replica reads with the same key", async () => {
    const { from, to, source, target } = pair();
    const writer = manager(from, { encryption: ring(), compression: "gzip" });
    const ids = await writeRun(writer, "run-enc", 3);
    await writeRun(writer, "run-enc2", 2);
    const report = await replicate({ from, to });
    expect(report).toMatchObject({ checkpointsCopied: 5, corrupt: [], diverged: [] });
    await expectSameRuns(source, target);
    expect(isEnvelope((await target.getCheckpoint(ids[0] as string))?.body ?? "")).toBe(true);
    expect(await target.getRunKey("run-enc")).toBe(await source.getRunKey("run-enc"));

    const reader = manager(to, { encryption: ring() });
    const validation = await reader.validateRun("run-enc");
    expect(validation.valid).toBe(true);
    const loaded = await reader.loadCheckpoint(ids[2] as string);
    const original = await manager(from, { encryption: ring() }).loadCheckpoint(ids[2] as string);
    expect(loaded.stateData).toEqual(original.stateData);
    expect({ ...loaded.agentOutputs }).toEqual({ ...original.agentOutputs });
    // Without the key ring the replica is as unreadable as the source.
    await expect(manager(to).loadCheckpoint(ids[2] as string)).rejects.toMatchObject({
      code: "CAIRN_KEY_MISSING",
    });

    // Later writes follow through the feed, still without keys.
    await writeRun(writer, "run-enc3", 2);
    const more = await replicate({ from, to });
    expect(more).toMatchObject({ syncs: 0, checkpointsCopied: 2, corrupt: [] });
    await expectSameRuns(source, target);
    expect((await reader.validateRun("run-enc3")).valid).toBe(true);
  });

  it("a rekey on the source reaches the replica with the run's next change", async () => {
    const { from, to, source, target } = pair();
    await writeRun(manager(from, { encryption: ring() }), "run-rk", 2);
    await replicate({ from, to });
    const rotator = manager(from, { encryption: ring("k2", "k1") });
    expect(await rotator.rekey()).toMatchObject({ rewrapped: 1 });
    await writeStage(rotator, "run-rk", ["stage1", "stage2", "stage3"], 2);
    expect(await replicate({ from, to })).toMatchObject({ checkpointsCopied: 1, diverged: [] });
    expect(await target.getRunKey("run-rk")).toBe(await source.getRunKey("run-rk"));
    // Readable on the replica without the old key-encryption key.
    expect((await manager(to, { encryption: ring("k2") }).validateRun("run-rk")).valid).toBe(true);
  });

  it("refuses an encrypted record that names another data key than its run's", async () => {
    const { from, to, source, target } = pair();
    const ids = await writeRun(manager(from, { encryption: ring() }), "run-k", 3);
    setBody(source, "run-k", ids[1] as string, (body) => flipField(body, "e.k"));
    const report = await replicate({ from, to });
    expect(report.corrupt.map((p) => p.checkpointId)).toEqual([ids[1]]);
    expect(report.corrupt[0]?.message).toMatch(/data key/);
    expect((await target.listCheckpoints("run-k")).map((e) => e.ok && e.metadata.checkpoint_id)).toEqual([
      ids[0],
      ids[2],
    ]);
  });

  it("refuses an encrypted record whose output is missing from the source", async () => {
    const { from, to, source, target } = pair();
    const ids = await writeRun(manager(from, { encryption: ring() }), "run-m", 2);
    const outline = JSON.parse((await source.getCheckpoint(ids[1] as string))?.body ?? "{}") as {
      o: { output_refs: Record<string, string> };
    };
    // The output only the newest checkpoint refers to.
    await source.deleteOutputs("run-m", [outline.o.output_refs.stage2 as string]);
    const report = await replicate({ from, to });
    expect(report.corrupt.map((p) => p.checkpointId)).toEqual([ids[1]]);
    expect(report.corrupt[0]?.message).toMatch(/missing/);
    expect(await target.listCheckpoints("run-m")).toHaveLength(1);
  });

  it("copies a compressed run as stored; one that does not decompress is not copied", async () => {
    const { from, to, source, target } = pair();
    const ids = await writeRun(manager(from, { compression: "gzip" }), "run-z", 3);
    const stored = (await source.getCheckpoint(ids[0] as string))?.body ?? "";
    expect(isEnvelope(stored)).toBe(true);
    setBody(source, "run-z", ids[2] as string, (body) => flipField(body, "d"));
    const report = await replicate({ from, to });
    expect(report.corrupt.map((p) => p.checkpointId)).toEqual([ids[2]]);
    expect(await target.listCheckpoints("run-z")).toHaveLength(2);
    expect((await target.getCheckpoint(ids[0] as string))?.body).toBe(stored);
    const reader = manager(to);
    expect((await reader.loadCheckpoint(ids[1] as string)).stateData).toMatchObject({ step: 1 });
    expect((await target.listCheckpoints("run-z")).length).toBe(2);
  });
});
