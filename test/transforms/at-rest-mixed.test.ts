/**
 * Mixed history and readers without keys, on every store. One run written by three managers in
 * turn (plain, compressed, encrypted), then resumed by an encrypting manager: it resumes from the
 * newest, validates, and every checkpoint reads back equal, also for a reader with the keys and
 * no other setting. A reader without keys still lists, counts, summarises and cleans up an
 * encrypted run (the outlines are in the clear), and is refused content with the key id it lacks,
 * never with corruption.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KeyMissingError } from "../../src/core/errors.js";
import { ErrorCode } from "../../src/index.js";
import { outputOf, ring, stateAfter, writeRun, writeStage } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const STAGES = ["plain", "packed", "sealed", "resumed"] as const;
const RUN = "mixed-run";
const outputsThrough = (i: number) => Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, outputOf(s)]));

describe.each(RAW_STORE_KINDS)("mixed history on the %s store", (kind) => {
  let store: RawStore;
  beforeEach(async () => {
    store = await openRawStore(kind);
  });
  afterEach(() => store.close());

  it("plain, compressed, encrypted: resumes from the newest, validates, reads equal", async () => {
    const ids = [
      await writeStage(store.manager(), RUN, STAGES, 0),
      await writeStage(store.manager({ compression: "brotli" }), RUN, STAGES, 1),
      await writeStage(store.manager({ encryption: ring() }), RUN, STAGES, 2),
    ];
    // Each is stored as its writer was set up.
    const bodies = await Promise.all(ids.map((id) => store.body(id)));
    expect(bodies[0]).toMatch(/^\{"completed_stages"/);
    expect(bodies[1]).toMatch(/^\{"\$cairn":"rest","v":1,"z":"brotli","d"/);
    expect(bodies[2]).toMatch(/^\{"\$cairn":"rest","v":1,"e":\{/);

    const resumer = store.manager({ encryption: ring(), compression: "gzip" });
    const context = await resumer.resumePipeline(RUN);
    expect(context?.checkpointId).toBe(ids[2]);
    expect(context?.resumeFromStage).toBe("resumed");
    expect(context?.stateData).toEqual(stateAfter("sealed"));
    expect(context?.agentOutputs).toEqual(outputsThrough(2));
    ids.push(await writeStage(resumer, RUN, STAGES, 3));
    expect(await store.body(ids[3] as string)).toMatch(/^\{"\$cairn":"rest","v":1,"z":"gzip","e":\{/);

    // A reader with the keys and no other setting reads every one of them.
    const reader = store.manager({ encryption: ring() });
    const validation = await reader.validateRun(RUN);
    expect(validation.valid).toBe(true);
    expect(validation.summary.valid).toBe(4);
    for (const [i, id] of ids.entries()) {
      const loaded = await reader.loadCheckpoint(id);
      expect(loaded.stateData).toEqual(stateAfter(STAGES[i] as string));
      expect(loaded.agentOutputs).toEqual(outputsThrough(i));
    }
    // A reader without keys reads the plain and compressed ones, and is refused the others.
    const keyless = store.manager();
    expect((await keyless.loadCheckpoint(ids[1] as string)).agentOutputs).toEqual(outputsThrough(1));
    await expect(keyless.loadCheckpoint(ids[2] as string)).rejects.toMatchObject({
      code: ErrorCode.KeyMissing,
    });
  });

  it("without keys: list, stats, summary and cleanup work; content names the key", async () => {
    const ids = await writeRun(store.manager({ encryption: ring(), compression: "gzip" }), RUN);
    const keyless = store.manager();
    expect((await keyless.listPipelines()).map((p) => [p.pipelineId, p.checkpointCount])).toEqual([[RUN, 3]]);
    const summary = await keyless.getRunSummary(RUN);
    expect(summary).toMatchObject({
      checkpointCount: 3,
      corruptCount: 0,
      completedStages: 3,
      totalStages: 3,
    });
    expect(summary?.latestCheckpointId).toBe(ids[2]);
    const stats = await keyless.getStatistics();
    expect(stats).toMatchObject({ totalCheckpoints: 3 });
    expect((await keyless.getCheckpointHistory(RUN)).length).toBe(3);
    expect((await keyless.listRun(RUN)).every((entry) => entry.ok)).toBe(true);

    const missing = {
      code: ErrorCode.KeyMissing,
      keyId: "k1",
      kind: "key-encryption-key",
    } as Partial<KeyMissingError>;
    await expect(keyless.loadCheckpoint(ids[0] as string)).rejects.toMatchObject(missing);
    await expect(keyless.loadCheckpoint(ids[0] as string)).rejects.toThrow(/key id k1/);
    await expect(keyless.validateCheckpoint(ids[0] as string)).rejects.toMatchObject(missing);
    await expect(keyless.validateRun(RUN)).rejects.toMatchObject(missing);
    await expect(keyless.loadLatestCheckpoint(RUN)).rejects.toMatchObject(missing);
    // A ring without the run's key is the same: k2 is no help.
    const wrongRing = store.manager({ encryption: ring("k2") });
    await expect(wrongRing.loadCheckpoint(ids[2] as string)).rejects.toMatchObject(missing);

    // Retention without keys: a dry run plans, the real one deletes the run and its key.
    const plan = await keyless.cleanupOldCheckpoints({ retentionDays: 0, dryRun: true });
    expect(plan.removedRuns).toEqual([RUN]);
    expect(await store.runKey(RUN)).toBeDefined();
    const done = await keyless.cleanupPipelines([RUN], { force: true });
    expect(done.deleted.map((d) => d.pipelineId)).toEqual([RUN]);
    expect(await store.runKey(RUN)).toBeUndefined();
  });

  it("retention without keys removes a whole old run", async () => {
    await writeRun(store.manager({ encryption: ring(), clock: () => new Date("2020-01-01T00:00:00Z") }), RUN);
    const report = await store.manager().cleanupOldCheckpoints({ retentionDays: 30 });
    expect(report.removedRuns).toEqual([RUN]);
    expect(await store.runKey(RUN)).toBeUndefined();
  });
});
