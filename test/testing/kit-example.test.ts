/**
 * The README's conformance-kit example, as written there (but importing the sources): a custom
 * store passes the whole published suite, and the suite really exercises it.
 */
import { describeStoreConformance } from "cairn-pipelines/testing";
import { afterAll, expect } from "vitest";
import { type CheckpointStore, openStore } from "../../src/index.js";

/** Your store: here one that counts writes and keeps its data in cairn's memory store. */
function countingStore(inner: CheckpointStore): CheckpointStore & { writes: number } {
  const store = Object.create(inner) as CheckpointStore & { writes: number };
  store.writes = 0;
  store.putCheckpoint = async (...args) => {
    store.writes++;
    return inner.putCheckpoint(...args);
  };
  return store;
}

const made: { writes: number }[] = [];
describeStoreConformance("counting (README example)", async () => {
  const store = countingStore(await openStore("memory:"));
  made.push(store);
  return store;
});

afterAll(() => {
  // The suite wrote through the custom store's own method, test after test.
  expect(made.length).toBeGreaterThan(40);
  expect(made.reduce((sum, s) => sum + s.writes, 0)).toBeGreaterThan(100);
});
