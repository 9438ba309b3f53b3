/**
 * Ciphertext moved around, on every store: two outputs' stored texts swapped between two runs,
 * or between two records of one run, and a checkpoint body copied over another's. Each
 * ciphertext is bound to its run and its address or checkpoint id, so every move is refused
 * as corrupt, while what was not moved still loads.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/index.js";
import { outputOf, ring, stateAfter, storedRefs, writeRun } from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

const STAGES = ["fetch", "parse", "score"] as const;
const corrupt = { code: ErrorCode.Corrupt };

describe.each(RAW_STORE_KINDS)("moved ciphertext on the %s store", (kind) => {
  let store: RawStore;
  let a: string[];
  let b: string[];
  beforeEach(async () => {
    store = await openRawStore(kind);
    const writer = store.manager({ encryption: ring() });
    a = await writeRun(writer, "run-a", STAGES);
    b = await writeRun(writer, "run-b", STAGES);
  });
  afterEach(() => store.close());

  const reader = () => store.manager({ encryption: ring() });

  /** The stored output of `stage` in `run`, by its address in the newest checkpoint. */
  async function outputAt(run: string, newest: string, stage: string): Promise<[string, string]> {
    const hash = storedRefs(await store.body(newest))[stage] as string;
    const text = (await store.outputs(run)).get(hash);
    if (text === undefined) throw new Error(`no stored output of ${stage} in ${run}`);
    return [hash, text];
  }

  it("outputs swapped between two runs: refused in both", async () => {
    const [hashA, textA] = await outputAt("run-a", a[2] as string, "fetch");
    const [hashB, textB] = await outputAt("run-b", b[2] as string, "fetch");
    // Same content, but each run addresses and encrypts it under its own data key.
    expect(hashA).not.toBe(hashB);
    await store.setOutput("run-a", hashA, textB);
    await store.setOutput("run-b", hashB, textA);
    const manager = reader();
    for (const id of [...a, ...b]) await expect(manager.loadCheckpoint(id)).rejects.toMatchObject(corrupt);
    expect((await manager.validateRun("run-a")).summary.invalid).toBe(3);
    expect(await manager.loadLatestCheckpoint("run-b")).toBeUndefined();
  });

  it("outputs swapped between two records of one run: refused", async () => {
    const [fetchHash, fetchText] = await outputAt("run-a", a[2] as string, "fetch");
    const [scoreHash, scoreText] = await outputAt("run-a", a[2] as string, "score");
    await store.setOutput("run-a", fetchHash, scoreText);
    await store.setOutput("run-a", scoreHash, fetchText);
    const manager = reader();
    // Every checkpoint references the fetch output; the newest the score output too.
    for (const id of a) await expect(manager.loadCheckpoint(id)).rejects.toMatchObject(corrupt);
    // The other run is untouched.
    const other = await manager.loadLatestCheckpoint("run-b");
    expect(other?.agentOutputs).toEqual(Object.fromEntries(STAGES.map((s) => [s, outputOf(s)])));
  });

  it("a checkpoint body copied over another's, in one run or across runs: refused", async () => {
    const [first, second] = a as [string, string];
    await store.setBody(second, await store.body(first));
    await store.setBody(b[0] as string, await store.body(a[2] as string));
    const manager = reader();
    await expect(manager.loadCheckpoint(second)).rejects.toMatchObject(corrupt);
    await expect(manager.loadCheckpoint(b[0] as string)).rejects.toMatchObject(corrupt);
    // The originals still load.
    expect((await manager.loadCheckpoint(first)).stateData).toEqual(stateAfter("fetch"));
    expect((await manager.loadCheckpoint(a[2] as string)).stateData).toEqual(stateAfter("score"));
  });
});
