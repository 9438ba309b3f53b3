/**
 * The store conformance suite, part 4: corrupt entries and index maintenance, what
 * `cairn repair` relies on. A corrupt entry is read raw for a backup, then removed from its
 * run; nothing readable is ever removed that way; `rebuildIndexes`, where a store has it,
 * changes no checkpoint.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointStore, CorruptEntry } from "../index.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const codeOf = async (promise: Promise<unknown>) =>
  promise.then(
    () => "resolved",
    (error: { code?: string }) => error.code,
  );

/** The corrupt-entry half of the conformance suite. */
export function corruptEntryTests(harness: () => StoreHarness): void {
  let h: StoreHarness;
  let store: CheckpointStore;

  beforeEach(() => {
    h = harness();
    store = h.store;
  });

  const NO_GARBAGE = "the harness has no addGarbage hook (a store that cannot hold garbage)";

  /** A run with one valid checkpoint and one garbage entry; undefined when the store cannot hold garbage. */
  async function runWithGarbage(name: string) {
    if (!h.addGarbage) return undefined;
    const p = h.runId(name);
    const made = makeRecord(p, 1, { outputs: { stage1: '{"n":1}' } });
    await store.putCheckpoint(made.record, made.outputs);
    await h.addGarbage(p);
    const corrupt = (await store.listCheckpoints(p)).flatMap((e) => (e.ok ? [] : [e.corrupt]));
    expect(corrupt).toHaveLength(1);
    return { p, valid: made.record, corrupt: corrupt[0] as CorruptEntry };
  }

  describe("store corrupt entries", () => {
    it("reads a corrupt entry's raw content, removes it, and then reports it gone", async (ctx) => {
      const setup = await runWithGarbage("garbage-remove");
      if (!setup) return ctx.skip(NO_GARBAGE);
      const { p, valid, corrupt } = setup;
      const raw = await store.readCorruptEntry(corrupt);
      expect(typeof raw).toBe("string");
      expect(raw.length).toBeGreaterThan(0);
      await store.removeCorruptEntry(corrupt);
      const listing = await store.listCheckpoints(p);
      expect(listing.map((e) => e.ok && e.metadata.checkpoint_id)).toEqual([valid.metadata.checkpoint_id]);
      // The valid checkpoint and its outputs are untouched.
      expect(await store.getCheckpoint(valid.metadata.checkpoint_id)).toEqual(valid);
      expect(await store.listOutputHashes(p)).toHaveLength(1);
      expect(await codeOf(store.readCorruptEntry(corrupt))).toBe("CAIRN_NOT_FOUND");
      expect(await codeOf(store.removeCorruptEntry(corrupt))).toBe("CAIRN_NOT_FOUND");
    });

    it("never removes a checkpoint that parses, whatever the entry claims", async (ctx) => {
      const setup = await runWithGarbage("garbage-forged");
      if (!setup) return ctx.skip(NO_GARBAGE);
      const { p, valid, corrupt } = setup;
      const id = valid.metadata.checkpoint_id;
      const forged: CorruptEntry = {
        ...corrupt,
        checkpointId: id,
        location: h.checkpointLocation?.(p, id, valid.metadata.sequence) ?? corrupt.location,
      };
      expect(await codeOf(store.removeCorruptEntry(forged))).toBe("CAIRN_CONFLICT");
      expect(await store.getCheckpoint(id)).toEqual(valid);
    });

    it("reports a corrupt entry of a run that does not exist as not found", async () => {
      const p = h.runId("no-garbage");
      const entry: CorruptEntry = {
        pipelineId: p,
        checkpointId: `${p}_x_20240101T000000000Z_aaaaaaaa`,
        location: h.checkpointLocation?.(p, `${p}_x_20240101T000000000Z_aaaaaaaa`, 1) ?? "nowhere",
        reason: "test",
      };
      expect(await codeOf(store.readCorruptEntry(entry))).toBe("CAIRN_NOT_FOUND");
      expect(await codeOf(store.removeCorruptEntry(entry))).toBe("CAIRN_NOT_FOUND");
    });

    it("rebuilds indexes, where the store can, without changing any checkpoint", async (ctx) => {
      if (!store.rebuildIndexes) return ctx.skip("the store has no rebuildIndexes");
      const p = h.runId("reindex");
      const a = makeRecord(p, 1, { outputs: { stage1: '{"n":1}' } });
      const b = makeRecord(p, 2);
      await store.putCheckpoint(a.record, a.outputs);
      await store.putCheckpoint(b.record, b.outputs);
      const before = await store.listCheckpoints(p);
      const done = await store.rebuildIndexes(p);
      expect(Array.isArray(done)).toBe(true);
      expect(await store.listCheckpoints(p)).toEqual(before);
      expect(await store.getCheckpoint(a.record.metadata.checkpoint_id)).toEqual(a.record);
      if (!h.dropIndexEntry) return;
      // A store with a separate run index puts back an entry the index lost.
      await h.dropIndexEntry(p, b.record.metadata.checkpoint_id);
      expect(await store.listCheckpoints(p)).toHaveLength(1);
      const redone = await store.rebuildIndexes(p);
      expect(redone.join("\n")).toContain(b.record.metadata.checkpoint_id);
      expect(await store.listCheckpoints(p)).toEqual(before);
      expect(await store.rebuildIndexes(p)).toEqual([]);
    });
  });
}
