/**
 * The object store's logic on `MemoryObjects`, for what the conformance kit does not cover:
 * round trips, manifest pages, retries of lost and unknown writes, the clean-up of a lost race,
 * a killed deleteRun, and many writers on one run. (Real servers: test/stores/s3-*, azure-*.)
 */
import { makeRecord } from "cairn-pipelines/testing";
import { describe, expect, it } from "vitest";
import { StoreUnavailableError, TipMovedError } from "../../src/core/errors.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import type { ObjectClient } from "../../src/stores/object/objects.js";
import { idsOf, openStore, RoundCounter, tipOf, writeRun } from "./object-fixtures.js";

const isTip = (key: string) => key.startsWith("tips/");

/** The bucket's client methods, bound, to override one of them. */
const bound = (objects: MemoryObjects): ObjectClient => ({
  location: objects.location,
  get: (k) => objects.get(k),
  put: (k, b, c) => objects.put(k, b, c),
  delete: (k) => objects.delete(k),
  deleteMany: (keys) => objects.deleteMany(keys),
  list: (p, o) => objects.list(p, o),
  probeConditions: () => objects.probeConditions(),
  close: () => objects.close(),
});

describe("object store: round trips", () => {
  it("puts a checkpoint in 2 sequential rounds in steady state, with no GET", async () => {
    const counter = new RoundCounter(new MemoryObjects());
    const store = await openStore(counter.client);
    await writeRun(store, "rt", 3);
    counter.reset();
    const made = makeRecord("rt", 4, { outputs: { a: '"a"', b: '"b"' } });
    await store.putCheckpoint(made.record, made.outputs);
    expect(counter.rounds).toBe(2);
    // Round 1: cp object, claim, 2 outputs; round 2: the tip.
    expect(counter.objects.calls).toMatchObject({ get: 0, put: 5, list: 0, delete: 0 });
    // With expectedTip the cost is the same: the cached tip answers the check.
    counter.reset();
    const next = makeRecord("rt", 5);
    await store.putCheckpoint(next.record, [], undefined, {
      expectedTip: made.record.metadata.checkpoint_id,
    });
    expect(counter.rounds).toBe(2);
    expect(counter.objects.calls).toMatchObject({ get: 0, put: 3 });
  });

  it("spills to a page within the same 2 rounds", async () => {
    const counter = new RoundCounter(new MemoryObjects());
    const store = await openStore(counter.client);
    await writeRun(store, "spill-rt", 256);
    expect(tipOf(counter.objects, "spill-rt").pages).toHaveLength(0);
    counter.reset();
    await store.putCheckpoint(makeRecord("spill-rt", 257).record, []);
    expect(tipOf(counter.objects, "spill-rt").pages).toHaveLength(1);
    expect(counter.rounds).toBe(2);
    expect(counter.objects.calls).toMatchObject({ get: 0, put: 4 });
  });

  it("resumes with 2 GETs, the same at 10 and at 2,000 checkpoints, reading no page", async () => {
    const counter = new RoundCounter(new MemoryObjects());
    const store = await openStore(counter.client);
    const short = await writeRun(store, "short", 10);
    const long = await writeRun(store, "long", 2000);
    expect(counter.objects.keys("runs/long/pages/").length).toBeGreaterThanOrEqual(7);
    const reader = await openStore(counter.client);
    const measure = async (runId: string) => {
      counter.reset();
      const latest = await reader.getLatestCheckpoint(runId);
      return { latest, rounds: counter.rounds, calls: { ...counter.objects.calls } };
    };
    const a = await measure("short");
    const b = await measure("long");
    expect(a.latest).toEqual(short.at(-1));
    expect(b.latest).toEqual(long.at(-1));
    expect(a.calls).toEqual(b.calls);
    expect(b.calls).toMatchObject({ get: 2, list: 0, put: 0 });
    expect(b.rounds).toBe(2);
  });
});

