/**
 * `watchStore` and `CheckpointManager.watch` over the memory store's feed: where a watch starts
 * (a cursor, the oldest retained change, now), the filters (and the cursor moving over what they
 * leave out), every way it ends (signal, `break`, `return()` while waiting, `close()`), and the
 * typed errors (a trimmed cursor, a store without a feed, bad options).
 */
import { describe, expect, it } from "vitest";
import { watchStore } from "../../src/feed/watch.js";
import {
  type ChangeEvent,
  CheckpointManager,
  FeedTrimmedError,
  InvalidArgumentError,
  StoreUnsupportedError,
} from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
import { makeRecord } from "../../src/testing/store-contract.js";

/** What a change is, without its cursor and time. */
const shape = (c: ChangeEvent) => [c.type, c.pipelineId, c.checkpointId ?? null, c.sequence ?? null];

/** Writes checkpoint `sequence` of run `pipelineId` (pipeline `name`); returns its id. */
async function put(store: MemoryStore, pipelineId: string, sequence: number, name = "etl"): Promise<string> {
  const made = makeRecord(pipelineId, sequence, { pipelineName: name });
  await store.putCheckpoint(made.record, made.outputs);
  return made.record.metadata.checkpoint_id;
}

/**
 * A memory store that reports the watcher's waits: `waits` keeps each call of `waitForChanges`
 * (its cursor and signal), and `waited()`, called before what makes the watcher wait, resolves at
 * the next call (the watcher has read everything).
 */
function observedStore(config: ConstructorParameters<typeof MemoryStore>[0] = {}) {
  const store = new MemoryStore(config);
  const waits: { since: string; signal: AbortSignal | undefined }[] = [];
  const armed: { count: number; resolve: () => void }[] = [];
  const wait = store.waitForChanges.bind(store);
  store.waitForChanges = (since, timeoutMs, signal) => {
    waits.push({ since, signal });
    for (const a of armed.splice(0)) {
      if (waits.length >= a.count) a.resolve();
      else armed.push(a);
    }
    return wait(since, timeoutMs, signal);
  };
  const waited = () => {
    const count = waits.length + 1;
    return new Promise<void>((resolve) => armed.push({ count, resolve }));
  };
  return { store, waits, waited };
}

/** The next `count` events of an iteration. */
async function take(iteration: AsyncIterator<ChangeEvent>, count: number): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  while (events.length < count) {
    const step = await iteration.next();
    if (step.done) throw new Error(`the watch ended after ${events.length} events`);
    events.push(step.value);
  }
  return events;
}

describe("where a watch starts", () => {
  it("from now by default: only changes made after it started", async () => {
    const { store, waited } = observedStore();
    await put(store, "before", 1);
    const watch = watchStore(store);
    const armed = waited();
    const first = watch.next();
    await armed;
    const id = await put(store, "after", 1);
    const step = await first;
    expect(step.done).toBe(false);
    expect(shape(step.value as ChangeEvent)).toEqual(["checkpoint", "after", id, 1]);
    await watch.return();
  });

  it("after `since`: every change that followed it, in order, of every kind", async () => {
    const store = new MemoryStore();
    const a = await put(store, "p", 1);
    const since = await store.feedCursor();
    const b = await put(store, "p", 2);
    await store.updateCheckpoint(b, { status: "failed", error_message: "boom" });
    await store.deleteCheckpoints("p", [a]);
    await store.deleteRun("p");
    const events = await take(watchStore(store, { since }), 4);
    expect(events.map(shape)).toEqual([
      ["checkpoint", "p", b, 2],
      ["status", "p", b, 2],
      ["deleted", "p", a, 1],
      ["deleted", "p", null, null],
    ]);
    // Restarting from a delivered cursor continues right after it.
    const again = await take(watchStore(store, { since: events[1]?.cursor }), 2);
    expect(again.map((e) => e.cursor)).toEqual(events.slice(2).map((e) => e.cursor));
  });

  it("with `fromStart`: from the oldest change retained; `since` wins over it", async () => {
    const store = new MemoryStore();
    const a = await put(store, "p", 1);
    const b = await put(store, "p", 2);
    const all = await take(watchStore(store, { fromStart: true }), 2);
    expect(all.map(shape)).toEqual([
      ["checkpoint", "p", a, 1],
      ["checkpoint", "p", b, 2],
    ]);
    const after = await take(watchStore(store, { fromStart: true, since: all[0]?.cursor }), 1);
    expect(after.map(shape)).toEqual([["checkpoint", "p", b, 2]]);
  });

  it("with `fromStart` on an empty feed: waits, then delivers the first change", async () => {
    const { store, waited } = observedStore();
    const watch = watchStore(store, { fromStart: true });
    const armed = waited();
    const first = watch.next();
    await armed;
    const id = await put(store, "p", 1);
    expect(shape((await first).value as ChangeEvent)).toEqual(["checkpoint", "p", id, 1]);
    await watch.return();
  });
});

describe("filters", () => {
  it("keep one run or one pipeline name, and the cursor moves over the changes left out", async () => {
    const { store, waits, waited } = observedStore();
    const p1 = await put(store, "p", 1, "etl");
    await put(store, "q", 1, "other");
    const p2 = await put(store, "p", 2, "etl");
    const q2 = await put(store, "q", 2, "other");
    const newest = await store.feedCursor();

    const byRun = watchStore(store, { fromStart: true, pipelineId: "p" });
    expect((await take(byRun, 2)).map(shape)).toEqual([
      ["checkpoint", "p", p1, 1],
      ["checkpoint", "p", p2, 2],
    ]);
    // Nothing more for p: the watcher waits after q's last change, not after p's.
    const armed = waited();
    const pending = byRun.next();
    await armed;
    expect(waits.at(-1)?.since).toBe(newest);
    await byRun.return();
    expect((await pending).done).toBe(true);

    const byName = watchStore(store, { fromStart: true, name: "other" });
    const [q1Event, q2Event] = await take(byName, 2);
    expect(q1Event?.pipelineName).toBe("other");
    expect(shape(q2Event as ChangeEvent)).toEqual(["checkpoint", "q", q2, 2]);
    await byName.return();

    const none = watchStore(store, { fromStart: true, pipelineId: "p", name: "other" });
    const noneWaits = waited();
    const nothing = none.next();
    await noneWaits;
    await none.return();
    expect((await nothing).done).toBe(true);
  });
});

