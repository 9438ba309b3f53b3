/**
 * A migration that throws (or returns what cannot be stored) fails the resume with a typed error
 * before anything is written: the stored run is byte for byte what it was, and the next attempt
 * with a fixed migration succeeds. Also the pipeline's `migrateState`.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  MigrationError,
  Pipeline,
  type PipelineOptions,
  type StepDefinition,
  UnserializableValueError,
} from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

const managers: CheckpointManager[] = [];
afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});
function memory(): CheckpointManager {
  const m = new CheckpointManager({ store: new MemoryStore() });
  managers.push(m);
  return m;
}

/** Everything the store holds for a run: every record (metadata, statuses, resume counts, bodies), outputs, lease. */
async function snapshot(manager: CheckpointManager, runId: string): Promise<string> {
  const store = await manager.getStore();
  const records = [];
  for (const entry of await store.listCheckpoints(runId)) {
    records.push(entry.ok ? await store.getCheckpoint(entry.metadata.checkpoint_id) : entry);
  }
  const hashes = (await store.listOutputHashes(runId)).sort();
  const outputs = [...(await store.getOutputs(runId, hashes))];
  return JSON.stringify({
    runs: await store.listPipelineIds(),
    records,
    outputs,
    lease: (await store.getLease(runId)) ?? null,
    head: (await store.getRunHead(runId)) ?? null,
  });
}

function pipeline(
  manager: CheckpointManager,
  calls: string[],
  version: string,
  totals: Partial<StepDefinition>,
  extra: Partial<PipelineOptions> = {},
): Pipeline {
  return new Pipeline({
    name: "mig",
    version,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      {
        name: "totals",
        agent: function totals(inputs: Record<string, unknown>) {
          calls.push("totals");
          return { sum: inputs.base, shape: version };
        },
        ...totals,
      },
      {
        name: "publish",
        inputs: { total: "$totals" },
        agent: function publish(inputs: Record<string, unknown>) {
          calls.push("publish");
          if (failPublish) throw new Error("publish broke");
          return { published: inputs.total, base: inputs.base };
        },
      },
    ],
    ...extra,
  });
}

let failPublish = false;

/** A v1 run whose second stage failed: totals (v1 shape) is stored. */
async function v1Run(manager: CheckpointManager, runId: string): Promise<void> {
  failPublish = true;
  try {
    await expect(
      pipeline(manager, [], "1.0.0", {}).execute({ runId, inputs: { base: 7 } }),
    ).rejects.toMatchObject({ stageName: "publish" });
  } finally {
    failPublish = false;
  }
}

const v2Totals = (migrateOutput: StepDefinition["migrateOutput"]): Partial<StepDefinition> => ({
  outputVersion: 2,
  migrateOutput,
});