describe("object store: manifest pages", () => {
  it("spills the inline manifest to a page past 256 checkpoints and reads every entry back", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const run = await writeRun(store, "spill", 256);
    expect(tipOf(objects, "spill").pages).toHaveLength(0);
    run.push(...(await writeRun(store, "spill", 44, 257)));
    const tip = tipOf(objects, "spill");
    expect(tip.pages).toHaveLength(1);
    expect(tip.recent.cps.length).toBe(300 - 257);
    const reader = await openStore(objects);
    expect(idsOf(await reader.listCheckpoints("spill"))).toEqual(run.map((r) => r.metadata.checkpoint_id));
    // An id in a page is found through its claim's sequence; so are its outputs.
    expect(await reader.getCheckpoint(run[3]?.metadata.checkpoint_id as string)).toEqual(run[3]);
    expect(await reader.listOutputHashes("spill")).toHaveLength(300);
    // Maintenance rewrites pages and deletes the replaced ones.
    const old = tip.pages[0]?.key as string;
    expect(await reader.deleteCheckpoints("spill", [run[0]?.metadata.checkpoint_id as string])).toBe(1);
    expect(objects.peek(old)).toBeUndefined();
    expect(idsOf(await store.listCheckpoints("spill"))).toEqual(
      run.slice(1).map((r) => r.metadata.checkpoint_id),
    );
    await store.putCheckpoint(makeRecord("spill", 301).record, []);
    expect(await store.listCheckpoints("spill")).toHaveLength(300);
  });
});

describe("object store: retries", () => {
  it("settles a tip write whose answer was lost: applied once, not twice", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    await writeRun(store, "lost-answer", 1);
    objects.failNext("put", 1, { afterApply: true, match: isTip });
    const made = makeRecord("lost-answer", 2);
    await store.putCheckpoint(made.record, made.outputs);
    expect(await store.listCheckpoints("lost-answer")).toHaveLength(2);
    expect((await store.getLatestCheckpoint("lost-answer"))?.metadata.checkpoint_id).toBe(
      made.record.metadata.checkpoint_id,
    );
  });

  it("retries a tip write whose outcome was unknown and that did not happen", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    await writeRun(store, "unknown", 1);
    objects.failNext("put", 1, { unknownOutcome: true, match: isTip });
    const made = makeRecord("unknown", 2);
    await store.putCheckpoint(made.record, made.outputs);
    expect(idsOf(await store.listCheckpoints("unknown"))).toHaveLength(2);
  });

  it("knows its write landed when its answer was lost and another writer built on it", async () => {
    const objects = new MemoryObjects();
    const other = await openStore(objects);
    let armed: (() => Promise<void>) | undefined;
    const lossy: ObjectClient = {
      ...bound(objects),
      put: async (key, body, condition) => {
        const result = await objects.put(key, body, condition);
        const after = isTip(key) ? armed : undefined;
        if (!after) return result;
        armed = undefined;
        await after();
        throw new StoreUnavailableError("memobj", "connection reset", { maybeCommitted: true });
      },
    };
    const store = await openStore(lossy);
    await writeRun(store, "built-on", 1);
    armed = async () => void (await writeRun(other, "built-on", 1, 3));
    const made = makeRecord("built-on", 2);
    await store.putCheckpoint(made.record, made.outputs);
    expect((await other.listCheckpoints("built-on")).map((e) => e.ok && e.metadata.sequence)).toEqual([
      1, 2, 3,
    ]);
    // The same for an import: its tip swap landed, then another writer wrote on top.
    const run = [1, 2]
      .map((s) => makeRecord("imported", s))
      .map((m) => ({ record: m.record, outputs: m.outputs }));
    armed = async () => void (await writeRun(other, "imported", 1, 3));
    await store.importRun("imported", run, { replace: false });
    expect((await other.listCheckpoints("imported")).map((e) => e.ok && e.metadata.sequence)).toEqual([
      1, 2, 3,
    ]);
  });

  it("reports an unreachable server with the typed error and stores nothing visible", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    await writeRun(store, "down", 1);
    objects.failNext("put", 1, { match: isTip });
    const made = makeRecord("down", 2);
    await expect(store.putCheckpoint(made.record, made.outputs)).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
      maybeCommitted: false,
    });
    expect(await store.listCheckpoints("down")).toHaveLength(1);
    // The next write goes through (the claim the failed one left is an orphan, taken over).
    await store.putCheckpoint(made.record, made.outputs);
    expect(await store.listCheckpoints("down")).toHaveLength(2);
  });

  it("retries on 412 when another instance moved the tip, re-checking against the new tip", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const b = await openStore(objects);
    await writeRun(a, "moved", 1);
    await writeRun(b, "moved", 1, 2); // b reads the tip (not cached yet), then writes
    objects.resetCalls();
    const made = makeRecord("moved", 3, { outputs: { x: '"x"' } });
    await a.putCheckpoint(made.record, made.outputs); // a's cached ETag is stale: 412, GET, retry
    // The retry costs one GET and one more tip write: cp object, claim and output are not redone.
    expect(objects.calls).toMatchObject({ get: 1, put: 5 });
    expect(idsOf(await b.listCheckpoints("moved"))).toHaveLength(3);
  });
});

