/**
 * The conformance suite, part 8: the run's key record (`getRunKey`, `putRunKey`, `importRun`'s
 * `runKey`), which encryption at rest keeps per run. Compare-and-set with exactly one winner,
 * destroyed by `deleteRun`, kept by partial deletions, never a run of its own. Optional: a store
 * without it gets a visible skip (it cannot hold encrypted runs).
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { CheckpointStore, ImportedCheckpoint } from "../stores/types.js";
import { makeRecord } from "./store-contract.js";
import type { StoreHarness } from "./suite.js";

const NO_KEYS = "the store has no run key records (getRunKey/putRunKey): it cannot hold encrypted runs";

/** A store that keeps key records, as the tests use it. */
type KeyStore = CheckpointStore & Required<Pick<CheckpointStore, "getRunKey" | "putRunKey">>;

const hasKeys = (store: CheckpointStore): store is KeyStore =>
  typeof store.getRunKey === "function" && typeof store.putRunKey === "function";

/** A key record as the encryption layer might write one: opaque text, here JSON with non-ASCII. */
const keyText = (tag: string) => JSON.stringify({ kek: `kek-${tag}`, wrapped: `wräpped→${tag}`, v: 1 });

/** Run key record tests of the conformance suite. */
export function runKeyTests(harness: () => StoreHarness): void {
  describe("run key records", () => {
    let h: StoreHarness;
    let store: CheckpointStore;
    beforeEach(() => {
      h = harness();
      store = h.store;
    });

    /** The store as a key store, or a skip with the reason. */
    function keys(ctx: { skip: (note: string) => void }): KeyStore {
      if (!hasKeys(store)) {
        ctx.skip(NO_KEYS);
        throw new Error("unreachable: skipped");
      }
      return store;
    }

    async function writeRun(p: string, n: number): Promise<string[]> {
      const ids: string[] = [];
      for (let s = 1; s <= n; s++) {
        const made = makeRecord(p, s, { outputs: { [`k${s}`]: `"key run ${p} ${s}"` } });
        await store.putCheckpoint(made.record, made.outputs);
        ids.push(made.record.metadata.checkpoint_id);
      }
      return ids;
    }

    const importable = (p: string, n: number, tag: string): ImportedCheckpoint[] =>
      Array.from({ length: n }, (_, i) => makeRecord(p, i + 1, { outputs: { [tag]: `"${tag} ${i}"` } }));

    it("is absent until set, then set only if the stored record is still the expected one", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-cas");
      expect(await s.getRunKey(p)).toBeUndefined();
      // Expecting a record the run does not have: refused, nothing created.
      expect(await s.putRunKey(p, keyText("a"), keyText("zzz"))).toBe(false);
      expect(await s.getRunKey(p)).toBeUndefined();
      expect(await s.putRunKey(p, keyText("a"), undefined)).toBe(true);
      expect(await s.getRunKey(p)).toBe(keyText("a"));
      // Creating again, or replacing with the wrong expected record: refused and unchanged.
      expect(await s.putRunKey(p, keyText("b"), undefined)).toBe(false);
      expect(await s.putRunKey(p, keyText("b"), keyText("not-a"))).toBe(false);
      expect(await s.getRunKey(p)).toBe(keyText("a"));
      expect(await s.putRunKey(p, keyText("b"), keyText("a"))).toBe(true);
      expect(await s.getRunKey(p)).toBe(keyText("b"));
      // Per run: another run has none.
      expect(await s.getRunKey(h.runId("key-cas-other"))).toBeUndefined();
    });

    it("keeps a record of the largest size exactly, and refuses an empty or larger one", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-size");
      // Exactly the limit in UTF-16 units, with 2- and 4-byte UTF-8 characters (no split pair).
      const big = `${"é".repeat(1000)}\u{1F511}${"k".repeat(65_536 - 1002)}`;
      expect(big).toHaveLength(65_536);
      expect(await s.putRunKey(p, big, undefined)).toBe(true);
      // Compared as a boolean: a failure must not print 64 KiB.
      expect((await s.getRunKey(p)) === big).toBe(true);
      await expect(s.putRunKey(p, `${big}x`, big)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      await expect(s.putRunKey(p, "", big)).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      await expect(s.putRunKey("../x", "k", undefined)).rejects.toMatchObject({ code: "CAIRN_INVALID_NAME" });
      expect((await s.getRunKey(p)) === big).toBe(true);
    });

    it("lets exactly one of two concurrent creators win, across store instances", async (ctx) => {
      const s = keys(ctx);
      // Two instances on the same location race as two processes would; else one instance.
      const other = h.reopen ? await h.reopen() : s;
      if (!hasKeys(other)) throw new Error("the reopened store has no run key records");
      for (let round = 0; round < 5; round++) {
        const p = h.runId(`key-race${round}`);
        const mine = keyText(`mine${round}`);
        const theirs = keyText(`theirs${round}`);
        const results = await Promise.all([
          s.putRunKey(p, mine, undefined),
          other.putRunKey(p, theirs, undefined),
        ]);
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = results[0] ? mine : theirs;
        expect(await s.getRunKey(p)).toBe(winner);
        expect(await other.getRunKey(p)).toBe(winner);
        // And of two concurrent replacements expecting the same record, one wins too.
        const next = await Promise.all([
          s.putRunKey(p, keyText(`m2-${round}`), winner),
          other.putRunKey(p, keyText(`t2-${round}`), winner),
        ]);
        expect(next.filter(Boolean)).toHaveLength(1);
        expect(await s.getRunKey(p)).toBe(next[0] ? keyText(`m2-${round}`) : keyText(`t2-${round}`));
      }
    });

    it("alone does not make a run: not listed, no checkpoints, no head", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-alone");
      expect(await s.putRunKey(p, keyText("alone"), undefined)).toBe(true);
      expect(await s.listPipelineIds()).not.toContain(p);
      expect(await s.listCheckpoints(p)).toEqual([]);
      expect(await s.listOutputHashes(p)).toEqual([]);
      expect(await s.getLatestCheckpoint(p)).toBeUndefined();
      // Written, then every checkpoint and output deleted: the key stays, the run is gone.
      const ids = await writeRun(p, 2);
      expect(await s.listPipelineIds()).toContain(p);
      await s.deleteCheckpoints(p, ids);
      await s.deleteOutputs(p, await s.listOutputHashes(p));
      expect(await s.getRunKey(p)).toBe(keyText("alone"));
      expect(await s.listPipelineIds()).not.toContain(p);
    });

    it("is kept by deleteCheckpoints and deleteOutputs, retention included", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-kept");
      expect(await s.putRunKey(p, keyText("kept"), undefined)).toBe(true);
      const ids = await writeRun(p, 3);
      await s.deleteCheckpoints(p, ids.slice(0, 1), { retention: true });
      await s.deleteCheckpoints(p, ids.slice(1, 2));
      await s.deleteOutputs(p, (await s.listOutputHashes(p)).slice(0, 1));
      expect(await s.getRunKey(p)).toBe(keyText("kept"));
      expect(await s.listPipelineIds()).toContain(p);
    });

    it("is destroyed by deleteRun, with or without checkpoints, and can be created anew", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-deleted");
      expect(await s.putRunKey(p, keyText("old"), undefined)).toBe(true);
      await writeRun(p, 2);
      await s.deleteRun(p);
      expect(await s.getRunKey(p)).toBeUndefined();
      expect(await s.listPipelineIds()).not.toContain(p);
      expect(await s.putRunKey(p, keyText("new"), undefined)).toBe(true);
      expect(await s.getRunKey(p)).toBe(keyText("new"));
      // A run holding nothing but its key.
      await s.deleteRun(p);
      expect(await s.getRunKey(p)).toBeUndefined();
    });

    it("is set by importRun with runKey, in the same step as the run", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-import");
      await s.importRun(p, importable(p, 2, "imp"), { replace: false, runKey: keyText("imported") });
      expect(await s.getRunKey(p)).toBe(keyText("imported"));
      expect(await s.listCheckpoints(p)).toHaveLength(2);
      // Replacing the run with a new key replaces the key.
      await s.importRun(p, importable(p, 1, "imp2"), { replace: true, runKey: keyText("again") });
      expect(await s.getRunKey(p)).toBe(keyText("again"));
      // A key-only run (its writer made the key first): the import sets the given key.
      const q = h.runId("key-import-pending");
      expect(await s.putRunKey(q, keyText("pending"), undefined)).toBe(true);
      await s.importRun(q, importable(q, 1, "pend"), { replace: false, runKey: keyText("given") });
      expect(await s.getRunKey(q)).toBe(keyText("given"));
    });

    it("is destroyed by a replacing import without runKey, and left alone on a new run", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-replaced");
      expect(await s.putRunKey(p, keyText("old"), undefined)).toBe(true);
      await writeRun(p, 2);
      await s.importRun(p, importable(p, 1, "plain"), { replace: true });
      expect(await s.getRunKey(p)).toBeUndefined();
      expect(await s.listCheckpoints(p)).toHaveLength(1);
      // A new run whose writer created its key first keeps it through an import without runKey.
      const q = h.runId("key-new");
      expect(await s.putRunKey(q, keyText("first"), undefined)).toBe(true);
      await s.importRun(q, importable(q, 2, "new"), { replace: false });
      expect(await s.getRunKey(q)).toBe(keyText("first"));
      expect(await s.listCheckpoints(q)).toHaveLength(2);
    });

    it("is unchanged by a refused import", async (ctx) => {
      const s = keys(ctx);
      const p = h.runId("key-refused");
      expect(await s.putRunKey(p, keyText("held"), undefined)).toBe(true);
      await writeRun(p, 1);
      await expect(
        s.importRun(p, importable(p, 1, "refused"), { replace: false, runKey: keyText("other") }),
      ).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
      expect(await s.getRunKey(p)).toBe(keyText("held"));
      await expect(
        s.importRun(p, importable(p, 1, "bad"), { replace: false, runKey: "" }),
      ).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
      expect(await s.getRunKey(p)).toBe(keyText("held"));
    });

    it("survives close and reopen (persistent stores)", async (ctx) => {
      const s = keys(ctx);
      if (!h.reopen) return ctx.skip("not persistent: the harness has no reopen hook");
      const p = h.runId("key-persisted");
      expect(await s.putRunKey(p, keyText("kept"), undefined)).toBe(true);
      const again = await h.reopen();
      expect(await again.getRunKey?.(p)).toBe(keyText("kept"));
    });
  });
}
