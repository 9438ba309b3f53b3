/**
 * CairnSaver beyond LangGraph's kit: the thread as a tree of verified records, the latest by
 * greatest id, tampering found on read, deep threads (delta channel maps), encryption, two
 * writers on one thread, idempotent puts and `deleteThread` leaving nothing behind.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Checkpoint, emptyCheckpoint, uuid6 } from "@langchain/langgraph-checkpoint";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { CairnSaver, threadPipelineName, threadRunId } from "../../src/langgraph/index.js";
import { ring } from "../support/at-rest-runs.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-saver-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
const sqliteUrl = () => `sqlite:${join(dir, `t${++counter}.db`)}`;
const meta = (step: number) => ({ source: "loop" as const, step, parents: {} });

/** A checkpoint with `values`, versions bumped for them over `base`. */
function next(base: Checkpoint | undefined, values: Record<string, unknown>, id = uuid6(-1)): Checkpoint {
  const cp = base ? structuredClone({ ...base, channel_values: {} }) : emptyCheckpoint();
  cp.id = id;
  cp.ts = new Date().toISOString();
  cp.channel_values = { ...(base?.channel_values ?? {}), ...values };
  for (const channel of Object.keys(values))
    cp.channel_versions[channel] = ((base?.channel_versions[channel] as number | undefined) ?? 0) + 1;
  return cp;
}

const newVersions = (cp: Checkpoint, values: Record<string, unknown>) =>
  Object.fromEntries(Object.keys(values).map((c) => [c, cp.channel_versions[c] as number]));

