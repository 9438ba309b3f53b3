/**
 * Secure deletion, on every store: deleting an encrypted run destroys its key record, so a copy
 * of its records taken before (bodies and outputs exactly as stored) no longer decrypts with the
 * key ring, even put back into the store: the data key is gone (`KeyMissingError`, kind
 * `data-key`). The key record leaves no trace in the store's raw bytes. Both ways a run is
 * deleted: `cleanupPipelines` and retention removing a whole run.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KeyMissingError } from "../../src/core/errors.js";
import { ErrorCode } from "../../src/index.js";
import type { ImportedCheckpoint } from "../../src/stores/types.js";
import { markerTraces, outputOf, ring, stateAfter, storedRefs, writeRun } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const RUN = "doomed-run";
const OLD = new Date("2020-01-01T00:00:00Z");

describe.each(RAW_STORE_KINDS)("secure deletion on the %s store", (kind) => {
  let store: RawStore;
  beforeEach(async () => {
    store = await openRawStore(kind);
  });
  afterEach(() => store.close());

  /** The run's records and outputs exactly as stored, read below the at-rest layer. */
  async function copyRun(ids: readonly string[]): Promise<ImportedCheckpoint[]> {
    const inner = (await store.manager().getStore()).inner;
    const copies: ImportedCheckpoint[] = [];
    for (const id of ids) {
      const record = await inner.getCheckpoint(id);
      if (!record) throw new Error(`no checkpoint ${id}`);
      const hashes = Object.values(storedRefs(record.body));
      const outputs = await inner.getOutputs(RUN, hashes);
      copies.push({ record, outputs: hashes.map((hash) => ({ hash, body: outputs.get(hash) as string })) });
    }
    return copies;
  }

  const deletions = [
    ["cleanupPipelines", async () => store.manager().cleanupPipelines([RUN], { force: true })],
    ["retention", async () => store.manager().cleanupOldCheckpoints({ retentionDays: 30 })],
  ] as const;

  it.each(deletions)("after %s, a copy taken before no longer decrypts", async (_how, remove) => {
    const writer = store.manager({ encryption: ring(), clock: () => OLD });
    const ids = await writeRun(writer, RUN, ["fetch", "parse"]);
    const keyRecord = (await store.runKey(RUN)) as string;
    const { id: dataKeyId, w: wrapped } = JSON.parse(keyRecord) as { id: string; w: string };
    const copies = await copyRun(ids);
    // While the run exists, the copy is what the key ring reads.
    expect((await store.manager({ encryption: ring() }).loadCheckpoint(ids[1] as string)).stateData).toEqual(
      stateAfter("parse"),
    );

    await remove();
    expect(await store.runKey(RUN)).toBeUndefined();
    // No trace of the key record (its wrapped key) nor of the run's data in the raw bytes.
    const dump = await store.dump();
    expect(markerTraces(dump, wrapped)).toEqual([]);
    expect(markerTraces(dump, dataKeyId)).toEqual([]);
    expect((await store.manager().listPipelines()).map((p) => p.pipelineId)).not.toContain(RUN);

    // Put the copy back as it was stored, below the at-rest layer.
    const inner = (await store.manager().getStore()).inner;
    for (const { record, outputs } of copies) await inner.putCheckpoint(record, outputs);
    const reader = store.manager({ encryption: ring("k1", "k2") });
    const gone = {
      code: ErrorCode.KeyMissing,
      keyId: dataKeyId,
      kind: "data-key",
    } as Partial<KeyMissingError>;
    for (const id of ids) await expect(reader.loadCheckpoint(id)).rejects.toMatchObject(gone);
    await expect(reader.loadLatestCheckpoint(RUN)).rejects.toMatchObject(gone);
    await expect(reader.validateRun(RUN)).rejects.toMatchObject(gone);
    // The outlines are in the clear: listing still works, content does not.
    expect((await reader.getRunSummary(RUN))?.checkpointCount).toBe(2);
  });

  it("a run written again after its deletion gets a new data key", async () => {
    const writer = store.manager({ encryption: ring() });
    await writeRun(writer, RUN, ["fetch"]);
    const first = JSON.parse((await store.runKey(RUN)) as string) as { id: string };
    await writer.cleanupPipelines([RUN], { force: true });
    const [id] = await writeRun(writer, RUN, ["fetch"]);
    const second = JSON.parse((await store.runKey(RUN)) as string) as { id: string };
    expect(second.id).not.toBe(first.id);
    const loaded = await store.manager({ encryption: ring() }).loadCheckpoint(id as string);
    expect(loaded.agentOutputs).toEqual({ fetch: outputOf("fetch") });
  });

  it("retention trimming part of a run keeps the key record: the rest reads", async () => {
    const ids = await writeRun(store.manager({ encryption: ring(), clock: () => OLD }), RUN, [
      "fetch",
      "parse",
    ]);
    await writeRun(store.manager({ encryption: ring() }), RUN, ["fetch", "parse", "score"]);
    const report = await store.manager().cleanupOldCheckpoints({ retentionDays: 30 });
    expect(report.removedRuns).toEqual([]);
    expect(report.deletedCheckpoints.map((c) => c.checkpointId)).toEqual(ids);
    expect(await store.runKey(RUN)).toBeDefined();
    const latest = await store.manager({ encryption: ring() }).loadLatestCheckpoint(RUN);
    expect(latest?.stateData).toEqual(stateAfter("score"));
  });
});
