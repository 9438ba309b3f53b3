/**
 * The conformance suite, part 5: the runs-by-name index (`listRuns`). Finding a pipeline's
 * runs must never read every run in the store, so every store keeps this index itself.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointStore, RunEntry } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const minute = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();

/** Runs-index tests of the conformance suite. */
export function runsIndexTests(harness: () => StoreHarness): void {
  describe("runs by name", () => {
    let store: CheckpointStore;
    let h: StoreHarness;
    let name: string;
    beforeEach(() => {
      h = harness();
      store = h.store;
      // Pipeline names are unique per test, so stores shared between tests list only this test's runs.
      name = h.runId("pipe");
    });

    /** Writes `stages` checkpoints of a new run of `pipelineName`, the first at `start`. */
    async function writeRun(
      runName: string,
      start: number,
      options: { stages?: number; finish?: boolean; pipelineName?: string } = {},
    ): Promise<string> {
      const p = h.runId(runName);
      const stages = options.stages ?? 2;
      for (let i = 1; i <= stages; i++) {
        const made = makeRecord(p, i, {
          pipelineName: options.pipelineName ?? name,
          timestamp: minute(start + i - 1),
          outputs: { [`stage${i}`]: `{"n":${i}}` },
        });
        await store.putCheckpoint(made.record, made.outputs);
      }
      if (options.finish) {
        const done = makeRecord(p, stages + 1, {
          pipelineName: options.pipelineName ?? name,
          stage: "pipeline_complete",
          timestamp: minute(start + stages),
        });
        await store.putCheckpoint(done.record, done.outputs);
      }
      return p;
    }

    async function all(query: { unfinished?: boolean; limit?: number } = {}): Promise<RunEntry[]> {
      const found: RunEntry[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const result = await store.listRuns({ pipelineName: name, ...query, ...(cursor ? { cursor } : {}) });
        found.push(...result.runs);
        if (!result.nextCursor) return found;
        cursor = result.nextCursor;
      }
      throw new Error("listRuns never stopped paging");
    }

    it("lists nothing for a name no run has", async () => {
      expect(await store.listRuns({ pipelineName: name })).toEqual({ runs: [] });
    });

    it("lists a run from its first checkpoint, named and dated by it, finished by pipeline_complete", async () => {
      const p = await writeRun("one", 10, { stages: 3 });
      expect(await all()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(10), finished: false },
      ]);
      const done = makeRecord(p, 4, {
        pipelineName: name,
        stage: "pipeline_complete",
        timestamp: minute(20),
      });
      await store.putCheckpoint(done.record, done.outputs);
      expect(await all()).toEqual([
        { pipelineId: p, pipelineName: name, createdAt: minute(10), finished: true },
      ]);
      expect(await all({ unfinished: true })).toEqual([]);
    });

    it("lists newest first by creation, then by run id, and only the exact name", async () => {
      const old = await writeRun("old", 1, { finish: true });
      const tieA = await writeRun("tie-a", 30);
      const tieB = await writeRun("tie-b", 30, { finish: true });
      const newest = await writeRun("new", 50, { stages: 1 });
      // The old run writes again later: creation, not activity, orders the list.
      const late = makeRecord(old, 9, { pipelineName: name, timestamp: minute(90) });
      await store.putCheckpoint(late.record, late.outputs);
      await writeRun("other-name", 60, { pipelineName: `${name}x` });
      await writeRun("prefix-name", 61, { pipelineName: name.slice(0, -1) });
      const ties = [tieA, tieB].sort().reverse();
      expect((await all()).map((r) => r.pipelineId)).toEqual([newest, ...ties, old]);
      expect((await all({ unfinished: true })).map((r) => r.pipelineId)).toEqual([newest, tieA]);
    });

    it("pages with a cursor: every run exactly once, in order, however small the pages", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 7; i++)
        ids.push(await writeRun(`page${i}`, i * 2, { stages: 1, finish: i % 3 === 0 }));
      const expected = [...ids].reverse();
      for (const limit of [1, 2, 3, 7, 100]) {
        expect((await all({ limit })).map((r) => r.pipelineId)).toEqual(expected);
      }
      const first = await store.listRuns({ pipelineName: name, limit: 3 });
      expect(first.runs).toHaveLength(3);
      expect(first.nextCursor).toEqual(expect.any(String));
      const unfinished = expected.filter((_, i) => (6 - i) % 3 !== 0);
      for (const limit of [1, 2, 100]) {
        expect((await all({ unfinished: true, limit })).map((r) => r.pipelineId)).toEqual(unfinished);
      }
    });

    it("keeps paging stable while new runs are created", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await writeRun(`stable${i}`, i, { stages: 1 }));
      const first = await store.listRuns({ pipelineName: name, limit: 2 });
      await writeRun("stable-new", 100, { stages: 1 });
      const rest = await store.listRuns({
        pipelineName: name,
        limit: 10,
        cursor: first.nextCursor as string,
      });
      expect([...first.runs, ...rest.runs].map((r) => r.pipelineId)).toEqual([...ids].reverse());
    });

    it("drops a run from the index with deleteRun", async () => {
      const kept = await writeRun("kept", 1);
      const gone = await writeRun("gone", 2, { finish: true });
      await store.deleteRun(gone);
      expect((await all()).map((r) => r.pipelineId)).toEqual([kept]);
    });

    it("refuses a malformed query", async () => {
      for (const query of [
        { pipelineName: "../etc" },
        { pipelineName: name, limit: 0 },
        { pipelineName: name, limit: 1001 },
        { pipelineName: name, limit: 1.5 },
        { pipelineName: name, cursor: "" },
      ]) {
        await expect(store.listRuns(query)).rejects.toMatchObject({
          code: expect.stringMatching(/^CAIRN_INVALID_(NAME|ARGUMENT)$/),
        });
      }
    });

    it("rebuilds a run's index entry from its checkpoints, where the store can", async (ctx) => {
      if (!store.rebuildIndexes) return ctx.skip("the store has no rebuildIndexes");
      const p = await writeRun("rebuilt", 5, { finish: true });
      const before = await all();
      await store.rebuildIndexes(p);
      expect(await all()).toEqual(before);
    });
  });
}
