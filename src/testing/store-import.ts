/**
 * The conformance suite, part 6: `importRun`, a whole run stored in one atomic step. What a
 * kill half-way leaves can only be tested against a real process (test/fault); here: the run
 * appears whole with its indexes as if put one by one, replaces an old run only when asked,
 * and a refused import changes nothing.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointStore, ImportedCheckpoint, Lease, ListedCheckpoint } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const minute = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();

const ids = (listed: ListedCheckpoint[]) => listed.map((e) => (e.ok ? e.metadata.checkpoint_id : "?"));

/** Import tests of the conformance suite. */
export function importRunTests(harness: () => StoreHarness): void {
  describe("importRun", () => {
    let store: CheckpointStore;
    let h: StoreHarness;
    let name: string;
    beforeEach(() => {
      h = harness();
      store = h.store;
      name = h.runId("import-pipe");
    });

    /** A run of `stages` checkpoints (plus `pipeline_complete` when `finish`), not stored. */
    function makeRun(
      p: string,
      start: number,
      stages: number,
      finish = false,
      tag = "a",
    ): ImportedCheckpoint[] {
      const made = Array.from({ length: stages }, (_, i) =>
        makeRecord(p, i + 1, {
          pipelineName: name,
          timestamp: minute(start + i),
          // The last output repeats the first: an output introduced twice is stored once.
          outputs: { [`stage${i + 1}`]: i === stages - 1 && i > 0 ? `{"${tag}":1}` : `{"${tag}":${i + 1}}` },
        }),
      );
      if (finish) {
        made.push(
          makeRecord(p, stages + 1, {
            pipelineName: name,
            stage: "pipeline_complete",
            timestamp: minute(start + stages),
          }),
        );
      }
      return made;
    }

    async function runsOf(unfinished = false) {
      return (await store.listRuns({ pipelineName: name, unfinished })).runs;
    }

    it("stores every checkpoint and output, with the run's index entry and head", async () => {
      const p = h.runId("import-new");
      const run = makeRun(p, 10, 3);
      await store.importRun(p, run, { replace: false });
      expect(ids(await store.listCheckpoints(p))).toEqual(run.map((c) => c.record.metadata.checkpoint_id));
      const hashes = [...new Set(run.flatMap((c) => c.outputs.map((o) => o.hash)))].sort();
      expect(await store.listOutputHashes(p)).toEqual(hashes);
      const bodies = await store.getOutputs(p, hashes);
      for (const c of run) for (const o of c.outputs) expect(bodies.get(o.hash)).toBe(o.body);
      const newest = run.at(-1)?.record as ImportedCheckpoint["record"];
      expect(await store.getLatestCheckpoint(p)).toEqual(newest);
      expect(await store.getCheckpoint(run[0]?.record.metadata.checkpoint_id as string)).toEqual(
        run[0]?.record,
      );
      expect(await runsOf()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(10), finished: false },
      ]);
      expect((await runsOf(true)).map((r) => r.pipelineId)).toEqual([p]);
      expect(await store.listPipelineIds()).toContain(p);
      // The head is the newest imported checkpoint: a write chained on it is accepted, others not.
      const next = makeRecord(p, 4, { pipelineName: name, timestamp: minute(13) });
      await expect(
        store.putCheckpoint(next.record, next.outputs, undefined, {
          expectedTip: run[0]?.record.metadata.checkpoint_id,
        }),
      ).rejects.toMatchObject({ code: "CAIRN_CONFLICT", name: "TipMovedError" });
      await store.putCheckpoint(next.record, next.outputs, undefined, {
        expectedTip: newest.metadata.checkpoint_id,
      });
      expect((await store.getLatestCheckpoint(p))?.metadata.checkpoint_id).toBe(
        next.record.metadata.checkpoint_id,
      );
    });

    it("lists an imported finished run as finished", async () => {
      const p = h.runId("import-done");
      await store.importRun(p, makeRun(p, 20, 2, true), { replace: false });
      expect(await runsOf()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(20), finished: true },
      ]);
      expect(await runsOf(true)).toEqual([]);
    });

    it("refuses a run the store holds without replace, and changes nothing", async () => {
      const p = h.runId("import-held");
      const old = makeRun(p, 30, 2, false, "old");
      for (const c of old) await store.putCheckpoint(c.record, c.outputs);
      const before = await store.listCheckpoints(p);
      const hashes = await store.listOutputHashes(p);
      await expect(
        store.importRun(p, makeRun(p, 40, 3, true, "new"), { replace: false }),
      ).rejects.toMatchObject({
        code: "CAIRN_CONFLICT",
      });
      expect(await store.listCheckpoints(p)).toEqual(before);
      expect(await store.listOutputHashes(p)).toEqual(hashes);
      expect(await runsOf()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(30), finished: false },
      ]);
    });

    it("replaces a run with replace: the old checkpoints and outputs go, the lease token stays", async () => {
      const p = h.runId("import-replace");
      const old = makeRun(p, 50, 3, false, "old");
      for (const c of old) await store.putCheckpoint(c.record, c.outputs);
      const first = await store.acquireLease(p, "runner-a", 60_000);
      if (!first.acquired) throw new Error("the lease of a new run must be free");
      await store.releaseLease(first.lease);
      const fresh = makeRun(p, 5, 2, true, "new");
      await store.importRun(p, fresh, { replace: true });
      expect(ids(await store.listCheckpoints(p))).toEqual(fresh.map((c) => c.record.metadata.checkpoint_id));
      for (const c of old) expect(await store.getCheckpoint(c.record.metadata.checkpoint_id)).toBeUndefined();
      const hashes = [...new Set(fresh.flatMap((c) => c.outputs.map((o) => o.hash)))].sort();
      expect(await store.listOutputHashes(p)).toEqual(hashes);
      expect((await store.getLatestCheckpoint(p))?.metadata.checkpoint_id).toBe(
        fresh.at(-1)?.record.metadata.checkpoint_id,
      );
      expect(await runsOf()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(5), finished: true },
      ]);
      expect(await runsOf(true)).toEqual([]);
      const again = await store.acquireLease(p, "runner-b", 60_000);
      expect(again.acquired && (again.lease as Lease).token).toBeGreaterThan(first.lease.token);
    });

    it("refuses an id another run holds, even with replace, and stores none of the run", async () => {
      const other = h.runId("import-other");
      const theirs = makeRun(other, 60, 1, false, "theirs");
      for (const c of theirs) await store.putCheckpoint(c.record, c.outputs);
      const p = h.runId("import-clash");
      const old = makeRun(p, 61, 1, false, "old");
      for (const c of old) await store.putCheckpoint(c.record, c.outputs);
      const clash = makeRecord(p, 2, {
        id: theirs[0]?.record.metadata.checkpoint_id as string,
        pipelineName: name,
        timestamp: minute(70),
      });
      const run = [...makeRun(p, 68, 1, false, "new"), clash];
      const before = await store.listCheckpoints(p);
      await expect(store.importRun(p, run, { replace: true })).rejects.toMatchObject({
        code: "CAIRN_CONFLICT",
      });
      expect(await store.listCheckpoints(p)).toEqual(before);
      expect(ids(await store.listCheckpoints(other))).toEqual([theirs[0]?.record.metadata.checkpoint_id]);
      const q = h.runId("import-clash-new");
      const lone = makeRecord(q, 1, {
        id: theirs[0]?.record.metadata.checkpoint_id as string,
        pipelineName: name,
      });
      await expect(store.importRun(q, [lone], { replace: false })).rejects.toMatchObject({
        code: "CAIRN_CONFLICT",
      });
      expect(await store.listCheckpoints(q)).toEqual([]);
      expect((await runsOf()).map((r) => r.pipelineId).sort()).toEqual([other, p].sort());
    });

    it("refuses an empty run, or a checkpoint of another run, before the store sees it", async () => {
      const p = h.runId("import-bad");
      await expect(store.importRun(p, [], { replace: false })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
      const stray = makeRun(h.runId("import-stray"), 1, 1);
      await expect(store.importRun(p, stray, { replace: false })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
      expect(await store.listCheckpoints(p)).toEqual([]);
    });
  });
}