describe("CairnSaver", () => {
  it("keeps a thread as a tree: a fork is a second child of the same parent, and validates", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const root = { configurable: { thread_id: "t1", checkpoint_ns: "" } };
    const a = next(undefined, { x: 1 });
    const ca = await saver.put(root, a, meta(0), newVersions(a, { x: 1 }));
    const b = next(a, { x: 2 });
    await saver.put(ca, b, meta(1), newVersions(b, { x: 2 }));
    const c = next(a, { x: 3 });
    const cc = await saver.put(ca, c, { source: "fork", step: 1, parents: {} }, newVersions(c, { x: 3 }));

    const latest = await saver.getTuple(root);
    expect(latest?.config).toEqual(cc);
    expect(latest?.checkpoint.channel_values).toEqual({ x: 3 });
    expect(latest?.parentConfig?.configurable?.checkpoint_id).toBe(a.id);

    const store = await saver.manager.getStore();
    const listing = await store.listCheckpoints(threadRunId("t1"));
    const parents = listing.map((e) => (e.ok ? e.metadata.parent_checkpoint_id : "corrupt"));
    const rootId = listing[0]?.ok ? listing[0].metadata.checkpoint_id : "";
    expect(parents).toEqual([null, rootId, rootId]);
    expect(listing.map((e) => e.ok && e.metadata.stage_name)).toEqual(["loop", "loop", "fork"]);
    const validation = await saver.manager.validateRun(threadRunId("t1"));
    expect(validation.checkpoints.flatMap((v) => v.problems)).toEqual([]);
    expect(validation.history).toEqual([]);
    expect(validation.valid).toBe(true);
    await saver.close();
  });

  it("answers the latest as the greatest checkpoint id, whatever order the puts came in", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const root = { configurable: { thread_id: "t2", checkpoint_ns: "" } };
    const [low, high] = [uuid6(-1), uuid6(-1)].sort();
    const h = next(undefined, { v: "high" }, high);
    await saver.put(root, h, meta(0), newVersions(h, { v: "high" }));
    const l = next(undefined, { v: "low" }, low);
    await saver.put(root, l, meta(0), newVersions(l, { v: "low" }));
    expect((await saver.getTuple(root))?.checkpoint.id).toBe(high);
    const fresh = new CairnSaver({ manager: saver.manager });
    expect((await fresh.getTuple(root))?.checkpoint.channel_values).toEqual({ v: "high" });
    await saver.close();
  });

  it("rebuilds every channel of a deep thread with many channels from a fresh reader", async () => {
    const url = sqliteUrl();
    const writer = new CairnSaver({ store: url });
    let config = { configurable: { thread_id: "deep", checkpoint_ns: "" } } as Parameters<
      CairnSaver["put"]
    >[0];
    let cp: Checkpoint | undefined;
    const expected: Checkpoint[] = [];
    for (let step = 0; step < 60; step++) {
      const values = { [`ch${step}`]: { step, items: [step, step * 2] }, shared: step % 7 };
      cp = next(cp, values);
      config = await writer.put(config, cp, meta(step), newVersions(cp, values));
      expected.push(structuredClone(cp));
    }
    await writer.close();
    const reader = new CairnSaver({ store: url });
    for (const step of [59, 47, 33, 16, 1]) {
      const want = expected[step] as Checkpoint;
      const got = await reader.getTuple({
        configurable: { thread_id: "deep", checkpoint_ns: "", checkpoint_id: want.id },
      });
      expect(got?.checkpoint).toEqual(want);
    }
    // Full channel maps at most every 16 records: the rest store only the channels they changed.
    const store = await reader.manager.getStore();
    const bodies = await Promise.all(
      (await store.listCheckpoints(threadRunId("deep"))).map(async (e) =>
        e.ok ? ((await store.getCheckpoint(e.metadata.checkpoint_id))?.body ?? "") : "",
      ),
    );
    // Up to 32 channels a map is always whole (steps 0-30); past that, every 8th record is.
    const full = bodies.map((b, step) => (b.includes('"full":true') ? step : -1)).filter((s) => s >= 0);
    expect(full).toEqual([...Array.from({ length: 31 }, (_, i) => i), 38, 46, 54]);
    await reader.close();
  });

  it("fails a read of a tampered record or value with CAIRN_CORRUPT instead of returning it", async () => {
    const path = join(dir, "tamper.db");
    const saver = new CairnSaver({ store: `sqlite:${path}` });
    const root = { configurable: { thread_id: "t3", checkpoint_ns: "" } };
    const a = next(undefined, { answer: "forty-two" });
    const config = await saver.put(root, a, meta(0), newVersions(a, { answer: "forty-two" }));
    await saver.putWrites(config, [["answer", "forty-three"]], "task-1");
    expect((await saver.getTuple(root))?.pendingWrites).toEqual([["task-1", "answer", "forty-three"]]);
    await saver.close();

    const db = new Database(path);
    db.prepare("UPDATE cairn_outputs SET body = replace(body, 'forty-three', 'forty-four')").run();
    db.close();
    const reader = new CairnSaver({ store: `sqlite:${path}` });
    await expect(reader.getTuple(root)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });

    const db2 = new Database(path);
    db2.prepare("UPDATE cairn_outputs SET body = replace(body, 'forty-four', 'forty-three')").run();
    db2
      .prepare(
        `UPDATE cairn_checkpoints SET body = replace(body, '"step":0', '"step":5') WHERE stage_name = 'loop'`,
      )
      .run();
    db2.close();
    await expect(reader.getTuple(root)).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await expect(
      (async () => {
        for await (const _ of reader.list(root)) void _;
      })(),
    ).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await reader.close();
  });

  it("works over an encrypted, compressed store: nothing readable at rest, everything back with the key", async () => {
    const path = join(dir, "sealed.db");
    const saver = new CairnSaver({ store: `sqlite:${path}`, encryption: ring(), compression: "gzip" });
    const root = { configurable: { thread_id: "secret", checkpoint_ns: "" } };
    const a = next(undefined, { note: "Zebra-Marker-q7X9 top secret" });
    const config = await saver.put(root, a, meta(0), newVersions(a, { note: "x" }));
    await saver.putWrites(config, [["note", "Zebra-Marker-q7X9 pending"]], "t");
    const tuple = await saver.getTuple(root);
    expect(tuple?.checkpoint.channel_values).toEqual({ note: "Zebra-Marker-q7X9 top secret" });
    expect(tuple?.pendingWrites).toEqual([["t", "note", "Zebra-Marker-q7X9 pending"]]);
    await saver.close();
    const db = new Database(path, { readonly: true });
    const rows = db
      .prepare("SELECT body FROM cairn_checkpoints UNION ALL SELECT body FROM cairn_outputs")
      .all();
    db.close();
    expect(JSON.stringify(rows)).not.toContain("Zebra-Marker");
    const withoutKey = new CairnSaver({ store: `sqlite:${path}` });
    await expect(withoutKey.getTuple(root)).rejects.toMatchObject({ code: "CAIRN_KEY_MISSING" });
    await withoutKey.close();
  });

  it("keeps every pending write when two savers write the same checkpoint at once", async () => {
    const url = sqliteUrl();
    const one = new CairnSaver({ store: url });
    const two = new CairnSaver({ store: url });
    const root = { configurable: { thread_id: "busy", checkpoint_ns: "" } };
    const a = next(undefined, { n: 0 });
    const config = await one.put(root, a, meta(0), newVersions(a, { n: 0 }));
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 ? one : two).putWrites(config, [["n", i]], `task-${String(i).padStart(2, "0")}`),
      ),
    );
    const tuple = await new CairnSaver({ store: url }).getTuple(root);
    expect(tuple?.pendingWrites?.map((w) => w[2])).toEqual(Array.from({ length: 12 }, (_, i) => i));
    const store = await one.manager.getStore();
    const sequences = (await store.listCheckpoints(threadRunId("busy"))).map(
      (e) => e.ok && e.metadata.sequence,
    );
    expect(sequences).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    await Promise.all([one.close(), two.close()]);
  });

  it("takes a second put of the same checkpoint as a no-op, and other content under its id as a conflict", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const root = { configurable: { thread_id: "again", checkpoint_ns: "" } };
    const a = next(undefined, { k: 1 });
    await saver.put(root, a, meta(0), newVersions(a, { k: 1 }));
    await expect(saver.put(root, a, meta(0), newVersions(a, { k: 1 }))).resolves.toBeDefined();
    await expect(saver.put(root, a, meta(3), newVersions(a, { k: 1 }))).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    await saver.close();
  });

  it("deletes a thread with its namespaces, pending writes and values, and only that thread", async () => {
    const manager = new CheckpointManager({ store: sqliteUrl() });
    const saver = new CairnSaver({ manager });
    for (const thread of ["gone", "kept"])
      for (const ns of ["", "sub:1", "sub:2|inner:3"]) {
        const a = next(undefined, { v: `${thread}/${ns}` });
        const config = await saver.put(
          { configurable: { thread_id: thread, checkpoint_ns: ns } },
          a,
          meta(0),
          { v: 1 },
        );
        await saver.putWrites(config, [["v", "w"]], "task");
      }
    const store = await manager.getStore();
    expect((await store.listRuns({ pipelineName: threadPipelineName("gone") })).runs).toHaveLength(3);
    await saver.deleteThread("gone");
    expect((await store.listRuns({ pipelineName: threadPipelineName("gone") })).runs).toHaveLength(0);
    for (const ns of ["", "sub:1", "sub:2|inner:3"]) {
      expect(await store.listCheckpoints(threadRunId("gone", ns))).toEqual([]);
      expect(await store.listOutputHashes(threadRunId("gone", ns))).toEqual([]);
      const kept = await saver.getTuple({ configurable: { thread_id: "kept", checkpoint_ns: ns } });
      expect(kept?.checkpoint.channel_values).toEqual({ v: `kept/${ns}` });
    }
    // The saver was handed a manager: closing the saver leaves it open.
    await saver.close();
    expect(await manager.listPipelines()).toHaveLength(3);
    await manager.close();
  });

  it("refuses bad configs with typed errors", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const cp = emptyCheckpoint();
    await expect(saver.put({}, cp, meta(0), {})).rejects.toMatchObject({ code: "CAIRN_INVALID_ARGUMENT" });
    await expect(saver.put({ configurable: { thread_id: "" } }, cp, meta(0), {})).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    await expect(saver.putWrites({ configurable: { thread_id: "t" } }, [], "x")).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    expect(await saver.getTuple({ configurable: {} })).toBeUndefined();
    await saver.close();
  });
});