describe("object store: a lost race", () => {
  it("removes its own cp object and claim, never an output, and reports TipMovedError", async () => {
    const objects = new MemoryObjects();
    const a = await openStore(objects);
    const b = await openStore(objects);
    await writeRun(a, "race", 1);
    // b writes, so it caches the tip it wrote; then a moves the tip behind b's back.
    const [mine] = await writeRun(b, "race", 1, 2);
    const tipB = mine?.metadata.checkpoint_id as string;
    await a.putCheckpoint(makeRecord("race", 3).record, []);
    objects.resetCalls();
    const stale = makeRecord("race", 3, { outputs: { s: '"stale output"' } });
    const id = stale.record.metadata.checkpoint_id;
    const error = await b
      .putCheckpoint(stale.record, stale.outputs, undefined, { expectedTip: tipB })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TipMovedError);
    // It was refused after writing (its cached tip passed the check): one tip GET, on the 412.
    expect(objects.calls.get).toBeGreaterThanOrEqual(1);
    expect(objects.keys("runs/race/cp/").some((k) => k.includes(id))).toBe(false);
    expect(objects.peek(`ids/${id}`)).toBeUndefined();
    // The output blob stays: another writer may have committed the same hash.
    expect(objects.peek(`runs/race/out/${stale.outputs[0]?.hash}`)).toBe('"stale output"');
    expect(await b.listOutputHashes("race")).not.toContain(stale.outputs[0]?.hash);
  });
});

describe("object store: a killed deleteRun", () => {
  it("is a tombstone readers see as no run, finished by the next writer", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const run = await writeRun(store, "doomed", 3);
    const lease = await store.acquireLease("doomed", "runner", 60_000);
    expect(lease.acquired).toBe(true);
    await store.putRunKey("doomed", "key-record", undefined);
    // The deletion dies after its tombstone, when it lists the run's objects.
    objects.failNext("list", 1);
    await expect(store.deleteRun("doomed")).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    expect(tipOf(objects, "doomed").deleting).toBe(true);
    const reader = await openStore(objects);
    expect(await reader.listCheckpoints("doomed")).toEqual([]);
    expect(await reader.getLatestCheckpoint("doomed")).toBeUndefined();
    expect(await reader.getRunHead("doomed")).toBeUndefined();
    expect(await reader.getCheckpoint(run[0]?.metadata.checkpoint_id as string)).toBeUndefined();
    expect(await reader.getRunKey("doomed")).toBeUndefined();
    expect(await reader.getLease("doomed")).toBeUndefined();
    expect(await reader.listRuns({ pipelineName: "conformance" })).toEqual({ runs: [] });
    // The next writer finishes the deletion first, then writes on a clean run.
    const writer = await openStore(objects);
    const fresh = makeRecord("doomed", 1);
    await writer.putCheckpoint(fresh.record, fresh.outputs);
    expect(idsOf(await reader.listCheckpoints("doomed"))).toEqual([fresh.record.metadata.checkpoint_id]);
    expect(objects.keys("runs/doomed/cp/")).toHaveLength(1);
    for (const r of run) expect(objects.peek(`ids/${r.metadata.checkpoint_id}`)).toBeUndefined();
    expect(objects.keys("index/")).toHaveLength(1);
    // The token counter survived: the next lease's token is larger.
    const next = await writer.acquireLease("doomed", "other", 60_000);
    expect(next.acquired && next.lease.token).toBe(lease.acquired && lease.lease.token + 1);
  });
});

