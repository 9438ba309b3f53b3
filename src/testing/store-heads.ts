/**
 * The conformance suite, part 7: the run's head record (`getRunHead`). Every write and import
 * moves it, a deletion never moves it back (a truncation stays visible), retention's deletion
 * records a tombstone, and `deleteRun` removes it.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointRecord, CheckpointStore, RunHead } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const headOf = (r: CheckpointRecord): RunHead => ({
  sequence: r.metadata.sequence,
  checkpointId: r.metadata.checkpoint_id,
  checksum: r.metadata.checksum,
});

/** Head record tests of the conformance suite. */
export function runHeadTests(harness: () => StoreHarness): void {
  describe("run head record", () => {
    let store: CheckpointStore;
    let h: StoreHarness;
    beforeEach(() => {
      h = harness();
      store = h.store;
    });

    async function writeRun(p: string, n: number): Promise<CheckpointRecord[]> {
      const written: CheckpointRecord[] = [];
      for (let s = 1; s <= n; s++) {
        const made = makeRecord(p, s, { outputs: { [`s${s}`]: `"out ${s}"` } });
        await store.putCheckpoint(made.record, made.outputs);
        written.push(made.record);
      }
      return written;
    }

    it("names the last checkpoint written, and nothing for a run never written", async () => {
      const p = h.runId("head");
      expect(await store.getRunHead(p)).toBeUndefined();
      const [first, second] = await writeRun(p, 2);
      expect(await store.getRunHead(p)).toEqual(headOf(second as CheckpointRecord));
      expect(await store.getRunHead(h.runId("other"))).toBeUndefined();
      expect(first).toBeDefined();
    });

    it("keeps the head when the newest checkpoints are deleted: a deletion is no rewind", async () => {
      const p = h.runId("truncate");
      const run = await writeRun(p, 4);
      const newest = run[3] as CheckpointRecord;
      await store.deleteCheckpoints(p, [
        newest.metadata.checkpoint_id,
        run[2]?.metadata.checkpoint_id as string,
      ]);
      expect(await store.getRunHead(p)).toEqual(headOf(newest));
      await store.deleteCheckpoints(
        p,
        run.slice(0, 2).map((r) => r.metadata.checkpoint_id),
      );
      // Every checkpoint gone but outputs left: the head still says what was written.
      expect(await store.getRunHead(p)).toEqual(headOf(newest));
    });

    it("records retention's tombstone, the highest sequence removed, without moving the head", async () => {
      const p = h.runId("pruned");
      const run = await writeRun(p, 5);
      const before = Date.now();
      const ids = (from: number, to: number) => run.slice(from, to).map((r) => r.metadata.checkpoint_id);
      expect(await store.deleteCheckpoints(p, ids(0, 2), { retention: true })).toBe(2);
      const head = await store.getRunHead(p);
      expect(head).toMatchObject({ ...headOf(run[4] as CheckpointRecord), pruned: { throughSequence: 2 } });
      const at = Date.parse(head?.pruned?.at ?? "");
      expect(at).toBeGreaterThanOrEqual(before - 1000);
      // A later cleanup moves the tombstone on; a lower one never moves it back.
      await store.deleteCheckpoints(p, ids(2, 3), { retention: true });
      expect((await store.getRunHead(p))?.pruned?.throughSequence).toBe(3);
      await store.deleteCheckpoints(p, ids(0, 1), { retention: true });
      expect((await store.getRunHead(p))?.pruned?.throughSequence).toBe(3);
      // The next write moves the head and keeps the tombstone.
      const next = makeRecord(p, 6);
      await store.putCheckpoint(next.record, next.outputs);
      expect(await store.getRunHead(p)).toMatchObject({
        ...headOf(next.record),
        pruned: { throughSequence: 3 },
      });
    });

    it("is removed with the run, and an import sets it as puts would have", async () => {
      const p = h.runId("gone");
      await writeRun(p, 2);
      await store.deleteRun(p);
      expect(await store.getRunHead(p)).toBeUndefined();
      const imported = [1, 2, 3].map((s) => makeRecord(p, s, { outputs: { [`i${s}`]: `"in ${s}"` } }));
      await store.importRun(
        p,
        imported.map((m) => ({ record: m.record, outputs: m.outputs })),
        { replace: false },
      );
      expect(await store.getRunHead(p)).toEqual(headOf((imported[2] as { record: CheckpointRecord }).record));
    });
  });
}
