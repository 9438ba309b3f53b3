/**
 * `manager.rekey`: write with k1, make k2 active, re-wrap, drop k1 from the ring, read everything.
 * Runs on every store that holds run key records (a store without them is a visible skip).
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions, ErrorCode } from "../../src/index.js";
import { parseKeyRecord } from "../../src/transforms/data-key.js";
import { storeUrls } from "../support/store-urls.js";

const { urls } = storeUrls("rekey", { memory: true });
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const k3 = randomBytes(32);
const STAGES = ["a", "b", "c"];

/** Writes a three-stage run whose state and outputs carry `marker`. */
async function writeRun(manager: CheckpointManager, pipelineId: string, marker: string): Promise<void> {
  for (const [i, stage] of STAGES.entries()) {
    await manager.createCheckpoint({
      pipelineId,
      pipelineName: "rot",
      stageName: stage,
      stageIndex: i,
      stateData: { marker, i },
      completedStages: STAGES.slice(0, i + 1),
      pendingStages: STAGES.slice(i + 1),
      agentOutputs: Object.fromEntries(STAGES.slice(0, i + 1).map((s) => [s, { marker, s }])),
    });
  }
}

/** Every run reads back and validates with `manager`. */
async function readsEverything(manager: CheckpointManager, runs: readonly string[]): Promise<void> {
  for (const run of runs) {
    const latest = await manager.loadLatestCheckpoint(run);
    expect(latest?.stateData).toEqual({ marker: `m-${run}`, i: 2 });
    expect(latest?.agentOutputs.b).toEqual({ marker: `m-${run}`, s: "b" });
    const validation = await manager.validateRun(run);
    expect(validation.summary.invalid).toBe(0);
    expect(validation.summary.valid).toBe(3);
  }
}

async function failure(promise: Promise<unknown>): Promise<Error & { code?: string; keyId?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: string; keyId?: string };
  }
  throw new Error("expected a rejection");
}

describe.each(Object.keys(urls))("rekey (%s)", (name) => {
  const open = (options: Omit<CheckpointManagerOptions, "store">) =>
    new CheckpointManager({ store: (urls[name] as () => string)(), ...options });
  /** Whether the store holds run key records (file, postgres and redis get them in another branch). */
  const holdsKeys = async () => {
    const plain = open({});
    try {
      return (await plain.getStore()).getRunKey !== undefined;
    } finally {
      await plain.close();
    }
  };

  it("re-wraps every run under the new key; the old key can then leave the ring", async (ctx) => {
    if (!(await holdsKeys())) ctx.skip(`the ${name} store has no run key records yet`);
    const first = open({ encryption: { keys: { k1 }, activeKeyId: "k1" } });
    const runs = ["r1", "r2", "r3"];
    try {
      for (const run of runs) await writeRun(first, run, `m-${run}`);
    } finally {
      await first.close();
    }
    // A plaintext run beside them: nothing to re-wrap.
    const plain = open({});
    await writeRun(plain, "plain", "m-plain");
    await plain.close();

    const rotating = open({ encryption: { keys: { k1, k2 }, activeKeyId: "k2" } });
    const progress: [number, number][] = [];
    try {
      const report = await rotating.rekey({ onProgress: (done, total) => progress.push([done, total]) });
      expect(report).toEqual({ toKeyId: "k2", runs: 4, rewrapped: 3, alreadyCurrent: 0, plaintext: 1 });
      expect(progress).toEqual([
        [1, 4],
        [2, 4],
        [3, 4],
        [4, 4],
      ]);
      const kek = async (run: string) =>
        parseKeyRecord(run, (await (await rotating.getStore()).getRunKey?.(run)) ?? "").kek;
      for (const run of runs) expect(await kek(run)).toBe("k2");
      // Re-running does nothing more: every run is already under k2.
      expect(await rotating.rekey()).toMatchObject({ rewrapped: 0, alreadyCurrent: 3, plaintext: 1 });
    } finally {
      await rotating.close();
    }

    const after = open({ encryption: { keys: { k2 }, activeKeyId: "k2" } });
    try {
      await readsEverything(after, runs);
      expect((await after.loadLatestCheckpoint("plain"))?.stateData).toEqual({ marker: "m-plain", i: 2 });
      // New writes to a re-wrapped run keep its data key, now under k2.
      await after.createCheckpoint({
        pipelineId: "r1",
        stageName: "d",
        stageIndex: 3,
        stateData: { more: 1 },
      });
      expect((await after.loadLatestCheckpoint("r1"))?.stateData).toEqual({ more: 1 });
    } finally {
      await after.close();
    }
    // Without k1, a ring only holding the old key cannot read: the runs are no longer under k1.
    const old = open({ encryption: { keys: { k1 }, activeKeyId: "k1" } });
    try {
      const error = await failure(
        old.loadCheckpoint((await old.getCheckpointHistory("r2"))[0]?.checkpointId ?? ""),
      );
      expect(error.code).toBe(ErrorCode.KeyMissing);
      expect(error.keyId).toBe("k2");
    } finally {
      await old.close();
    }
  });

  it("re-wraps one run to a named key, and refuses without a ring or with an unknown key", async (ctx) => {
    if (!(await holdsKeys())) ctx.skip(`the ${name} store has no run key records yet`);
    const writer = open({ encryption: { keys: { k1 }, activeKeyId: "k1" } });
    await writeRun(writer, "one-a", "m-one-a");
    await writeRun(writer, "one-b", "m-one-b");
    await writer.close();
    const ring = open({ encryption: { keys: { k1, k3 }, activeKeyId: "k1" } });
    try {
      const report = await ring.rekey({ pipelineId: "one-a", toKeyId: "k3" });
      expect(report).toEqual({ toKeyId: "k3", runs: 1, rewrapped: 1, alreadyCurrent: 0, plaintext: 0 });
      const store = await ring.getStore();
      expect(parseKeyRecord("one-b", (await store.getRunKey?.("one-b")) ?? "").kek).toBe("k1");
      const missing = await failure(ring.rekey({ toKeyId: "k9" }));
      expect(missing.code).toBe(ErrorCode.KeyMissing);
      expect(missing.keyId).toBe("k9");
      expect((await failure(ring.rekey({ pipelineId: "no-such-run" }))).code).toBe(ErrorCode.NotFound);
    } finally {
      await ring.close();
    }
    const only3 = open({ encryption: { keys: { k3 }, activeKeyId: "k3" } });
    try {
      await readsEverything(only3, ["one-a"]);
      // A run still under k1 names the key it needs.
      const error = await failure(only3.rekey());
      expect(error.code).toBe(ErrorCode.KeyMissing);
      expect(error.keyId).toBe("k1");
    } finally {
      await only3.close();
    }
    const none = open({});
    try {
      expect((await failure(none.rekey())).code).toBe(ErrorCode.InvalidArgument);
    } finally {
      await none.close();
    }
  });
});
