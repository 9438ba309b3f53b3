/**
 * Maintenance on the object store, beyond the conformance kit: imports that span pages and
 * replace a paged run, deleteOutputs racing a put of the same output, rebuildIndexes after a
 * crashed write, status updates of paged entries, stale runs-by-name entries, lost objects.
 */
import { makeRecord } from "cairn-pipelines/testing";
import { describe, expect, it } from "vitest";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import type { ObjectClient } from "../../src/stores/object/objects.js";
import { idsOf, openStore, tipOf, writeRun } from "./object-fixtures.js";

const imported = (runId: string, n: number, minute: number) =>
  Array.from({ length: n }, (_, i) => {
    const made = makeRecord(runId, i + 1, {
      outputs: { [`s${i}`]: `"${runId} ${minute} ${i}"` },
      timestamp: new Date(Date.UTC(2024, 0, 1, 0, minute, 0, i)).toISOString(),
    });
    return { record: made.record, outputs: made.outputs };
  });

describe("object store maintenance", () => {
  it("imports a run spanning pages, then replaces it, deleting what the old one held", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const old = imported("big", 600, 1);
    await store.importRun("big", old, { replace: false });
    const oldPages = tipOf(objects, "big").pages.map((p) => p.key);
    expect(oldPages.length).toBeGreaterThan(1);
    const reader = await openStore(objects);
    expect(idsOf(await reader.listCheckpoints("big"))).toEqual(
      old.map((c) => c.record.metadata.checkpoint_id),
    );
    expect(await reader.getCheckpoint(old[10]?.record.metadata.checkpoint_id as string)).toEqual(
      old[10]?.record,
    );
    expect(await reader.getLatestCheckpoint("big")).toEqual(old.at(-1)?.record);
    // Replace with a shorter run that keeps the first 5 checkpoints' ids.
    const fresh = [...old.slice(0, 5), ...imported("big", 300, 2).slice(5)];
    await store.importRun("big", fresh, { replace: true });
    for (const key of oldPages) expect(objects.peek(key)).toBeUndefined();
    expect(objects.keys("runs/big/cp/")).toHaveLength(300);
    expect(objects.keys("ids/")).toHaveLength(300);
    expect(objects.keys("runs/big/out/")).toHaveLength(300);
    expect(idsOf(await reader.listCheckpoints("big"))).toEqual(
      fresh.map((c) => c.record.metadata.checkpoint_id),
    );
    expect(await reader.getCheckpoint(old[3]?.record.metadata.checkpoint_id as string)).toEqual(
      old[3]?.record,
    );
    expect(await reader.getCheckpoint(old[400]?.record.metadata.checkpoint_id as string)).toBeUndefined();
    expect(objects.keys("index/")).toHaveLength(1);
  });

  it("writes an output back when a racing put re-committed it while deleteOutputs deleted it", async () => {
    const objects = new MemoryObjects();
    const writer = await openStore(objects);
    const shared = makeRecord("race-out", 1, { outputs: { s: '"shared"' } });
    await writer.putCheckpoint(shared.record, shared.outputs);
    const hash = shared.outputs[0]?.hash as string;
    // The deleter's batch delete runs only after the writer committed a checkpoint naming the hash.
    const hooked: ObjectClient = {
      location: objects.location,
      get: (k) => objects.get(k),
      put: (k, b, c) => objects.put(k, b, c),
      delete: (k) => objects.delete(k),
      list: (p, o) => objects.list(p, o),
      probeConditions: () => objects.probeConditions(),
      close: () => objects.close(),
      deleteMany: async (keys) => {
        if (keys.some((k) => k.endsWith(hash))) {
          const again = makeRecord("race-out", 2, { outputs: { s: '"shared"' } });
          await writer.putCheckpoint(again.record, again.outputs);
        }
        await objects.deleteMany(keys);
      },
    };
    const deleter = await openStore(hooked);
    expect(await deleter.deleteOutputs("race-out", [hash])).toBe(1);
    expect(await writer.listOutputHashes("race-out")).toEqual([hash]);
    expect((await writer.getOutputs("race-out", [hash])).get(hash)).toBe('"shared"');
  });

  it("rebuilds a lost runs-by-name entry and removes what a crashed write left", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const [first] = await writeRun(store, "crashed", 1);
    objects.failNext("put", 1, { match: (k) => k.startsWith("tips/") });
    const dead = makeRecord("crashed", 2, { outputs: { d: '"dead"' } });
    await expect(store.putCheckpoint(dead.record, dead.outputs)).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
    });
    const entry = objects.keys("index/")[0] as string;
    objects.lose(entry);
    const done = await store.rebuildIndexes("crashed");
    expect(done.join("\n")).toContain("runs-by-name entry");
    expect(done.join("\n")).toContain(dead.record.metadata.checkpoint_id);
    expect(objects.keys("index/")).toEqual([entry]);
    expect(objects.peek(`ids/${dead.record.metadata.checkpoint_id}`)).toBeUndefined();
    expect(objects.keys("runs/crashed/cp/")).toHaveLength(1);
    expect(objects.keys("runs/crashed/out/")).toHaveLength(1);
    expect(idsOf(await store.listCheckpoints("crashed"))).toEqual([first?.metadata.checkpoint_id]);
    expect(await store.rebuildIndexes("crashed")).toEqual([]);
  });

  it("updates the status of a checkpoint whose entry lives in a page", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const run = await writeRun(store, "paged", 260);
    const id = run[2]?.metadata.checkpoint_id as string;
    await store.updateCheckpoint(id, { status: "failed", error_message: "boom" });
    const other = await openStore(objects);
    expect((await other.getCheckpoint(id))?.metadata).toMatchObject({
      status: "failed",
      error_message: "boom",
    });
    await expect(other.updateCheckpoint("paged_nope_x", { status: "failed" })).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
  });

  it("skips stale runs-by-name entries and still pages every live run exactly once", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    for (const [run, minute] of [
      ["r1", 1],
      ["r2", 2],
      ["r3", 3],
      ["r4", 4],
    ] as const) {
      const made = makeRecord(run, 1, { timestamp: new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString() });
      await store.putCheckpoint(made.record, made.outputs);
    }
    await store.deleteRun("r3");
    // A stale hint: an entry whose run's tip names another creation time.
    objects.poke(`index/${Buffer.from("conformance").toString("hex")}/00~00~`, "{}");
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await store.listRuns({
        pipelineName: "conformance",
        limit: 1,
        ...(cursor ? { cursor } : {}),
      });
      seen.push(...page.runs.map((r) => r.pipelineId));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(["r4", "r2", "r1"]);
  });

  it("lists a referenced object that was lost as a corrupt entry, and removes it", async () => {
    const objects = new MemoryObjects();
    const store = await openStore(objects);
    const run = await writeRun(store, "lossy", 3);
    const key = objects
      .keys("runs/lossy/cp/")
      .find((k) => k.includes(run[1]?.metadata.checkpoint_id as string));
    objects.lose(key as string);
    const listing = await store.listCheckpoints("lossy");
    const corrupt = listing.flatMap((e) => (e.ok ? [] : [e.corrupt]));
    expect(corrupt).toEqual([
      {
        pipelineId: "lossy",
        checkpointId: run[1]?.metadata.checkpoint_id,
        location: key,
        reason: "the object is missing",
      },
    ]);
    expect(JSON.parse(await store.readCorruptEntry(corrupt[0] as never))).toMatchObject({ missing: true });
    await store.removeCorruptEntry(corrupt[0] as never);
    expect(idsOf(await store.listCheckpoints("lossy"))).toEqual(
      [run[0], run[2]].map((r) => r?.metadata.checkpoint_id),
    );
    await expect(store.removeCorruptEntry(corrupt[0] as never)).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
  });
});
