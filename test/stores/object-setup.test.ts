/**
 * The object store's setup: the conditional-writes probe (refused server, `singleWriter`, once
 * per location), the layout object, and read-only opens. Plus `MemoryObjects`' own semantics,
 * which every other object-store test relies on.
 */
import { makeRecord } from "cairn-pipelines/testing";
import { describe, expect, it } from "vitest";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";

const open = (objects: MemoryObjects, options: { readOnly?: boolean; singleWriter?: boolean } = {}) =>
  new ObjectStore({ strategy: "memobj", client: objects, ...options });

describe("object store setup", () => {
  it("refuses a server that ignores create-only writes, unless singleWriter", async () => {
    const liar = new MemoryObjects({ location: "memobj://liar", ignoreConditions: true });
    await expect(open(liar).setup()).rejects.toMatchObject({
      code: "CAIRN_STORE_UNSUPPORTED",
      endpoint: "memobj://liar",
    });
    expect(liar.keys("cairn-layout")).toEqual([]);
    await open(liar, { singleWriter: true }).setup();
    expect(liar.keys()).toEqual(["cairn-layout.json"]);
  });

  it("probes once per location per process", async () => {
    const objects = new MemoryObjects({ location: "memobj://probe-once" });
    await open(objects).setup();
    await open(objects).setup();
    expect(objects.calls.probeConditions).toBe(1);
  });

  it("writes the layout once, refuses a newer one and an unreadable one", async () => {
    const objects = new MemoryObjects({ location: "memobj://layout" });
    await open(objects).setup();
    expect(JSON.parse(objects.peek("cairn-layout.json") as string)).toEqual({ layout: 1 });
    objects.poke("cairn-layout.json", '{"layout":2}');
    await expect(open(objects).setup()).rejects.toMatchObject({ code: "CAIRN_FORMAT_TOO_NEW" });
    await expect(open(objects, { readOnly: true }).setup()).rejects.toMatchObject({
      code: "CAIRN_FORMAT_TOO_NEW",
    });
    objects.poke("cairn-layout.json", "{nope");
    await expect(open(objects).setup()).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
  });

  it("opens read-only without creating anything, and finds no store on an empty prefix", async () => {
    const empty = new MemoryObjects({ location: "memobj://empty" });
    await expect(open(empty, { readOnly: true }).setup()).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
    expect(empty.keys()).toEqual([]);
    expect(empty.calls.probeConditions).toBe(0);
    const objects = new MemoryObjects({ location: "memobj://ro" });
    const writer = open(objects);
    await writer.setup();
    const made = makeRecord("ro-run", 1);
    await writer.putCheckpoint(made.record, made.outputs);
    const before = objects.keys();
    const reader = open(objects, { readOnly: true });
    await reader.setup();
    expect(await reader.getLatestCheckpoint("ro-run")).toEqual(made.record);
    expect(await reader.getLease("ro-run")).toBeUndefined();
    expect(objects.keys()).toEqual(before);
  });
});

describe("MemoryObjects", () => {
  it("changes the ETag on every write, even of the same bytes, and honours conditions", async () => {
    const objects = new MemoryObjects();
    const first = await objects.put("k", "same");
    const second = await objects.put("k", "same");
    if (!first.ok || !second.ok) throw new Error("unconditional puts always succeed");
    expect(second.etag).not.toBe(first.etag);
    expect(await objects.put("k", "x", { ifMatch: first.etag })).toEqual({ ok: false });
    expect(await objects.put("k", "x", { ifNoneMatch: "*" })).toEqual({ ok: false });
    expect((await objects.put("k", "x", { ifMatch: second.etag })).ok).toBe(true);
    expect((await objects.get("k"))?.body.toString()).toBe("x");
    const got = await objects.get("k");
    expect((got?.serverTime.getTime() ?? 1) % 1000).toBe(0);
  });

  it("lists in key order with startAfter, delimiter, maxKeys and continuation", async () => {
    const objects = new MemoryObjects();
    for (const key of ["a/1", "a/2", "b/x/1", "b/x/2", "b/y", "c"]) objects.poke(key, key);
    expect(await objects.list("", { delimiter: "/" })).toEqual({ keys: ["c"], prefixes: ["a/", "b/"] });
    expect(await objects.list("b/", { delimiter: "/" })).toEqual({ keys: ["b/y"], prefixes: ["b/x/"] });
    expect((await objects.list("", { startAfter: "b/x/1" })).keys).toEqual(["b/x/2", "b/y", "c"]);
    const seen: string[] = [];
    let continuation: string | undefined;
    do {
      const page = await objects.list("", {
        delimiter: "/",
        maxKeys: 1,
        ...(continuation ? { continuation } : {}),
      });
      expect(page.keys.length + page.prefixes.length).toBe(1);
      seen.push(...page.prefixes, ...page.keys);
      continuation = page.continuation;
    } while (continuation);
    expect(seen).toEqual(["a/", "b/", "c"]);
  });

  it("fails the next calls on demand, and counts calls", async () => {
    const objects = new MemoryObjects();
    objects.failNext("get", 2);
    await expect(objects.get("k")).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    await expect(objects.get("k")).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    expect(await objects.get("k")).toBeUndefined();
    objects.failNext("put", 1, { afterApply: true });
    await expect(objects.put("k", "v")).rejects.toMatchObject({ maybeCommitted: true });
    expect(objects.peek("k")).toBe("v");
    expect(objects.lose("k")).toBe(true);
    expect(await objects.get("k")).toBeUndefined();
    expect(objects.calls).toMatchObject({ get: 4, put: 1 });
  });
});