describe("object store: a put racing deleteRun", () => {
  it.each([
    ["a run with checkpoints", 1],
    ["a run's first checkpoint", 0],
  ])("never commits objects the deletion removed: %s", async (_, before) => {
    const objects = new MemoryObjects();
    const deleter = await openStore(objects);
    let armed: (() => Promise<void>) | undefined;
    const hooked: ObjectClient = {
      ...bound(objects),
      put: async (key, body, condition) => {
        const result = await objects.put(key, body, condition);
        const during = key.includes("/cp/") ? armed : undefined;
        if (during) armed = undefined;
        // The whole deleteRun runs after this put's first round wrote its cp object.
        if (during) await during();
        return result;
      },
    };
    const writer = await openStore(hooked);
    await writeRun(writer, "racing", before);
    armed = () => deleter.deleteRun("racing");
    const made = makeRecord("racing", 2, { outputs: { o: '"o"' } });
    await writer.putCheckpoint(made.record, made.outputs);
    const listing = await deleter.listCheckpoints("racing");
    expect(listing).toEqual([{ ok: true, metadata: made.record.metadata }]);
    expect(await deleter.getCheckpoint(made.record.metadata.checkpoint_id)).toEqual(made.record);
    expect(await deleter.getOutputs("racing", [made.outputs[0]?.hash as string])).toEqual(
      new Map([[made.outputs[0]?.hash, '"o"']]),
    );
  });
});

describe("object store: many writers on one run", () => {
  it("keeps one linear chain with 10 concurrent writers using expectedTip", async () => {
    const objects = new MemoryObjects();
    const stores = await Promise.all(Array.from({ length: 10 }, () => openStore(objects)));
    const won: { id: string; seq: number; parent: string | null }[] = [];
    let refused = 0;
    await Promise.all(
      stores.map(async (store, w) => {
        for (let round = 0; round < 6; round++) {
          const latest = await store.getLatestCheckpoint("chain");
          const seq = (latest?.metadata.sequence ?? 0) + 1;
          const parent = latest?.metadata.checkpoint_id ?? null;
          const made = makeRecord("chain", seq, { outputs: { [`w${w}`]: `"${w}-${round}"` } });
          try {
            await store.putCheckpoint(made.record, made.outputs, undefined, { expectedTip: parent });
            won.push({ id: made.record.metadata.checkpoint_id, seq, parent });
          } catch (error) {
            // Anything but TipMovedError fails the test.
            if (!(error instanceof TipMovedError)) throw error;
            refused++;
          }
        }
      }),
    );
    expect(won.length).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(won.length + refused).toBe(60);
    const listing = await stores[0]?.listCheckpoints("chain");
    const listed = (listing ?? []).map((e) => (e.ok ? e.metadata : undefined));
    expect(listed.map((m) => m?.sequence)).toEqual(won.map((_, i) => i + 1));
    expect(new Set(listed.map((m) => m?.checkpoint_id))).toEqual(new Set(won.map((x) => x.id)));
    // Each one chained to the one before it.
    const bySeq = [...won].sort((x, y) => x.seq - y.seq);
    expect(bySeq.map((x) => x.parent)).toEqual([null, ...bySeq.slice(0, -1).map((x) => x.id)]);
    // No lost write left anything visible, and no claim of a refused write remains.
    expect(objects.keys("ids/")).toHaveLength(won.length);
    expect(objects.keys("runs/chain/cp/")).toHaveLength(won.length);
  });
});