describe("retention on LangGraph threads", () => {
  it("never trims a thread (its records need their ancestors), and removes it whole once all of it is old", async () => {
    const url = sqliteUrl();
    const saver = new CairnSaver({ store: url });
    const root = { configurable: { thread_id: "aging", checkpoint_ns: "" } };
    const a = next(undefined, { v: 1 });
    const ca = await saver.put(root, a, meta(0), newVersions(a, { v: 1 }));
    await new Promise((r) => setTimeout(r, 20));
    const b = next(a, { v: 2 });
    await saver.put(ca, b, meta(1), newVersions(b, { v: 2 }));
    const store = await saver.manager.getStore();
    const [ta, tb] = (await store.listCheckpoints(threadRunId("aging"))).map((e) =>
      e.ok ? Date.parse(e.metadata.timestamp) : 0,
    ) as [number, number];
    const DAY = 86_400_000;
    // The cleaner's clock at the second checkpoint, the cutoff half-way back to the first.
    const cleaner = new CheckpointManager({ store: url, clock: () => new Date(tb) });
    const partly = await cleaner.cleanupOldCheckpoints({ retentionDays: (tb - ta) / 2 / DAY });
    expect(partly.deletedCheckpoints).toEqual([]);
    expect(partly.skipped).toEqual([
      { pipelineId: threadRunId("aging"), reason: expect.stringContaining("removed whole") },
    ]);
    expect((await saver.getTuple(root))?.checkpoint.channel_values).toEqual({ v: 2 });
    const later = new CheckpointManager({ store: url, clock: () => new Date(tb + DAY) });
    expect(await later.autoCleanup({ retentionDays: 0.5 })).toBe(2);
    expect(await saver.getTuple(root)).toBeUndefined();
    await later.close();
    await Promise.all([cleaner.close(), saver.close()]);
  });
});

