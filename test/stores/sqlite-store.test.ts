import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FormatTooNewError } from "../../src/core/errors.js";
import { sha256 } from "../../src/core/record.js";
import { CheckpointManager } from "../../src/manager/checkpoint-manager.js";
import { LATEST_VERSION } from "../../src/stores/sqlite/migrations.js";
import { type SqliteDatabase, SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";
import { output, record } from "../support/records.js";

let dir: string;
const opened: { close(): unknown }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sqlite-"));
});

afterEach(async () => {
  for (const handle of opened.splice(0)) await handle.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(config: Record<string, unknown> = {}): Promise<SqliteStore> {
  const store = await SqliteStore.open({ dbPath: join(dir, "cairn.db"), ...config });
  opened.push(store);
  await store.setup();
  return store;
}

function raw(path = join(dir, "cairn.db")): Database.Database {
  const db = new Database(path);
  opened.push(db);
  return db;
}

describe("SqliteStore", () => {
  it("creates the database folder, turns WAL on and reports where it lives", async () => {
    const dbPath = join(dir, "nested", "deeper", "cairn.db");
    const store = await openStore({ dbPath });
    expect(store.strategy).toBe("sqlite");
    expect(store.persistent).toBe(true);
    expect(store.location).toBe(`sqlite:${dbPath}`);
    expect(raw(dbPath).pragma("journal_mode", { simple: true })).toBe("wal");
  });

  it("syncs every commit by default and only at WAL checkpoints with synchronous: normal", async () => {
    // The pragma is per connection, so it is read on the store's own one.
    const level = (store: SqliteStore) =>
      (store as unknown as { db: SqliteDatabase }).db.prepare("PRAGMA synchronous").get();
    expect(level(await openStore({ dbPath: join(dir, "full.db") }))).toEqual({ synchronous: 2 });
    const normal = await openStore({ dbPath: join(dir, "normal.db"), synchronous: "normal" });
    expect(level(normal)).toEqual({ synchronous: 1 });
    await normal.putCheckpoint(record("p1", 1), []);
    expect((await normal.getCheckpoint("p1_s1"))?.metadata.sequence).toBe(1);
  });

  it("is not persistent in memory", async () => {
    const store = await openStore({ dbPath: ":memory:" });
    expect(store.persistent).toBe(false);
    expect(store.location).toBe("sqlite::memory:");
    await store.putCheckpoint(record("p1", 1), []);
    expect((await store.getCheckpoint("p1_s1"))?.metadata.sequence).toBe(1);
  });

  it("records migrations and applies nothing new on a second setup", async () => {
    const store = await openStore();
    await store.setup();
    const again = await openStore();
    await again.setup();
    const rows = raw().prepare("SELECT version, name, applied_at FROM cairn_migrations").all() as {
      version: number;
      applied_at: string;
    }[];
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(LATEST_VERSION).toBe(6);
    expect(Number.isNaN(Date.parse(rows[0]?.applied_at ?? ""))).toBe(false);
  });

  it("refuses a schema written by a newer version", async () => {
    await openStore();
    raw().prepare("INSERT INTO cairn_migrations VALUES (99, 'future', '2099-01-01T00:00:00.000Z')").run();
    const store = await SqliteStore.open({ dbPath: join(dir, "cairn.db") });
    opened.push(store);
    const error = await store.setup().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatTooNewError);
    expect(error).toMatchObject({ code: "CAIRN_FORMAT_TOO_NEW", subject: "store schema", found: 99 });
    expect((error as Error).message).toMatch(/cairn_migrations: store schema format version 99 .*\(6\)/);

    // Through a manager (a guarded store): the same error, unwrapped, on every attempt.
    const manager = new CheckpointManager({ strategy: "sqlite", config: { dbPath: join(dir, "cairn.db") } });
    opened.push(manager);
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(manager.listPipelines()).rejects.toBeInstanceOf(FormatTooNewError);
    }
  });

  it("stores none of a conflicting put's outputs", async () => {
    const store = await openStore();
    const first = record("p1", 1);
    await store.putCheckpoint(first, [output("a")]);
    const duplicate = {
      ...record("p1", 2),
      metadata: { ...record("p1", 2).metadata, checkpoint_id: "p1_s1" },
    };
    await expect(store.putCheckpoint(duplicate, [output("a"), output("b")])).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
      id: "p1_s1",
    });
    expect(await store.listOutputHashes("p1")).toEqual([sha256("a")]);
    expect(await store.getCheckpoint("p1_s1")).toEqual(first);
    const size = raw().prepare("SELECT size FROM cairn_outputs WHERE hash = ?").pluck().get(sha256("a"));
    expect(size).toBe(1);
  });

  it("lists a row with a bad status as corrupt and refuses to get it", async () => {
    const store = await openStore();
    await store.putCheckpoint(record("p1", 1), []);
    await store.putCheckpoint(record("p1", 2), []);
    raw().prepare("UPDATE cairn_checkpoints SET status = 'bogus' WHERE checkpoint_id = 'p1_s2'").run();

    const listed = await store.listCheckpoints("p1");
    expect(listed).toHaveLength(2);
    expect(listed[0]?.ok).toBe(true);
    expect(listed[1]).toEqual({
      ok: false,
      corrupt: {
        pipelineId: "p1",
        checkpointId: "p1_s2",
        location: "cairn_checkpoints#p1_s2",
        reason: expect.stringContaining('status "bogus" is unknown'),
      },
    });
    await expect(store.getCheckpoint("p1_s2")).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await expect(store.getLatestCheckpoint("p1")).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
    await store.deleteRun("p1");
    expect(await store.listCheckpoints("p1")).toEqual([]);
  });

  it("uses a caller's open database, with its prefix, and leaves it open", async () => {
    const db = raw(join(dir, "own.db"));
    db.defaultSafeIntegers(true); // the caller's setting must not leak BigInts into metadata
    const store = await SqliteStore.open({ database: db satisfies SqliteDatabase, tablePrefix: "app_" });
    await store.setup();
    await store.putCheckpoint(record("p1", 1), [output("x")]);
    expect(store.location).toBe(`sqlite:${join(dir, "own.db")}`);
    expect((await store.getCheckpoint("p1_s1"))?.metadata).toEqual(record("p1", 1).metadata);
    await store.close();
    expect(db.open).toBe(true);
    expect(db.prepare("SELECT COUNT(*) FROM app_checkpoints").pluck().safeIntegers(false).get()).toBe(1);
    expect(db.pragma("journal_mode", { simple: true })).toBe("delete");
  });

  it("keeps data across close and reopen", async () => {
    const store = await openStore();
    await store.putCheckpoint(record("p1", 1), [output("x")]);
    await store.putCheckpoint(record("p10", 1), []);
    await store.updateCheckpoint("p1_s1", { status: "failed", error_message: "boom" });
    await store.close();

    const reopened = await openStore();
    const got = await reopened.getCheckpoint("p1_s1");
    expect(got?.metadata).toMatchObject({ status: "failed", error_message: "boom", resume_count: 0 });
    expect(got?.body).toBe(record("p1", 1).body);
    expect(await reopened.getOutputs("p1", [sha256("x"), sha256("y")])).toEqual(
      new Map([[sha256("x"), "x"]]),
    );
    expect(await reopened.listPipelineIds()).toEqual(["p1", "p10"]);
    expect(await reopened.listCheckpoints("p1")).toHaveLength(1);
  });

  it("updates only patched fields and reports a missing checkpoint", async () => {
    const store = await openStore();
    await store.putCheckpoint(record("p1", 1, { error_message: "kept" }), []);
    await store.updateCheckpoint("p1_s1", { resume_count: 2 });
    await store.updateCheckpoint("p1_s1", {});
    expect((await store.getCheckpoint("p1_s1"))?.metadata).toMatchObject({
      status: "completed",
      error_message: "kept",
      resume_count: 2,
    });
    await expect(store.updateCheckpoint("nope", { status: "failed" })).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await expect(store.updateCheckpoint("nope", {})).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
  });

  it("reads the latest checkpoint through the run index", async () => {
    const db = raw(join(dir, "spy.db"));
    const sources: string[] = [];
    const spy = new Proxy(db, {
      get(target, property) {
        if (property === "prepare") {
          return (sql: string) => {
            sources.push(sql);
            return target.prepare(sql);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const store = await SqliteStore.open({ database: spy });
    await store.setup();
    for (const n of [1, 3, 2]) await store.putCheckpoint(record("p1", n), []);
    expect((await store.getLatestCheckpoint("p1"))?.metadata.sequence).toBe(3);

    const latest = sources.find((sql) => sql.includes("LIMIT 1"));
    expect(latest).toBeDefined();
    const plan = db
      .prepare(`EXPLAIN QUERY PLAN ${latest}`)
      .all("p1")
      .map((row) => (row as { detail: string }).detail)
      .join("\n");
    expect(plan).toContain("USING INDEX cairn_checkpoints_run_sequence");
    expect(plan).not.toContain("TEMP B-TREE");
  });

  it("rejects bad configuration", async () => {
    await expect(SqliteStore.open({})).rejects.toMatchObject({ code: "CAIRN_INVALID_CONFIG" });
    await expect(SqliteStore.open({ dbPath: "x.db", tablePrefix: "a-b" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
    });
    await expect(SqliteStore.open({ database: {} })).rejects.toMatchObject({ code: "CAIRN_INVALID_CONFIG" });
    await expect(SqliteStore.open({ dbPath: "x.db", synchronous: "off" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
      message: expect.stringContaining('synchronous must be "full" or "normal"'),
    });
    const own = new Database(":memory:");
    opened.push(own);
    await expect(SqliteStore.open({ database: own, synchronous: "normal" })).rejects.toMatchObject({
      code: "CAIRN_INVALID_CONFIG",
    });
  });
});
