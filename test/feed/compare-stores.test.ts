/**
 * `compareStores` on the memory, sqlite and file stores: a raw copy compares equal (encrypted runs
 * too, without keys); each kind of difference is reported on the side that has it; filters limit
 * the runs compared.
 */
import { describe, expect, it } from "vitest";
import { CheckpointManager, compareStores } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import type { CheckpointStore, ImportedCheckpoint } from "../../src/stores/types.js";
import { ring, writeRun } from "../support/at-rest-runs.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("compare-stores");

/** Two fresh locations of one store kind. */
function pair(kind: string, tag: string): [string, string] {
  const n = `${tag}-${Math.random().toString(36).slice(2, 8)}`;
  if (kind === "memory") return [`memory:${n}-a`, `memory:${n}-b`];
  if (kind === "sqlite") return [`sqlite:${dir()}/${n}-a.db`, `sqlite:${dir()}/${n}-b.db`];
  return [`file:${dir()}/${n}-a`, `file:${dir()}/${n}-b`];
}

/** Copies every run of `from` to `to` as stored (records, outputs, key records). */
async function rawCopy(from: CheckpointStore, to: CheckpointStore): Promise<void> {
  for (const pipelineId of await from.listPipelineIds()) {
    const checkpoints: ImportedCheckpoint[] = [];
    const seen = new Set<string>();
    const all = await from.getOutputs(pipelineId, await from.listOutputHashes(pipelineId));
    for (const entry of await from.listCheckpoints(pipelineId)) {
      if (!entry.ok) continue;
      const record = await from.getCheckpoint(entry.metadata.checkpoint_id);
      if (!record) continue;
      // Every output goes with the first checkpoint: the copy holds them all, as the source does.
      const outputs = seen.size === 0 ? [...all].map(([hash, body]) => ({ hash, body })) : [];
      for (const o of outputs) seen.add(o.hash);
      checkpoints.push({ record, outputs });
    }
    const runKey = await from.getRunKey?.(pipelineId);
    await to.importRun(pipelineId, checkpoints, { replace: false, ...(runKey ? { runKey } : {}) });
  }
}

/** A store holding runs `etl-1` and `etl-2` (and `other-1` of pipeline `other`), with a raw copy. */
async function copiedPair(kind: string, tag: string, encrypted = false) {
  const [urlA, urlB] = pair(kind, tag);
  const manager = new CheckpointManager({ store: urlA, ...(encrypted ? { encryption: ring() } : {}) });
  const run1 = await writeRun(manager, "etl-1");
  const run2 = await writeRun(manager, "etl-2");
  await writeRun(manager, "other-1", ["a", "b"]);
  await manager.close();
  const a = await openStore(urlA);
  const b = await openStore(urlB);
  await rawCopy(a, b);
  return { a, b, run1, run2 };
}