describe("how a watch ends", () => {
  it("ends without an error when its signal aborts, while waiting or before it starts", async () => {
    const { store, waits, waited } = observedStore();
    const controller = new AbortController();
    const watch = watchStore(store, { signal: controller.signal });
    const armed = waited();
    const pending = watch.next();
    await armed;
    controller.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(waits.at(-1)?.signal?.aborted).toBe(true);

    await put(store, "p", 1);
    const aborted = watchStore(store, { fromStart: true, signal: AbortSignal.abort() });
    expect(await aborted.next()).toEqual({ done: true, value: undefined });
  });

  it("stops waiting when the caller breaks out of a for-await", async () => {
    const { store, waits, waited } = observedStore();
    await put(store, "p", 1);
    const seen: ChangeEvent[] = [];
    const writer = (async () => {
      await waited();
      await put(store, "p", 2);
    })();
    for await (const event of watchStore(store, { fromStart: true })) {
      seen.push(event);
      if (seen.length === 2) break;
    }
    await writer;
    expect(seen.map((e) => e.sequence)).toEqual([1, 2]);
    // The wait armed before the second change was ended by the break, not left to time out.
    expect(waits.every((w) => w.signal?.aborted)).toBe(true);
  });

  it("ends a next() still waiting as soon as return() is called", async () => {
    const { store, waits, waited } = observedStore();
    const watch = watchStore(store);
    const armed = waited();
    const pending = watch.next();
    await armed;
    const returned = watch.return();
    expect(waits.at(-1)?.signal?.aborted).toBe(true);
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await returned).toEqual({ done: true, value: undefined });
  });

  it("ends the manager's watches when the manager closes", async () => {
    const { store, waited } = observedStore();
    const manager = new CheckpointManager({ store });
    const watch = manager.watch();
    const armed = waited();
    const pending = watch.next();
    await armed;
    await manager.close();
    expect(await pending).toEqual({ done: true, value: undefined });
  });
});

describe("through the manager", () => {
  it("delivers the manager's own writes, status changes and deletions for one run", async () => {
    const { store, waited } = observedStore();
    const manager = new CheckpointManager({ store });
    const watch = manager.watch({ pipelineId: "run-1" });
    const armed = waited();
    const events = take(watch, 3);
    await armed;
    const id = await manager.createCheckpoint({ pipelineId: "run-1", stageName: "extract", stageIndex: 0 });
    await manager.createCheckpoint({ pipelineId: "run-2", stageName: "extract", stageIndex: 0 });
    await manager.updateCheckpointStatus(id, "failed", "boom");
    await manager.cleanupPipelines(["run-1"], { force: true });
    expect((await events).map(shape)).toEqual([
      ["checkpoint", "run-1", id, 1],
      ["status", "run-1", id, 1],
      ["deleted", "run-1", null, null],
    ]);
    await watch.return();
    await manager.close();
  });
});

describe("typed errors", () => {
  it("a cursor whose changes were trimmed is FeedTrimmedError, never a silent gap", async () => {
    const store = new MemoryStore({ feedRetention: 100 });
    await put(store, "p", 1);
    const since = await store.feedCursor();
    for (let sequence = 2; sequence <= 260; sequence++) await put(store, "p", sequence);
    const error = await watchStore(store, { since })
      .next()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FeedTrimmedError);
    expect(error).toMatchObject({ code: "CAIRN_FEED_TRIMMED", cursor: since });
    // What is retained still reads from the start.
    expect((await watchStore(store, { fromStart: true }).next()).done).toBe(false);
  });

  it("a store without a feed (object storage) is StoreUnsupportedError naming what to do", async () => {
    const store = new ObjectStore({ strategy: "memobj", client: new MemoryObjects() });
    const direct = await watchStore(store)
      .next()
      .catch((e: unknown) => e);
    expect(direct).toBeInstanceOf(StoreUnsupportedError);
    expect(direct).toMatchObject({ code: "CAIRN_STORE_UNSUPPORTED", feature: "a change feed" });
    expect((direct as Error).message).toContain("replicate from object storage polls");
    const manager = new CheckpointManager({
      store: new ObjectStore({ strategy: "memobj", client: new MemoryObjects() }),
    });
    await expect(manager.watch().next()).rejects.toBeInstanceOf(StoreUnsupportedError);
    await manager.close();
  });

  it("refuses unknown options, bad names and an empty cursor at once", async () => {
    const store = new MemoryStore();
    expect(() => watchStore(store, { pipeline: "p" } as never)).toThrow(InvalidArgumentError);
    expect(() => watchStore(store, { pipelineId: "../p" })).toThrow(/pipelineId/);
    expect(() => watchStore(store, { since: "" })).toThrow(InvalidArgumentError);
    await expect(watchStore(store, { since: "not-a-cursor" }).next()).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    const manager = new CheckpointManager({ store });
    expect(() => manager.watch({ name: "a b" })).toThrow(/pipelineName/);
    await manager.close();
  });
});
