/**
 * What the store's raw bytes give away, read around cairn: every file of the file store, the
 * SQLite database file and its WAL, PostgreSQL rows as text, Redis values by plain commands.
 * With encryption on there is no trace of a marker that every state and output carries (as it
 * is, or base64-encoded); with it off the marker is there, which shows the reading sees the data.
 * With compression on, a compressible body and output are stored smaller.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MARKER,
  markerTraces,
  outputOf,
  ring,
  stateAfter,
  storedRefs,
  writeRun,
} from "../support/at-rest-runs.js";
import { openRawStore, RAW_STORE_KINDS, type RawStore } from "../support/at-rest-stores.js";

describe.each(RAW_STORE_KINDS)("raw bytes of the %s store", (kind) => {
  let store: RawStore;
  beforeEach(async () => {
    store = await openRawStore(kind);
  });
  afterEach(() => store.close());

  it("in the clear, the marker is in the raw bytes (the reading sees the data)", async () => {
    await writeRun(store.manager(), "plain-run");
    const traces = markerTraces(await store.dump());
    expect(traces.length).toBeGreaterThan(0);
  });

  it.each([
    ["encryption", {}],
    ["encryption and compression", { compression: "gzip" as const }],
  ])("with %s on, no trace of the marker anywhere", async (_what, options) => {
    const manager = store.manager({ ...options, encryption: ring() });
    const ids = await writeRun(manager, "secret-run");
    // Also a status change and a resume, which rewrite rows and files in some stores.
    await manager.resumePipeline("secret-run");
    const dump = await store.dump();
    expect(dump.length).toBeGreaterThan(0);
    expect(markerTraces(dump)).toEqual([]);
    // Every stored body and output is an encrypted envelope.
    for (const id of ids)
      expect(await store.body(id)).toMatch(/^\{"\$cairn":"rest","v":1,.*"e":\{"a":"A256GCM"/);
    const outputs = await store.outputs("secret-run");
    expect(outputs.size).toBe(3);
    for (const text of outputs.values()) expect(text).toContain('"e":{"a":"A256GCM"');
    // The key record is there, holding the data key wrapped only.
    const record = JSON.parse((await store.runKey("secret-run")) as string) as Record<string, unknown>;
    expect(record).toMatchObject({ v: 1, kek: "k1", a: "A256GCM" });
    // And it all reads back.
    const loaded = await store.manager({ encryption: ring() }).loadLatestCheckpoint("secret-run");
    expect(loaded?.stateData).toEqual(stateAfter("score"));
    expect(loaded?.agentOutputs.score).toEqual(outputOf("score"));
  });

  it("with compression on, a compressible body and output are stored smaller", async () => {
    const [plainId] = await writeRun(store.manager(), "plain-run", ["only"]);
    const [packedId] = await writeRun(store.manager({ compression: "gzip" }), "packed-run", ["only"]);
    const plainBody = await store.body(plainId as string);
    const packedBody = await store.body(packedId as string);
    expect(plainBody).toContain(MARKER);
    expect(packedBody).toMatch(/^\{"\$cairn":"rest","v":1,"z":"gzip","d":"/);
    expect(packedBody.length).toBeLessThan(plainBody.length / 3);
    const plainOutput = (await store.outputs("plain-run")).get(storedRefs(plainBody).only as string);
    const packedOutput = (await store.outputs("packed-run")).get(storedRefs(plainBody).only as string);
    expect(plainOutput).toContain(MARKER);
    // A compressed output keeps its SHA-256 address: the same address in both runs.
    expect(packedOutput).toMatch(/^\{"\$cairn":"rest","v":1,"z":"gzip","d":"/);
    expect((packedOutput as string).length).toBeLessThan((plainOutput as string).length / 3);
    // The whole store too: the compressed run is the smaller share of the raw bytes.
    const dump = await store.dump();
    const bytesOf = (run: string) =>
      dump.filter((p) => p.bytes.includes(run)).reduce((sum, p) => sum + p.bytes.length, 0);
    // (SQLite: one file for both runs, measured by the texts above.)
    if (kind !== "sqlite") expect(bytesOf("packed-run")).toBeLessThan(bytesOf("plain-run"));
    const loaded = await store.manager().loadCheckpoint(packedId as string);
    expect(loaded.stateData).toEqual(stateAfter("only"));
  });

  it("below minBytes, compression leaves the text as it is", async () => {
    const manager = store.manager({ compression: { algorithm: "gzip", minBytes: 1_000_000 } });
    const [id] = await writeRun(manager, "small-run", ["only"]);
    expect(await store.body(id as string)).toContain(MARKER);
  });
});
