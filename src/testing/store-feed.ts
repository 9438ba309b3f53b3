/**
 * The conformance suite, part 9: the change feed (`readChanges`, `feedCursor`, `waitForChanges`)
 * and meta values (`getMeta`, `putMeta`). Every committed mutation appears once, in commit order,
 * with its run, checkpoint and sequence; a refused one never does; a cursor continues exactly
 * after itself, across store instances; a waiting watcher wakes on another instance's write.
 * Optional: a store without a feed (object storage) gets a visible skip with the reason.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointConflictError, CheckpointNotFoundError, TipMovedError } from "../core/errors.js";
import type { CheckpointStore, StoreChange } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const NO_FEED =
  "the store has no change feed (readChanges/feedCursor/waitForChanges): object storage cannot push or order changes across runs";
const NO_META = "the store has no meta values (getMeta/putMeta)";

type FeedStore = CheckpointStore &
  Required<Pick<CheckpointStore, "readChanges" | "feedCursor" | "waitForChanges">>;
type MetaStore = CheckpointStore & Required<Pick<CheckpointStore, "getMeta" | "putMeta">>;

const hasFeed = (store: CheckpointStore): store is FeedStore =>
  typeof store.readChanges === "function" &&
  typeof store.feedCursor === "function" &&
  typeof store.waitForChanges === "function";

/** Every change after `since` whose run is one of `runs`, read in pages of `page`. */
export async function changesOf(
  store: FeedStore,
  since: string,
  runs: readonly string[],
  page = 3,
): Promise<StoreChange[]> {
  const found: StoreChange[] = [];
  let cursor = since;
  for (;;) {
    const changes = await store.readChanges(cursor, page);
    expect(changes.length).toBeLessThanOrEqual(page);
    for (const change of changes) if (runs.includes(change.pipelineId)) found.push(change);
    const last = changes.at(-1);
    if (!last) return found;
    cursor = last.cursor;
  }
}

/** A change without its cursor and time, for comparing with what the test did. */
const shape = (c: StoreChange) => [c.type, c.pipelineId, c.checkpointId ?? null, c.sequence ?? null];

