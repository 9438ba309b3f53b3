/**
 * `GuardedStore` and run key records: the methods exist only when the store has them (so the
 * kit and the encryption layer can tell), and their arguments are checked before any store
 * sees them.
 */
import { describe, expect, it } from "vitest";
import { GuardedStore } from "../../src/stores/guarded-store.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { makeRecord } from "../../src/testing/store-contract.js";

describe("GuardedStore run key records", () => {
  it("has getRunKey and putRunKey only when the store has them", () => {
    const keyless = Object.assign(Object.create(new MemoryStore()) as CheckpointStore, {
      getRunKey: undefined,
      putRunKey: undefined,
    });
    const guarded = new GuardedStore(keyless);
    expect(guarded.getRunKey).toBeUndefined();
    expect(guarded.putRunKey).toBeUndefined();
    expect(typeof new GuardedStore(new MemoryStore()).putRunKey).toBe("function");
  });

  it("refuses bad records, expected values and import keys before the store sees them", async () => {
    const inner = new MemoryStore();
    const seen: unknown[][] = [];
    const spy = Object.create(inner) as CheckpointStore;
    spy.putRunKey = async (...args) => {
      seen.push(args);
      return inner.putRunKey(...args);
    };
    const store = new GuardedStore(spy);
    const bad = (promise: Promise<unknown> | undefined) =>
      expect(promise).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
    await bad(store.putRunKey?.("run", "", undefined));
    await bad(store.putRunKey?.("run", "k".repeat(65_537), undefined));
    await bad(store.putRunKey?.("run", 42 as unknown as string, undefined));
    await bad(store.putRunKey?.("run", "k", null as unknown as undefined));
    await expect(store.putRunKey?.("a/b", "k", undefined)).rejects.toMatchObject({
      code: "CAIRN_INVALID_NAME",
    });
    expect(seen).toEqual([]);
    expect(await store.putRunKey?.("run", "k".repeat(65_536), undefined)).toBe(true);
    expect(seen).toHaveLength(1);
    const made = makeRecord("imported", 1);
    await bad(store.importRun("imported", [made], { replace: false, runKey: "" }));
    await bad(store.importRun("imported", [made], { replace: false, runKey: 7 as unknown as string }));
    expect(await store.listPipelineIds()).toEqual([]);
  });
});
