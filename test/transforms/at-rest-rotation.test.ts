/**
 * Key rotation at the library level, on every store: runs written under k1 are re-wrapped under
 * k2 by `rekey` (one key record per run; no record or output is rewritten), after which a ring
 * without k1 reads and validates everything, a ring with only k1 is told it lacks k2, and a
 * second `rekey` finds nothing to do. A writer that opened the run before the rotation keeps
 * writing records the new ring reads.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KeyMissingError } from "../../src/core/errors.js";
import { ErrorCode } from "../../src/index.js";
import { markerTraces, outputOf, ring, stateAfter, writeRun, writeStage } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const STAGES = ["fetch", "parse", "score"] as const;
const RUNS = ["run-1", "run-2"];

describe.each(RAW_STORE_KINDS)("key rotation on the %s store", (kind) => {
  let store: RawStore;
  beforeEach(async () => {
    store = await openRawStore(kind);
  });
  afterEach(() => store.close());

  it("write with k1, rekey to k2, drop k1, read everything", async () => {
    const writer = store.manager({ encryption: ring("k1"), compression: "gzip" });
    const ids = new Map<string, string[]>();
    for (const run of RUNS) ids.set(run, await writeRun(writer, run, STAGES.slice(0, 2)));
    ids.set("plain-run", await writeRun(store.manager(), "plain-run", STAGES.slice(0, 2)));
    const before = new Map(await Promise.all(RUNS.map(async (r) => [r, await store.runKey(r)] as const)));
    const bodies = await Promise.all([...ids.values()].flat().map((id) => store.body(id)));

    const rotator = store.manager({ encryption: ring("k2", "k1") });
    const report = await rotator.rekey();
    expect(report).toMatchObject({ runs: 3, rewrapped: 2, alreadyCurrent: 0, plaintext: 1 });
    const dump = await store.dump();
    for (const run of RUNS) {
      const was = JSON.parse(before.get(run) as string) as { id: string; w: string };
      const now = JSON.parse((await store.runKey(run)) as string) as { id: string; kek: string };
      // The same data key, wrapped under k2: the records are as they were.
      expect(now).toMatchObject({ id: was.id, kek: "k2" });
      // The data key wrapped under k1 is gone from the raw bytes: a leaked k1 no longer opens it.
      expect(markerTraces(dump, was.w)).toEqual([]);
    }
    expect(await Promise.all([...ids.values()].flat().map((id) => store.body(id)))).toEqual(bodies);

    // The writer opened the runs before the rotation: it goes on with the same data key.
    ids.get("run-1")?.push(await writeStage(writer, "run-1", STAGES, 2));

    const reader = store.manager({ encryption: ring("k2") });
    for (const [run, written] of ids) {
      expect((await reader.validateRun(run)).valid).toBe(true);
      for (const [i, id] of written.entries()) {
        const loaded = await reader.loadCheckpoint(id);
        expect(loaded.stateData).toEqual(stateAfter(STAGES[i] as string));
        expect(loaded.agentOutputs[STAGES[i] as string]).toEqual(outputOf(STAGES[i] as string));
      }
    }
    // A ring that has only the old key is told which key it lacks.
    const stale = store.manager({ encryption: ring("k1") });
    const missing = {
      code: ErrorCode.KeyMissing,
      keyId: "k2",
      kind: "key-encryption-key",
    } as Partial<KeyMissingError>;
    await expect(stale.loadCheckpoint(ids.get("run-2")?.[0] as string)).rejects.toMatchObject(missing);

    // Again: nothing left to do.
    expect(await rotator.rekey()).toMatchObject({ runs: 3, rewrapped: 0, alreadyCurrent: 2 });
  });

  it("rekey of one run leaves the others under k1", async () => {
    const writer = store.manager({ encryption: ring("k1") });
    for (const run of RUNS) await writeRun(writer, run, STAGES.slice(0, 1));
    const report = await store.manager({ encryption: ring("k2", "k1") }).rekey({
      pipelineId: "run-1",
    });
    expect(report).toMatchObject({ runs: 1, rewrapped: 1 });
    expect(JSON.parse((await store.runKey("run-1")) as string)).toMatchObject({ kek: "k2" });
    expect(JSON.parse((await store.runKey("run-2")) as string)).toMatchObject({ kek: "k1" });
    const reader = store.manager({ encryption: ring("k2") });
    expect((await reader.loadLatestCheckpoint("run-1"))?.stateData).toEqual(stateAfter("fetch"));
    await expect(reader.loadLatestCheckpoint("run-2")).rejects.toMatchObject({
      code: ErrorCode.KeyMissing,
      keyId: "k1",
    });
  });
});