describe("a migration that fails", () => {
  it("throws MigrationError naming the stage and versions, and changes nothing stored", async () => {
    const manager = memory();
    await v1Run(manager, "t1");
    const before = await snapshot(manager, "t1");
    const calls: string[] = [];
    const broken = pipeline(
      manager,
      calls,
      "2.0.0",
      v2Totals(() => {
        throw new Error("no sum in this record");
      }),
    );
    const error = await broken.execute({ runId: "t1" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({
      code: "CAIRN_MIGRATION_FAILED",
      stageName: "totals",
      fromVersion: 1,
      toVersion: 2,
      cause: expect.objectContaining({ message: "no sum in this record" }),
    });
    expect((error as Error).message).toMatch(
      /migration of stage totals's output from version 1 to 2 threw: no sum in this record; nothing was written/,
    );
    // The dry run plans with the same migration, so it fails the same way.
    await expect(broken.execute({ runId: "t1", dryRun: true })).rejects.toBeInstanceOf(MigrationError);
    expect(calls).toEqual([]);
    expect(await snapshot(manager, "t1")).toBe(before);

    const fixed = pipeline(
      manager,
      calls,
      "2.0.0",
      v2Totals((output) => ({ ...(output as object), shape: "2.0.0" })),
    );
    const results = await fixed.execute({ runId: "t1" });
    expect(calls).toEqual(["publish"]);
    expect(results.migratedStages).toEqual([{ stageName: "totals", fromVersion: 1, toVersion: 2 }]);
    expect(results.finalOutputs.totals).toEqual({ sum: 7, shape: "2.0.0" });
    expect(results.finalOutputs.publish).toEqual({ published: { sum: 7, shape: "2.0.0" }, base: 7 });
  });

  it("refuses a migrated output the codec cannot store, naming its path, and changes nothing", async () => {
    const manager = memory();
    await v1Run(manager, "t2");
    const before = await snapshot(manager, "t2");
    const bad = pipeline(
      manager,
      [],
      "2.0.0",
      v2Totals((output) => ({ ...(output as object), format: () => "x" })),
    );
    const error = await bad.execute({ runId: "t2" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnserializableValueError);
    expect(error).toMatchObject({ path: "agentOutputs.totals.format" });
    expect(await snapshot(manager, "t2")).toBe(before);
  });

  it("gives the migration a copy: one that edits its argument leaves the checkpoint intact", async () => {
    const manager = memory();
    await v1Run(manager, "t3");
    const before = await snapshot(manager, "t3");
    const editing = pipeline(
      manager,
      [],
      "2.0.0",
      v2Totals((output) => {
        const o = output as { sum: number };
        o.sum = -1;
        throw new Error("gave up half-way");
      }),
    );
    await expect(editing.execute({ runId: "t3" })).rejects.toBeInstanceOf(MigrationError);
    expect(await snapshot(manager, "t3")).toBe(before);
    const checkpoint = await manager.loadLatestCheckpoint("t3");
    expect(checkpoint?.agentOutputs.totals).toEqual({ sum: 7, shape: "1.0.0" });
  });
});

describe("migrateState", () => {
  it("converts the stored inputs of a run written by another pipeline version", async () => {
    const manager = memory();
    await v1Run(manager, "s1");
    const seen: unknown[] = [];
    const calls: string[] = [];
    const p = pipeline(
      manager,
      calls,
      "2.0.0",
      {},
      {
        migrateState: (inputs, from) => {
          seen.push([inputs, from]);
          return { ...inputs, note: "migrated" };
        },
      },
    );
    const results = await p.execute({ runId: "s1" });
    expect(seen).toEqual([[{ base: 7 }, "1.0.0"]]);
    // The inputs changed, so every stage that reads them runs again.
    expect(calls).toEqual(["totals", "publish"]);
    expect(results.finalOutputs.publish).toEqual({ published: { sum: 7, shape: "2.0.0" }, base: 7 });
    const latest = await manager.loadLatestCheckpoint("s1");
    expect(latest?.stateData.inputs).toEqual({ base: 7, note: "migrated" });
  });

  it("is not called with explicit inputs or under the same version; a throw changes nothing", async () => {
    const manager = memory();
    await v1Run(manager, "s2");
    const before = await snapshot(manager, "s2");
    let called = 0;
    const throwing = (version: string) =>
      pipeline(
        manager,
        [],
        version,
        {},
        {
          migrateState: () => {
            called++;
            throw new Error("unknown state shape");
          },
        },
      );
    const error = await throwing("2.0.0")
      .execute({ runId: "s2" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect(error).toMatchObject({ stageName: "state", fromVersion: "1.0.0", toVersion: "2.0.0" });
    expect((error as Error).message).toMatch(
      /migration of the run's state of run s2 from pipeline version 1\.0\.0 to 2\.0\.0 threw: unknown state shape/,
    );
    expect(await snapshot(manager, "s2")).toBe(before);
    expect(called).toBe(1);
    // Same version: the stored inputs are already in its shape.
    await expect(throwing("1.0.0").execute({ runId: "s2", dryRun: true })).resolves.toMatchObject({
      status: "dry_run",
    });
    // Explicit inputs replace the stored ones: nothing to migrate.
    await throwing("2.0.0").execute({ runId: "s2", inputs: { base: 7 } });
    expect(called).toBe(1);
  });

  it("refuses a migrated state that is not an object of storable inputs", async () => {
    const manager = memory();
    await v1Run(manager, "s3");
    const before = await snapshot(manager, "s3");
    for (const [result, cause] of [
      [[1, 2], /migrateState must return an object of inputs, got an array/],
      [{ base: 7, at: () => 1 }, /Cannot checkpoint the value at inputs\.at/],
    ] as const) {
      const p = pipeline(manager, [], "2.0.0", {}, { migrateState: () => result as Record<string, unknown> });
      const error = await p.execute({ runId: "s3" }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MigrationError);
      expect((error as MigrationError).cause).toMatchObject({ message: expect.stringMatching(cause) });
    }
    expect(await snapshot(manager, "s3")).toBe(before);
  });
});