describe.each(["memory", "sqlite", "file"])("compareStores on %s", (kind) => {
  it("a copy compares equal, in both directions", async () => {
    const { a, b } = await copiedPair(kind, "equal");
    try {
      const ab = await compareStores(a, b);
      expect(ab).toMatchObject({ equal: true, runsCompared: 3, onlyInA: [], onlyInB: [], runs: [] });
      expect((await compareStores(b, a)).equal).toBe(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("an encrypted run compares equal without keys, and its key record counts", async () => {
    const { a, b } = await copiedPair(kind, "sealed", true);
    try {
      expect(await a.getRunKey?.("etl-1")).toBeDefined();
      expect((await compareStores(a, b)).equal).toBe(true);
      const other = await b.getRunKey?.("etl-2");
      // Replacing the key record (as a rekey would on one side only) is a difference.
      await b.putRunKey?.("etl-2", `${other}x`, other);
      const diff = await compareStores(a, b);
      expect(diff.runs.map((r) => [r.pipelineId, r.runKey])).toEqual([["etl-2", "different"]]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("an output no checkpoint refers to is no difference (a replication does not copy it)", async () => {
    const { a, b, run1 } = await copiedPair(kind, "orphans");
    try {
      const before = new Set(await a.listOutputHashes("etl-1"));
      // The last checkpoint alone refers to the last stage's output: deleted on both sides, that
      // output is left behind (deleteCheckpoints leaves outputs), then removed on B only.
      for (const store of [a, b]) await store.deleteCheckpoints("etl-1", [run1[2] as string]);
      const view = await a.getCheckpoint(run1[1] as string);
      expect(view).toBeDefined();
      const referenced = await compareStores(a, b);
      expect(referenced.equal).toBe(true);
      const orphan = [...before].filter((h) => !(view?.body ?? "").includes(h));
      expect(orphan).toHaveLength(1);
      await b.deleteOutputs("etl-1", orphan);
      expect((await compareStores(a, b)).equal).toBe(true);
      // A referenced output missing on B is a difference.
      const [needed] = [...before].filter((h) => !orphan.includes(h));
      await b.deleteOutputs("etl-1", [needed as string]);
      const c = await compareStores(a, b);
      expect(c.runs.map((r) => [r.pipelineId, r.outputsOnlyInA])).toEqual([["etl-1", [needed]]]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("reports each kind of difference on the side that has it", async () => {
    const { a, b, run1, run2 } = await copiedPair(kind, "diffs");
    try {
      // etl-1: the last checkpoint only in A, a status changed on B.
      await b.deleteCheckpoints("etl-1", [run1[2] as string]);
      await b.updateCheckpoint(run1[0] as string, { status: "failed", error_message: "boom" });
      // etl-2: the last checkpoint diverged (same id, other content), an output only in A.
      const last = (await a.getCheckpoint(run2[2] as string)) ?? expect.fail("no checkpoint");
      await b.deleteCheckpoints("etl-2", [run2[2] as string]);
      await b.putCheckpoint(
        { metadata: { ...last.metadata, checksum: "f".repeat(64) }, body: last.body },
        [],
      );
      const [dropped] = await b.listOutputHashes("etl-2");
      await b.deleteOutputs("etl-2", [dropped as string]);
      // other-1 only in A; extra-1 only in B.
      await b.deleteRun("other-1");
      const first = (await a.getCheckpoint(run1[0] as string)) ?? expect.fail("no checkpoint");
      await b.putCheckpoint(
        {
          metadata: {
            ...first.metadata,
            checkpoint_id: "extra_fetch_1",
            pipeline_id: "extra-1",
            parent_checkpoint_id: null,
            parent_checksum: null,
          },
          body: first.body,
        },
        [],
      );

      const c = await compareStores(a, b);
      expect(c.equal).toBe(false);
      expect(c.runsCompared).toBe(4);
      expect(c.onlyInA.map((r) => [r.pipelineId, r.checkpoints])).toEqual([["other-1", 2]]);
      expect(c.onlyInB.map((r) => [r.pipelineId, r.checkpoints])).toEqual([["extra-1", 1]]);
      const byRun = new Map(c.runs.map((r) => [r.pipelineId, r]));
      expect([...byRun.keys()]).toEqual(["etl-1", "etl-2"]);
      const r1 = byRun.get("etl-1") ?? expect.fail("etl-1");
      expect(r1.checkpointsOnlyInA.map((x) => x.checkpointId)).toEqual([run1[2]]);
      expect(r1.checkpointsOnlyInB).toEqual([]);
      expect(r1.status).toEqual([
        { checkpointId: run1[0], field: "status", a: "completed", b: "failed" },
        { checkpointId: run1[0], field: "error_message", a: null, b: "boom" },
      ]);
      expect(r1.diverged).toEqual([]);
      const r2 = byRun.get("etl-2") ?? expect.fail("etl-2");
      expect(r2.diverged).toEqual([
        expect.objectContaining({
          checkpointId: run2[2],
          checksumA: last.metadata.checksum,
          checksumB: "f".repeat(64),
        }),
      ]);
      expect(r2.outputsOnlyInA).toEqual([dropped]);
      expect(r2.outputsOnlyInB).toEqual([]);
      expect(r2.checkpointsOnlyInA).toEqual([]);

      // Filters: one run, or one pipeline name.
      const one = await compareStores(a, b, { pipelineId: "etl-1" });
      expect(one.runsCompared).toBe(1);
      expect(one.runs.map((r) => r.pipelineId)).toEqual(["etl-1"]);
      const named = await compareStores(a, b, { pipelineId: "etl-2", name: "nope" });
      expect(named).toMatchObject({ equal: true, runsCompared: 0 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

it("opens stores given as URLs read-only and closes them", async () => {
  const [urlA, urlB] = pair("sqlite", "urls");
  const manager = new CheckpointManager({ store: urlA });
  await writeRun(manager, "etl-1");
  await manager.close();
  // B does not exist: a read-only open says so instead of creating it.
  await expect(compareStores(urlA, urlB)).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
  const b = new CheckpointManager({ store: urlB });
  await writeRun(b, "etl-1");
  await b.close();
  // Same stage names, other run content (new ids): both sides' checkpoints are one-sided.
  const c = await compareStores(urlA, urlB);
  const run = c.runs[0] ?? expect.fail("no difference");
  expect(run.checkpointsOnlyInA).toHaveLength(3);
  expect(run.checkpointsOnlyInB).toHaveLength(3);
});