describe("values through the serde", () => {
  it("round-trips messages, bytes, maps, sets, dates and objects with a $cairn key", async () => {
    const { AIMessage, HumanMessage } = await import("@langchain/core/messages");
    const saver = new CairnSaver({ store: sqliteUrl() });
    const values = {
      messages: [new HumanMessage("hi"), new AIMessage({ content: "hello", id: "m2" })],
      bytes: new Uint8Array([0, 1, 254, 255]),
      map: new Map<string, unknown>([
        ["a", 1],
        ["b", { c: [2] }],
      ]),
      set: new Set(["x", "y"]),
      when: new Date("2026-12-05T00:00:00.000Z"),
      tagged: { $cairn: "not-a-tag", v: 1 },
      plain: { z: 1, a: [true, null, "lc"], "-0": -0 },
      lcKey: { lc: 5, type: "constructor", nested: { lc: 1 } },
      holes: { a: undefined, b: [1, undefined] },
    };
    const root = { configurable: { thread_id: "types", checkpoint_ns: "" } };
    const cp = next(undefined, values);
    const config = await saver.put(root, cp, meta(0), newVersions(cp, values));
    await saver.putWrites(
      config,
      [
        ["messages", [new HumanMessage("more")]],
        ["bytes", new Uint8Array([7])],
      ],
      "t",
    );
    const tuple = await new CairnSaver({ manager: saver.manager }).getTuple(root);
    const got = tuple?.checkpoint.channel_values as typeof values;
    expect(got.messages.map((m) => [m.constructor.name, m.content])).toEqual([
      ["HumanMessage", "hi"],
      ["AIMessage", "hello"],
    ]);
    expect(got.bytes).toEqual(values.bytes);
    expect(got.map).toEqual(values.map);
    expect(got.set).toEqual(values.set);
    expect(got.tagged).toEqual(values.tagged);
    expect(got.plain).toEqual({ z: 1, a: [true, null, "lc"], "-0": 0 });
    expect(got.lcKey).toEqual(values.lcKey);
    expect(got.holes).toStrictEqual({ a: undefined, b: [1, undefined] });
    expect(tuple?.pendingWrites?.map(([, ch]) => ch)).toEqual(["messages", "bytes"]);
    const written = tuple?.pendingWrites?.[0]?.[2] as unknown[];
    expect(written[0]).toBeInstanceOf(HumanMessage);
    await saver.close();
  });
});