/** Change feed and meta value tests of the conformance suite. */
export function feedTests(harness: () => StoreHarness): void {
  describe("change feed", () => {
    let h: StoreHarness;
    let store: CheckpointStore;
    beforeEach(() => {
      h = harness();
      store = h.store;
    });

    function feed(ctx: { skip: (note: string) => void }): FeedStore {
      if (!hasFeed(store)) {
        ctx.skip(NO_FEED);
        throw new Error("unreachable: skipped");
      }
      return store;
    }

    it("records every mutation once, in commit order, with its run, checkpoint and sequence", async (ctx) => {
      const s = feed(ctx);
      const p = h.runId("feed-all");
      const q = h.runId("feed-import");
      const start = await s.feedCursor();
      const a = makeRecord(p, 1, { pipelineName: "feedname", outputs: { a: '"a"' } });
      const b = makeRecord(p, 2, { pipelineName: "feedname" });
      const c = makeRecord(p, 3, { pipelineName: "feedname" });
      for (const made of [a, b, c]) await s.putCheckpoint(made.record, made.outputs);
      const [idA, idB, idC] = [a, b, c].map((m) => m.record.metadata.checkpoint_id);
      await s.updateCheckpoint(idB as string, { status: "failed", error_message: "boom" });
      expect(await s.deleteCheckpoints(p, [idA as string, "absent-checkpoint"])).toBe(1);
      const q1 = makeRecord(q, 1, { pipelineName: "other" });
      const q2 = makeRecord(q, 2, { pipelineName: "other" });
      await s.importRun(q, [q1, q2], { replace: false });
      const q3 = makeRecord(q, 1, { pipelineName: "other" });
      await s.importRun(q, [q3], { replace: true });
      await s.deleteRun(p);

      const changes = await changesOf(s, start, [p, q]);
      expect(changes.map(shape)).toEqual([
        ["checkpoint", p, idA, 1],
        ["checkpoint", p, idB, 2],
        ["checkpoint", p, idC, 3],
        ["status", p, idB, 2],
        ["deleted", p, idA, 1],
        ["checkpoint", q, q1.record.metadata.checkpoint_id, 1],
        ["checkpoint", q, q2.record.metadata.checkpoint_id, 2],
        ["deleted", q, null, null],
        ["checkpoint", q, q3.record.metadata.checkpoint_id, 1],
        ["deleted", p, null, null],
      ]);
      expect(changes.filter((c) => c.pipelineId === p).every((c) => c.pipelineName === "feedname")).toBe(
        true,
      );
      expect(changes.filter((c) => c.pipelineId === q).every((c) => c.pipelineName === "other")).toBe(true);
      expect(new Set(changes.map((c) => c.cursor)).size).toBe(changes.length);
      for (const change of changes) expect(Number.isNaN(Date.parse(change.at))).toBe(false);
      // A cursor continues exactly after its own change.
      const fourth = changes[3] as StoreChange;
      expect((await changesOf(s, fourth.cursor, [p, q])).map(shape)).toEqual(changes.slice(4).map(shape));
      // The newest cursor is at (or after) the last change: nothing of this test follows it.
      expect(await changesOf(s, await s.feedCursor(), [p, q])).toEqual([]);
    });

    it("records nothing for a refused or empty mutation", async (ctx) => {
      const s = feed(ctx);
      const p = h.runId("feed-refused");
      const start = await s.feedCursor();
      const first = makeRecord(p, 1);
      await s.putCheckpoint(first.record, first.outputs);
      const stale = makeRecord(p, 2);
      await expect(
        s.putCheckpoint(stale.record, stale.outputs, undefined, { expectedTip: null }),
      ).rejects.toThrow(TipMovedError);
      await expect(s.putCheckpoint(first.record, [])).rejects.toThrow(CheckpointConflictError);
      await expect(s.updateCheckpoint(`${p}-absent`, { status: "failed" })).rejects.toThrow(
        CheckpointNotFoundError,
      );
      expect(await s.deleteCheckpoints(p, [`${p}-absent`])).toBe(0);
      await expect(s.importRun(p, [makeRecord(p, 1)], { replace: false })).rejects.toThrow(
        CheckpointConflictError,
      );
      await s.deleteRun(h.runId("feed-never-written"));
      const changes = await changesOf(s, start, [p, h.runId("feed-never-written")]);
      expect(changes.map(shape)).toEqual([["checkpoint", p, first.record.metadata.checkpoint_id, 1]]);
    });

    it("wakes a waiting watcher on a write, also one made through another instance", async (ctx) => {
      const s = feed(ctx);
      const p = h.runId("feed-wake");
      const writer = h.reopen ? await h.reopen() : s;
      const since = await s.feedCursor();
      expect(await s.waitForChanges(since, 50)).toBe(false);
      const controller = new AbortController();
      const aborted = s.waitForChanges(since, 60_000, controller.signal);
      controller.abort();
      expect(await aborted).toBe(false);
      const woken = s.waitForChanges(since, 60_000);
      const made = makeRecord(p, 1);
      await writer.putCheckpoint(made.record, made.outputs);
      expect(await woken).toBe(true);
      // Already behind: answers at once.
      expect(await s.waitForChanges(since, 60_000)).toBe(true);
      const changes = await changesOf(s, since, [p]);
      expect(changes.map(shape)).toEqual([["checkpoint", p, made.record.metadata.checkpoint_id, 1]]);
    });

    it("continues from a cursor on another instance of the same store", async (ctx) => {
      const s = feed(ctx);
      if (!h.reopen) return ctx.skip("the store is not persistent: there is no second instance to read from");
      const p = h.runId("feed-reopen");
      const since = await s.feedCursor();
      const made = makeRecord(p, 1);
      await s.putCheckpoint(made.record, made.outputs);
      const other = await h.reopen();
      if (!hasFeed(other)) throw new Error("the reopened store lost its feed");
      expect((await changesOf(other, since, [p])).map(shape)).toEqual([
        ["checkpoint", p, made.record.metadata.checkpoint_id, 1],
      ]);
    });

    it("refuses a cursor it never wrote with a typed error", async (ctx) => {
      const s = feed(ctx);
      await expect(s.readChanges("not a cursor", 10)).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
      await expect(s.readChanges(await s.feedCursor(), 0)).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    });
  });

  describe("meta values", () => {
    let h: StoreHarness;
    let store: CheckpointStore;
    beforeEach(() => {
      h = harness();
      store = h.store;
    });

    it("keeps named values outside every run, across instances", async (ctx) => {
      if (typeof store.getMeta !== "function" || typeof store.putMeta !== "function")
        return ctx.skip(NO_META);
      const s = store as MetaStore;
      const key = `kit.${h.runId("meta")}`;
      expect(await s.getMeta(key)).toBeUndefined();
      await s.putMeta(key, "first");
      await s.putMeta(key, "ünïcode → second");
      expect(await s.getMeta(key)).toBe("ünïcode → second");
      const p = h.runId("meta-run");
      const made = makeRecord(p, 1);
      await s.putCheckpoint(made.record, made.outputs);
      await s.deleteRun(p);
      expect(await s.listPipelineIds()).not.toContain(key);
      expect(await s.getMeta(key)).toBe("ünïcode → second");
      if (h.reopen) {
        const other = (await h.reopen()) as MetaStore;
        expect(await other.getMeta(key)).toBe("ünïcode → second");
      }
      await expect(s.putMeta("bad key/..", "x")).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      await s.putMeta(key, "");
    });
  });
}
