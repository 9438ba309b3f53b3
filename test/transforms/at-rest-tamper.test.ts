/**
 * Tampering with encrypted records in place, on every store: one character of each envelope
 * field of the newest checkpoint (ciphertext, nonce, compression name, clear outline) or of one
 * of its outputs' ciphertext is changed around cairn. The load refuses it as corrupt, resume
 * falls back to the checkpoint before, and validation names exactly that checkpoint. A changed
 * data key id ("e.k") is corruption even for a reader without keys (the record names a data key
 * that is not its run's); any other change, such a reader is told which key it lacks.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KeyMissingError } from "../../src/core/errors.js";
import { analyzePipeline } from "../../src/debug/analyze.js";
import { ErrorCode } from "../../src/index.js";
import {
  type EnvelopeField,
  flipField,
  outputOf,
  ring,
  stateAfter,
  storedRefs,
  writeRun,
} from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const STAGES = ["fetch", "parse", "score"] as const;
const RUN = "tamper-run";

describe.each(RAW_STORE_KINDS)("tampered encrypted records on the %s store", (kind) => {
  let store: RawStore;
  let ids: string[];
  beforeEach(async () => {
    store = await openRawStore(kind);
    // Compression on too, so the envelopes have a "z" to change.
    ids = await writeRun(store.manager({ encryption: ring(), compression: "gzip" }), RUN, STAGES);
  });
  afterEach(() => store.close());

  /** A reader that has the key ring but no cached key: it reads what the store holds now. */
  const reader = () => store.manager({ encryption: ring() });

  /** Load refuses the newest checkpoint as corrupt, resume takes the one before, validate names it. */
  async function expectRefusedAndFallBack(): Promise<void> {
    const newest = ids[2] as string;
    const manager = reader();
    await expect(manager.loadCheckpoint(newest)).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    const resumed = await manager.loadLatestCheckpoint(RUN);
    expect(resumed?.metadata.checkpointId).toBe(ids[1]);
    expect(resumed?.stateData).toEqual(stateAfter("parse"));
    expect(resumed?.agentOutputs).toEqual({ fetch: outputOf("fetch"), parse: outputOf("parse") });
    const validation = await manager.validateRun(RUN);
    expect(validation.valid).toBe(false);
    expect(validation.checkpoints.map((c) => [c.checkpointId, c.status])).toEqual([
      [ids[0], "valid"],
      [ids[1], "valid"],
      [newest, "invalid"],
    ]);
    expect(validation.checkpoints[2]?.problems.length).toBeGreaterThan(0);
    expect((await manager.validateCheckpoint(newest)).valid).toBe(false);
  }

  const fields: EnvelopeField[] = ["d", "e.n", "e.k", "z", "o"];
  it.each(fields)("a checkpoint's %s: refused as corrupt", async (field) => {
    const newest = ids[2] as string;
    const stored = await store.body(newest);
    const tampered = flipField(stored, field);
    expect(tampered).not.toBe(stored);
    expect(tampered.length).toBe(stored.length);
    await store.setBody(newest, tampered);
    await expectRefusedAndFallBack();
  });

  it("an output's d: refused as corrupt", async () => {
    const newest = ids[2] as string;
    // The score output is referenced by the newest checkpoint only.
    const hash = storedRefs(await store.body(newest)).score as string;
    const stored = (await store.outputs(RUN)).get(hash) as string;
    expect(stored).toContain('"e":{');
    await store.setOutput(RUN, hash, flipField(stored, "d"));
    await expectRefusedAndFallBack();
  });

  // Analyze reads every stored output of the run in one batch to size them: one output that fails
  // authentication must fail only the checkpoints that reference it, not the whole analysis.
  it("analyze lists a checkpoint whose output was changed as corrupted", async () => {
    const newest = ids[2] as string;
    const hash = storedRefs(await store.body(newest)).score as string;
    await store.setOutput(RUN, hash, flipField((await store.outputs(RUN)).get(hash) as string, "d"));
    const analysis = await analyzePipeline(reader(), RUN);
    expect(analysis.corrupted.map((c) => c.checkpointId)).toEqual([newest]);
  });

  it("the untampered run loads, resumes and validates (the control)", async () => {
    const manager = reader();
    expect((await manager.loadLatestCheckpoint(RUN))?.metadata.checkpointId).toBe(ids[2]);
    expect((await manager.validateRun(RUN)).valid).toBe(true);
  });

  it("seen without keys: a changed key id is corrupt, a changed ciphertext needs the key", async () => {
    const newest = ids[2] as string;
    const stored = await store.body(newest);
    const keyless = store.manager();
    // The record's data key id is checked against the run's key record, which needs no key.
    await store.setBody(newest, flipField(stored, "e.k"));
    await expect(keyless.loadCheckpoint(newest)).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    expect((await keyless.validateCheckpoint(newest)).valid).toBe(false);
    // A changed ciphertext cannot be told without the key: the key is named, nothing is called damage.
    await store.setBody(newest, flipField(stored, "d"));
    const missing = {
      code: ErrorCode.KeyMissing,
      keyId: "k1",
      kind: "key-encryption-key",
    } as Partial<KeyMissingError>;
    await expect(keyless.loadCheckpoint(newest)).rejects.toMatchObject(missing);
    await expect(keyless.validateRun(RUN)).rejects.toMatchObject(missing);
    await expect(keyless.loadLatestCheckpoint(RUN)).rejects.toMatchObject(missing);
  });
});
