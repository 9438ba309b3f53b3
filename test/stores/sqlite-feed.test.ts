/**
 * The SQLite store's change feed and meta values: what each mutation records (in the write's
 * own transaction), that a refused write records nothing, trimming, cursors of other feeds,
 * a database from before the feed, and meta values. Waiting for changes: sqlite-feed-wait.test.ts.
 */
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  CheckpointNotFoundError,
  FeedTrimmedError,
  InvalidArgumentError,
  InvalidConfigError,
  LeaseLostError,
  TipMovedError,
} from "../../src/core/errors.js";
import { openStore as openSpec } from "../../src/stores/registry.js";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";
import type { CheckpointStore, StoreChange } from "../../src/stores/types.js";
import { output, record } from "../support/records.js";

let dir: string;
const opened: { close(): unknown }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sqlite-feed-"));
});

afterEach(async () => {
  for (const handle of opened.splice(0).reverse()) await handle.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(config: Record<string, unknown> = {}): Promise<SqliteStore> {
  const store = await SqliteStore.open({ dbPath: join(dir, "cairn.db"), ...config });
  opened.push(store);
  await store.setup();
  return store;
}

/** Every retained change, paged through with a small limit so paging is exercised too. */
async function allChanges(store: CheckpointStore, since?: string): Promise<StoreChange[]> {
  const read = store.readChanges?.bind(store);
  if (read === undefined) throw new Error("no feed");
  const all: StoreChange[] = [];
  let cursor = since;
  for (;;) {
    const page = await read(cursor, 3);
    all.push(...page);
    if (page.length < 3) return all;
    cursor = page.at(-1)?.cursor;
  }
}

/** The changes without cursor and time, for comparison. */
const brief = (changes: StoreChange[]) =>
  changes.map(({ type, pipelineId, pipelineName, checkpointId, sequence }) =>
    [type, pipelineId, pipelineName, checkpointId, sequence].filter((v) => v !== undefined).join(" "),
  );

const positionOf = (cursor: string) => Number(cursor.split(":")[1]);

describe("SqliteStore change feed", () => {
  it("records every mutation, in commit order, with cursors that continue after each change", async () => {
    const store = await openStore();
    const empty = await store.feedCursor();
    expect(empty).toMatch(/^[0-9a-f]{16}:0$/);
    expect(await store.readChanges(undefined, 10)).toEqual([]);

    await store.putCheckpoint(record("a", 1), [output("out")]);
    await store.putCheckpoint(record("a", 2, { pipeline_name: "demo" }), [], undefined, {
      expectedTip: "a_s1",
    });
    await store.putCheckpoint(record("b", 1, { pipeline_name: "other" }), []);
    await store.updateCheckpoint("a_s1", { status: "failed", error_message: "boom" });
    await store.updateCheckpoint("a_s1", {}); // changes nothing: no change
    expect(await store.deleteCheckpoints("a", ["a_s2", "a_missing", "b_s1"])).toBe(1);
    await store.importRun(
      "c",
      [
        { record: record("c", 1), outputs: [] },
        { record: record("c", 2), outputs: [] },
      ],
      {
        replace: false,
      },
    );
    await store.importRun("c", [{ record: record("c", 1, { pipeline_name: "again" }), outputs: [] }], {
      replace: true,
    });
    await store.deleteRun("b");
    await store.deleteRun("nothing-here"); // nothing stored: no change
    // Not changes: outputs, leases, key records, meta.
    await store.deleteOutputs("a", [output("out").hash]);
    const { lease } = (await store.acquireLease("a", "me", 10_000)) as { lease: { token: number } };
    expect(lease.token).toBeGreaterThan(0);
    await store.putRunKey("k", "key-record", undefined);
    await store.putMeta("replica.x", "{}");

    const changes = await allChanges(store);
    expect(brief(changes)).toEqual([
      "checkpoint a demo a_s1 1",
      "checkpoint a demo a_s2 2",
      "checkpoint b other b_s1 1",
      "status a demo a_s1 1",
      "deleted a demo a_s2 2",
      "checkpoint c demo c_s1 1",
      "checkpoint c demo c_s2 2",
      "deleted c demo",
      "checkpoint c again c_s1 1",
      "deleted b other",
    ]);
    // One feed, positions strictly increasing; each cursor continues right after its change.
    const feedId = empty.split(":")[0];
    expect(changes.every((c) => c.cursor.startsWith(`${feedId}:`))).toBe(true);
    const positions = changes.map((c) => positionOf(c.cursor));
    expect(positions).toEqual([...positions].sort((x, y) => x - y));
    expect(new Set(positions).size).toBe(positions.length);
    for (const [i, change] of changes.entries()) {
      expect(await allChanges(store, change.cursor)).toEqual(changes.slice(i + 1));
      expect(Number.isNaN(Date.parse(change.at))).toBe(false);
    }
    expect(await allChanges(store, empty)).toEqual(changes);
    expect(await store.feedCursor()).toBe(changes.at(-1)?.cursor);
    expect(await store.readChanges(await store.feedCursor(), 10)).toEqual([]);
  });

  it("records nothing for a write that is refused or rolled back", async () => {
    const store = await openStore();
    await store.putCheckpoint(record("a", 1), []);
    await store.putCheckpoint(record("b", 1), []);
    const before = await store.feedCursor();

    const refused = [
      store.putCheckpoint(record("a", 2), [output("x")], undefined, { expectedTip: "not-the-tip" }),
      store.putCheckpoint(record("a", 1), []), // the id is taken
      store.importRun("a", [{ record: record("a", 5), outputs: [] }], { replace: false }),
      // Replacing run b with a checkpoint id run a holds: the whole import rolls back, delete included.
      store.importRun("b", [{ record: record("a", 1, { pipeline_id: "b" }), outputs: [] }], {
        replace: true,
      }),
      store.updateCheckpoint("missing", { status: "failed" }),
    ];
    const errors = await Promise.all(
      refused.map((p) =>
        p.then(
          () => undefined,
          (e: unknown) => e,
        ),
      ),
    );
    expect(errors[0]).toBeInstanceOf(TipMovedError);
    expect(errors[1]).toBeInstanceOf(CheckpointConflictError);
    expect(errors[2]).toBeInstanceOf(CheckpointConflictError);
    expect(errors[3]).toBeInstanceOf(CheckpointConflictError);
    expect(errors[4]).toBeInstanceOf(CheckpointNotFoundError);

    // A write fenced by a lease that was taken over.
    const first = await store.acquireLease("a", "one", 1);
    await new Promise((r) => setTimeout(r, 5));
    await store.acquireLease("a", "two", 10_000);
    if (!first.acquired) throw new Error("the first lease was not granted");
    const fenced = await store.putCheckpoint(record("a", 2), [], first.lease).catch((e: unknown) => e);
    expect(fenced).toBeInstanceOf(LeaseLostError);

    expect(await store.readChanges(before, 100)).toEqual([]);
    expect(await store.feedCursor()).toBe(before);
    expect((await store.listCheckpoints("b")).length).toBe(1);
  });

  it("orders the writes of two store instances on one database in commit order", async () => {
    const one = await openStore();
    const two = await openStore();
    for (let n = 1; n <= 5; n++) {
      await one.putCheckpoint(record("r", 2 * n - 1), []);
      await two.putCheckpoint(record("r", 2 * n), []);
    }
    await two.deleteRun("r");
    const seen = [await allChanges(one), await allChanges(two)];
    expect(seen[0]).toEqual(seen[1]);
    expect(brief(seen[0] ?? [])).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `checkpoint r demo r_s${i + 1} ${i + 1}`),
      "deleted r demo",
    ]);
  });

  it("trims beyond feedRetention, never reuses a position, and refuses a cursor behind the trim", async () => {
    const store = await openStore({ feedRetention: 100 });
    const start = await store.feedCursor();
    const early: string[] = [];
    for (let n = 1; n <= 250; n++) {
      await store.putCheckpoint(record("r", n), []);
      if (n === 50 || n === 100) early.push(await store.feedCursor());
    }
    // Trimmed at position 200 (every 100th): everything up to 100 went.
    const kept = await allChanges(store);
    expect(kept.map((c) => positionOf(c.cursor))).toEqual(Array.from({ length: 150 }, (_, i) => i + 101));
    for (const cursor of [start, early[0] as string]) {
      const error = await store.readChanges(cursor, 10).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FeedTrimmedError);
      expect(error).toMatchObject({ code: "CAIRN_FEED_TRIMMED", cursor });
      expect((error as Error).message).toContain("trimmed");
    }
    // Right at the trim: nothing after it is missing.
    expect((await store.readChanges(early[1], 1))[0]?.cursor).toBe(kept[0]?.cursor);
    await store.deleteRun("r");
    await store.putCheckpoint(record("s", 1), []);
    const last = await store.readChanges(kept.at(-1)?.cursor, 10);
    expect(last.map((c) => positionOf(c.cursor))).toEqual([251, 252]);
  });

  it("tells a cursor of another database or from the future, and refuses malformed ones", async () => {
    const store = await openStore();
    await store.putCheckpoint(record("a", 1), []);
    const other = await openStore({ dbPath: join(dir, "other.db") });
    const foreign = await other.feedCursor();
    expect(foreign.split(":")[0]).not.toBe((await store.feedCursor()).split(":")[0]);
    const error = await store.readChanges(foreign, 10).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FeedTrimmedError);
    expect((error as Error).message).toContain("another feed");

    const [feedId] = (await store.feedCursor()).split(":");
    const ahead = await store.readChanges(`${feedId}:7`, 10).catch((e: unknown) => e);
    expect(ahead).toBeInstanceOf(FeedTrimmedError);
    expect((ahead as Error).message).toContain("ahead of the feed");

    for (const bad of ["nonsense", `${feedId}:-1`, `${feedId}`, "ABCDEF0123456789:1", `${feedId}:1:2`]) {
      await expect(store.readChanges(bad, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(store.waitForChanges(bad, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it("gives a database written before the feed a feed on setup (golden v1 fixture)", async () => {
    const golden = fileURLToPath(new URL("../fixtures/golden/v1/sqlite/cairn.db", import.meta.url));
    const dbPath = join(dir, "old.db");
    await copyFile(golden, dbPath);
    const store = await openStore({ dbPath });
    expect((await store.migrationStatus()).appliedNow).toEqual([6]);
    // Its history predates the feed: the feed starts empty.
    const start = await store.feedCursor();
    expect(start).toMatch(/^[0-9a-f]{16}:0$/);
    expect(await store.readChanges(undefined, 10)).toEqual([]);
    const runs = await store.listPipelineIds();
    expect(runs).toContain("golden_completed");
    const name = (await store.listCheckpoints("golden_completed")).find((e) => e.ok);
    await store.deleteRun("golden_completed");
    await store.updateCheckpoint(
      (
        (await store.listCheckpoints("golden_failed")).find((e) => e.ok) as {
          metadata: { checkpoint_id: string };
        }
      ).metadata.checkpoint_id,
      { resume_count: 3 },
    );
    const changes = await store.readChanges(start, 10);
    expect(changes.map((c) => [c.type, c.pipelineId, c.pipelineName])).toEqual([
      ["deleted", "golden_completed", name?.ok ? name.metadata.pipeline_name : "?"],
      ["status", "golden_failed", expect.any(String)],
    ]);
    // Reopened: the same feed (its id is stored, not made per connection).
    const again = await openStore({ dbPath });
    expect(await again.feedCursor()).toBe(await store.feedCursor());
  });

  it("a read-only open of a database from before the feed reads runs; its feed asks for a migrate", async () => {
    const golden = fileURLToPath(new URL("../fixtures/golden/v1/sqlite/cairn.db", import.meta.url));
    const dbPath = join(dir, "old.db");
    await copyFile(golden, dbPath);
    const store = await SqliteStore.open({ dbPath }, { readOnly: true });
    opened.push(store);
    await store.setup();
    expect((await store.listCheckpoints("golden_completed")).length).toBeGreaterThan(0);
    for (const call of [
      () => store.readChanges(undefined, 10),
      () => store.feedCursor(),
      () => store.waitForChanges("0123456789abcdef:0", 10),
      () => store.getMeta("k"),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message).toContain("cairn migrate");
    }
    await store.close();
    const db = new Database(dbPath, { readonly: true });
    opened.push(db);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE name = 'cairn_changes'").all();
    expect(tables).toEqual([]);
  });
});

describe("SqliteStore meta values", () => {
  it("keeps named values outside every run, durably, last write wins", async () => {
    const store = await openStore();
    expect(await store.getMeta("replica.abc")).toBeUndefined();
    await store.putCheckpoint(record("r", 1), []);
    const cursor = await store.feedCursor();
    await store.putMeta("replica.abc", "one");
    await store.putMeta("replica.abc", "two");
    await store.putMeta("other-key_1", "x".repeat(65_536));
    expect(await store.getMeta("replica.abc")).toBe("two");
    await store.deleteRun("r");
    expect(await store.getMeta("replica.abc")).toBe("two");
    expect(await store.listPipelineIds()).toEqual([]);
    expect(brief(await store.readChanges(cursor, 10))).toEqual(["deleted r demo"]);
    await store.close();
    const reopened = await openStore();
    expect(await reopened.getMeta("replica.abc")).toBe("two");
    expect((await reopened.getMeta("other-key_1"))?.length).toBe(65_536);
  });

  it("checks keys and values through a guarded store", async () => {
    const store = await openSpec(`sqlite:${join(dir, "cairn.db")}`);
    opened.push(store);
    await expect(store.putMeta?.("bad key", "v")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(store.putMeta?.("k", "x".repeat(65_537))).rejects.toBeInstanceOf(InvalidArgumentError);
    await store.putMeta?.("k", "v");
    expect(await store.getMeta?.("k")).toBe("v");
  });
});

describe("SqliteStore feedRetention option", () => {
  it("accepts an integer of at least 100, as an option or a URL parameter", async () => {
    for (const bad of [99, 1.5, "12x", -1, "abc"]) {
      await expect(
        SqliteStore.open({ dbPath: join(dir, "x.db"), feedRetention: bad }),
      ).rejects.toBeInstanceOf(InvalidConfigError);
    }
    for (const url of [
      "?feedRetention=99",
      "?feedRetention=abc",
      "?feedRetention=100&feedRetention=200",
      "?bogus=1",
      "?dbPath=/x",
    ]) {
      await expect(openSpec(`sqlite:${join(dir, "x.db")}${url}`)).rejects.toBeInstanceOf(InvalidConfigError);
    }
    const store = await openSpec(`sqlite:${join(dir, "cairn.db")}?feedRetention=100&synchronous=normal`);
    opened.push(store);
    expect(store.location).toBe(`sqlite:${join(dir, "cairn.db")}`);
    for (let n = 1; n <= 200; n++) await store.putCheckpoint(record("r", n), []);
    // Retention 100 from the URL: the trim at position 200 removed 1 to 100.
    expect(positionOf((await store.readChanges?.(undefined, 1))?.[0]?.cursor ?? "")).toBe(101);
  });
});

it("keeps the raw tables in the shape the migration made (positions from AUTOINCREMENT)", async () => {
  const store = await openStore();
  await store.putCheckpoint(record("a", 1), []);
  const db = new Database(join(dir, "cairn.db"));
  opened.push(db);
  const row = db.prepare("SELECT * FROM cairn_changes").get();
  expect(row).toMatchObject({
    position: 1,
    type: "checkpoint",
    pipeline_id: "a",
    checkpoint_id: "a_s1",
    sequence: 1,
  });
  expect(db.prepare("SELECT trimmed_through FROM cairn_feed").get()).toEqual({ trimmed_through: 0 });
});