describe("names", () => {
  it("stores threads and subgraph namespaces with long, odd ids within cairn's 128-character names", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const thread = `user/${"x".repeat(300)} ✓ "quoted"`;
    const ns = `a_very_long_subgraph_node_name:${uuid6(-1)}|inner_node_with_long_name:${uuid6(-1)}`;
    const config = { configurable: { thread_id: thread, checkpoint_ns: ns } };
    const a = next(undefined, { v: 1 });
    const stored = await saver.put(config, a, meta(0), newVersions(a, { v: 1 }));
    for (let i = 0; i < 3; i++) await saver.putWrites(stored, [["v", i]], `task-${i}`);
    const tuple = await saver.getTuple(config);
    expect(tuple?.config.configurable).toEqual({ thread_id: thread, checkpoint_ns: ns, checkpoint_id: a.id });
    expect(tuple?.pendingWrites).toHaveLength(3);
    expect(threadRunId(thread, ns).length).toBeLessThanOrEqual(66);
    await saver.close();
  });
});

describe("list", () => {
  it("orders checkpoints newest first across plain and hashed ids, with before and limit", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    const root = { configurable: { thread_id: "mixed", checkpoint_ns: "" } };
    // "k/…" ids are not name-safe: stored under a hash, placed by reading them.
    const ids = ["a1", "k/2", "b3", "k/4", "c5", "k/6", "d7"];
    for (const [step, id] of ids.entries()) {
      const cp = next(undefined, { step }, id);
      await saver.put(root, cp, meta(step), newVersions(cp, { step }));
    }
    const listed = async (options: Parameters<CairnSaver["list"]>[1]) => {
      const out: string[] = [];
      for await (const t of saver.list(root, options)) out.push(t.checkpoint.id);
      return out;
    };
    const all = [...ids].sort().reverse();
    expect(await listed({})).toEqual(all);
    expect(await listed({ limit: 3 })).toEqual(all.slice(0, 3));
    const before = { configurable: { ...root.configurable, checkpoint_id: "k/4" } };
    expect(await listed({ before })).toEqual(all.filter((id) => id < "k/4"));
    expect(await listed({ before, limit: 2, filter: { step: 2 } })).toEqual(["b3"]);
    await saver.close();
  });
});

describe("writes before their checkpoint", () => {
  it("keeps writes LangGraph sent before the put of their checkpoint, on the latest read too", async () => {
    const url = sqliteUrl();
    const saver = new CairnSaver({ store: url });
    const root = { configurable: { thread_id: "early", checkpoint_ns: "" } };
    const a = next(undefined, { v: 1 });
    const named = { configurable: { ...root.configurable, checkpoint_id: a.id } };
    await saver.putWrites(named, [["v", 2]], "early-task");
    await saver.put(root, a, meta(0), newVersions(a, { v: 1 }));
    const fresh = new CairnSaver({ store: url });
    for (const s of [saver, fresh]) {
      expect((await s.getTuple(root))?.pendingWrites).toEqual([["early-task", "v", 2]]);
      expect((await s.getTuple(named))?.pendingWrites).toEqual([["early-task", "v", 2]]);
    }
    await Promise.all([saver.close(), fresh.close()]);
  });
});

describe("channel maps", () => {
  it("stores the whole map when it costs little beside the values a record stores", async () => {
    const saver = new CairnSaver({ store: sqliteUrl() });
    let config = { configurable: { thread_id: "wide", checkpoint_ns: "" } } as Parameters<
      CairnSaver["put"]
    >[0];
    let cp: Checkpoint | undefined;
    for (let step = 0; step < 40; step++) {
      // 40 channels (past the 32 always stored whole), each new value ~100 KB: a whole map is < 5%.
      const values = { [`ch${step}`]: "v".repeat(100_000) };
      cp = next(cp, values);
      config = await saver.put(config, cp, meta(step), newVersions(cp, values));
    }
    const store = await saver.manager.getStore();
    const bodies = await Promise.all(
      (await store.listCheckpoints(threadRunId("wide"))).map(async (e) =>
        e.ok ? ((await store.getCheckpoint(e.metadata.checkpoint_id))?.body ?? "") : "",
      ),
    );
    expect(bodies.every((b) => b.includes('"full":true'))).toBe(true);
    await saver.close();
  });
});
