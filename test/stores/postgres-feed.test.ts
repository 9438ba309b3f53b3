/**
 * The PostgreSQL store's change feed, beyond the conformance kit: every write path's changes,
 * commit-ordered gap-free positions under concurrent writers of two store instances, trimming,
 * foreign and malformed cursors, the LISTEN connection (wake, timeout, abort, a broken
 * connection), the upgrade of a schema from before the feed, and meta values.
 */
import { describe, expect, it } from "vitest";
import { CheckpointConflictError, FeedTrimmedError, InvalidArgumentError } from "../../src/core/errors.js";
import type { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import type { StoreChange } from "../../src/stores/types.js";
import { POSTGRES_URL, postgresUp } from "../support/services.js";
import { startProxy } from "../support/tcp-proxy.js";
import { later, newPool, newSchema, openStore, output, record, sql } from "./postgres-fixtures.js";

const position = (cursor: string) => Number(cursor.split(":")[1]);
const shape = (c: StoreChange) => [
  c.type,
  c.pipelineId,
  c.pipelineName,
  c.checkpointId ?? null,
  c.sequence ?? null,
];

/** Every change after `since`, in pages of `page`. */
async function readAll(store: PostgresStore, since?: string, page = 1000): Promise<StoreChange[]> {
  const all: StoreChange[] = [];
  let cursor = since;
  for (;;) {
    const changes = await store.readChanges(cursor, page);
    all.push(...changes);
    if (changes.length < page) return all;
    cursor = changes.at(-1)?.cursor;
  }
}

const open = (schema: string, extra: Record<string, unknown> = {}) =>
  openStore({ connectionString: POSTGRES_URL, schema, poolSize: 4, ...extra });

describe.skipIf(!postgresUp)("PostgresStore change feed", () => {
  it("records every write path's changes in order, in the transaction of the write", async () => {
    const schema = newSchema();
    const store = await open(schema);
    const start = await store.feedCursor();
    expect(start).toMatch(/^[0-9a-f]{16}:0$/);

    // One statement (0 or 1 output), a transaction (2 outputs), fenced, both ways.
    await store.putCheckpoint(record("p", 1), []);
    await store.putCheckpoint(record("p", 2), [output("a"), output("b")]);
    const attempt = await store.acquireLease("p", "me", 60_000);
    if (!attempt.acquired) throw new Error("lease not acquired");
    await store.putCheckpoint(record("p", 3), [output("c")], attempt.lease, { expectedTip: "p_s2" });
    await store.putCheckpoint(record("p", 4), [output("d"), output("e")], attempt.lease);
    await store.updateCheckpoint("p_s2", { status: "failed", error_message: "boom" });
    expect(await store.deleteCheckpoints("p", ["p_s3", "p_s1", "absent"], { retention: true })).toBe(2);
    await store.importRun("q", [{ record: record("q", 1, { pipeline_name: "imp" }), outputs: [] }], {
      replace: false,
    });
    const replacement = record("q", 1, { pipeline_name: "imp2", checkpoint_id: "q_new" });
    await store.importRun("q", [{ record: replacement, outputs: [output("f")] }], { replace: true });
    await store.importRun("r", [{ record: record("r", 1), outputs: [] }], { replace: true });
    await store.deleteRun("p");
    // Nothing stored but a key record: no change.
    expect(await store.putRunKey("k", "key-record", undefined)).toBe(true);
    await store.deleteRun("k");
    await store.deleteRun("never");

    const changes = await readAll(store, start);
    expect(changes.map(shape)).toEqual([
      ["checkpoint", "p", "demo", "p_s1", 1],
      ["checkpoint", "p", "demo", "p_s2", 2],
      ["checkpoint", "p", "demo", "p_s3", 3],
      ["checkpoint", "p", "demo", "p_s4", 4],
      ["status", "p", "demo", "p_s2", 2],
      ["deleted", "p", "demo", "p_s1", 1],
      ["deleted", "p", "demo", "p_s3", 3],
      ["checkpoint", "q", "imp", "q_s1", 1],
      ["deleted", "q", "imp", null, null],
      ["checkpoint", "q", "imp2", "q_new", 1],
      ["checkpoint", "r", "demo", "r_s1", 1],
      ["deleted", "p", "demo", null, null],
    ]);
    // Positions 1..n: refused and empty writes took none.
    expect(changes.map((c) => position(c.cursor))).toEqual(changes.map((_, i) => i + 1));
    expect(await store.feedCursor()).toBe(changes.at(-1)?.cursor);
    for (const c of changes) expect(Math.abs(Date.parse(c.at) - Date.now())).toBeLessThan(10 * 60_000);
    expect(Object.keys(changes[11] as StoreChange)).not.toContain("checkpointId");

    // A write that fails inside its transaction leaves no change and no hole.
    await expect(
      store.putCheckpoint(record("q", 1, { checkpoint_id: "q_new" }), [output("x"), output("y")]),
    ).rejects.toThrow(CheckpointConflictError);
    await store.putCheckpoint(record("z", 1), []);
    expect((await store.readChanges(changes.at(-1)?.cursor, 10)).map((c) => position(c.cursor))).toEqual([
      13,
    ]);
  });

  it("gives concurrent writers of two instances gap-free positions in commit order", async () => {
    const schema = newSchema();
    const [a, b] = [await open(schema, { poolSize: 8 }), await open(schema, { poolSize: 8 })];
    const reader = await open(schema);
    const runs = ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"];
    const expected = new Map<string, string[]>();
    const write = async (store: PostgresStore, run: string) => {
      const done: string[] = [];
      expected.set(run, done);
      for (let n = 1; n <= 20; n++) {
        // Odd: one statement; even: a transaction of several round trips (wider windows).
        const outputs = n % 2 ? [output(`${run}-${n}`)] : [output(`${run}-${n}x`), output(`${run}-${n}y`)];
        await store.putCheckpoint(record(run, n), outputs);
        done.push(`checkpoint ${run}_s${n}`);
        if (n % 5 === 0) {
          await store.updateCheckpoint(`${run}_s${n - 1}`, { resume_count: n });
          done.push(`status ${run}_s${n - 1}`);
        }
      }
      // The other transactional paths, on a run of their own.
      const copy = `${run}i`;
      const copied: string[] = [];
      expected.set(copy, copied);
      await store.importRun(
        copy,
        [1, 2, 3].map((n) => ({ record: record(copy, n), outputs: [output(`${copy}-${n}`)] })),
        { replace: false },
      );
      copied.push(`checkpoint ${copy}_s1`, `checkpoint ${copy}_s2`, `checkpoint ${copy}_s3`);
      await store.deleteCheckpoints(copy, [`${copy}_s1`]);
      copied.push(`deleted ${copy}_s1`);
      await store.deleteRun(copy);
      copied.push("deleted undefined");
    };
    let writing = true;
    const snapshots: number[][] = [];
    const follower: number[] = [];
    const start = await reader.feedCursor();
    const poll = async () => {
      let cursor = start;
      while (writing) {
        // A full read sees positions 1..k, never a later one without all before it.
        snapshots.push((await reader.readChanges(undefined, 10_000)).map((c) => position(c.cursor)));
        // A follower continues from its cursor: each page starts right after it.
        const page = await reader.readChanges(cursor, 7);
        follower.push(...page.map((c) => position(c.cursor)));
        cursor = page.at(-1)?.cursor ?? cursor;
      }
      follower.push(...(await readAll(reader, cursor)).map((c) => position(c.cursor)));
    };
    const polling = poll();
    try {
      await Promise.all(runs.map((run) => write(run.startsWith("a") ? a : b, run)));
    } finally {
      writing = false;
      await polling;
    }
    const all = await readAll(reader);
    expect(all).toHaveLength(runs.length * (24 + 5));
    expect(all.map((c) => position(c.cursor))).toEqual(all.map((_, i) => i + 1));
    expect(follower).toEqual(all.map((_, i) => i + 1));
    expect(snapshots.length).toBeGreaterThan(1);
    let seen = 0;
    for (const positions of snapshots) {
      expect(positions).toEqual(positions.map((_, i) => i + 1));
      expect(positions.length).toBeGreaterThanOrEqual(seen);
      seen = positions.length;
    }
    expect(expected.size).toBe(runs.length * 2);
    for (const run of expected.keys()) {
      const order = all.filter((c) => c.pipelineId === run).map((c) => `${c.type} ${c.checkpointId}`);
      expect(order).toEqual(expected.get(run));
    }
  });

  it("refuses a cursor of another schema's feed, one ahead of the feed, and malformed ones", async () => {
    const store = await open(newSchema());
    const other = await open(newSchema());
    await other.putCheckpoint(record("p", 1), []);
    const foreign = await other.feedCursor();
    await expect(store.readChanges(foreign, 10)).rejects.toThrow(FeedTrimmedError);
    await expect(store.readChanges(foreign, 10)).rejects.toThrow(/another feed/);
    // Woken at once: the caller's read then reports the foreign cursor.
    expect(await store.waitForChanges(foreign, 60_000)).toBe(true);
    const [id] = (await store.feedCursor()).split(":");
    await expect(store.readChanges(`${id}:5`, 10)).rejects.toThrow(/ahead of the feed/);
    for (const bad of ["", "x", `${id}`, `${id}:-1`, `${id}:01`, `${id}:1.5`, `${id?.toUpperCase()}:1`]) {
      await expect(store.readChanges(bad, 10)).rejects.toThrow(InvalidArgumentError);
      await expect(store.waitForChanges(bad, 10)).rejects.toThrow(InvalidArgumentError);
    }
  });

  it("trims every 100th position to the retention, and refuses cursors before it", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: `${POSTGRES_URL}?schema=${schema}&feedRetention=100` });
    const start = await store.feedCursor();
    await store.putCheckpoint(record("p", 1), []);
    for (let n = 2; n <= 250; n++) await store.updateCheckpoint("p_s1", { resume_count: n });
    const [id] = start.split(":");
    await expect(store.readChanges(start, 10)).rejects.toThrow(FeedTrimmedError);
    await expect(store.readChanges(`${id}:99`, 10)).rejects.toThrow(/trimmed by the feed's retention/);
    expect((await store.readChanges(`${id}:100`, 1)).map((c) => c.cursor)).toEqual([`${id}:101`]);
    const retained = await readAll(store);
    expect(retained.map((c) => position(c.cursor))).toEqual(retained.map((_, i) => i + 101));
    expect(retained).toHaveLength(150);
    const { rows } = await sql(
      `SELECT count(*)::int AS n, min(position)::int AS low FROM "${schema}".cairn_changes`,
    );
    expect(rows[0]).toEqual({ n: 150, low: 101 });
    // A store of the same schema without the parameter keeps the default retention.
    const roomy = await open(schema);
    for (let n = 251; n <= 300; n++) await roomy.updateCheckpoint("p_s1", { resume_count: n });
    expect(await readAll(roomy, `${id}:100`)).toHaveLength(200);
  });

  it("checks feedRetention as an option and a URL parameter", async () => {
    const { PostgresStore } = await import("../../src/stores/postgres/postgres-store.js");
    for (const config of [
      { connectionString: POSTGRES_URL, feedRetention: 99 },
      { connectionString: POSTGRES_URL, feedRetention: 1.5 },
      { connectionString: `${POSTGRES_URL}?feedRetention=abc` },
      { connectionString: `${POSTGRES_URL}?feedRetention=50` },
    ]) {
      await expect(PostgresStore.open(config)).rejects.toMatchObject({
        code: "CAIRN_INVALID_CONFIG",
        problems: [expect.stringContaining("feedRetention must be an integer from 100")],
      });
    }
    await expect(
      PostgresStore.open({ connectionString: `${POSTGRES_URL}?feedRetention=100`, feedRetention: 200 }),
    ).rejects.toMatchObject({ problems: [expect.stringContaining("both in connectionString")] });
  });

  it("wakes a waiter on another instance's commit; false on timeout, abort and close", async () => {
    const schema = newSchema();
    const watcher = await open(schema);
    const writer = await open(schema);
    const since = await watcher.feedCursor();
    expect(await watcher.waitForChanges(since, 100)).toBe(false);
    const controller = new AbortController();
    const aborted = watcher.waitForChanges(since, 60_000, controller.signal);
    setTimeout(() => controller.abort(), 50);
    expect(await aborted).toBe(false);
    expect(await watcher.waitForChanges(since, 60_000, AbortSignal.abort())).toBe(false);

    // Several waiters share the one listening connection; all wake.
    const woken = [watcher.waitForChanges(since, 60_000), watcher.waitForChanges(since, 60_000)];
    await writer.putCheckpoint(record("p", 1), []);
    expect(await Promise.all(woken)).toEqual([true, true]);
    expect(await watcher.waitForChanges(since, 60_000)).toBe(true);
    const now = await watcher.feedCursor();
    const later = watcher.waitForChanges(now, 60_000);
    await writer.updateCheckpoint("p_s1", { status: "failed" });
    expect(await later).toBe(true);

    const closing = await open(schema);
    const pending = closing.waitForChanges(await closing.feedCursor(), 60_000);
    await closing.close();
    expect(await pending).toBe(false);
  });

  it("wakes waiters when the listening connection breaks, and reopens it on the next wait", async () => {
    const proxy = await startProxy("127.0.0.1", Number(new URL(POSTGRES_URL).port || 5432));
    later(() => proxy.close());
    const proxied = new URL(POSTGRES_URL);
    proxied.host = `127.0.0.1:${proxy.port}`;
    // Queries go straight to the server; only the listening connection, which connects with the
    // pool's options, goes through the proxy.
    const direct = newPool({ max: 4 });
    const pool = {
      query: direct.query.bind(direct),
      connect: direct.connect.bind(direct),
      end: direct.end.bind(direct),
      on: direct.on.bind(direct),
      options: { connectionString: proxied.toString(), connectionTimeoutMillis: 1000 },
    };
    const schema = newSchema();
    const watcher = await openStore({ pool, schema });
    const writer = await open(schema);
    const since = await watcher.feedCursor();
    // The first wait opens the listening connection; the next one is armed on it at once.
    expect(await watcher.waitForChanges(since, 1)).toBe(false);
    const waiting = watcher.waitForChanges(since, 60_000);
    await new Promise((resolve) => setImmediate(resolve));
    proxy.cut();
    expect(await waiting).toBe(true);

    await proxy.down();
    await expect(watcher.waitForChanges(since, 60_000)).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
    });
    await proxy.up();
    // Whether the write commits before or after the new LISTEN, the wait sees it.
    const again = watcher.waitForChanges(since, 60_000);
    await writer.putCheckpoint(record("p", 1), []);
    expect(await again).toBe(true);
    // The reopened connection is pushed to: a waiter armed on it wakes on the next write.
    const now = await watcher.feedCursor();
    const next = watcher.waitForChanges(now, 60_000);
    await writer.updateCheckpoint("p_s1", { status: "failed" });
    expect(await next).toBe(true);
  });

  it("gives a schema from before the feed a feed when it is set up", async () => {
    const schema = newSchema();
    const first = await open(schema);
    await first.putCheckpoint(record("old", 1), []);
    await first.close();
    // The schema as version 5 left it.
    await sql(
      `DROP TABLE "${schema}".cairn_changes, "${schema}".cairn_feed, "${schema}".cairn_meta;
       DROP FUNCTION "${schema}".cairn_feed_notify();
       DELETE FROM "${schema}".cairn_migrations WHERE version = 6`,
    );
    const upgraded = await open(schema);
    expect((await upgraded.migrationStatus()).appliedNow).toEqual([6]);
    const start = await upgraded.feedCursor();
    expect(start).toMatch(/:0$/);
    // The history before the feed has no changes; what follows does.
    expect(await upgraded.readChanges(undefined, 10)).toEqual([]);
    const waiting = upgraded.waitForChanges(start, 60_000);
    await upgraded.putCheckpoint(record("old", 2), []);
    expect(await waiting).toBe(true);
    expect((await upgraded.readChanges(start, 10)).map(shape)).toEqual([
      ["checkpoint", "old", "demo", "old_s2", 2],
    ]);
    expect(await upgraded.listPipelineIds()).toEqual(["old"]);
  });

  it("keeps meta values outside every run, last write wins", async () => {
    const schema = newSchema();
    const store = await open(schema);
    expect(await store.getMeta("replica.x")).toBeUndefined();
    await store.putMeta("replica.x", "one");
    await store.putMeta("replica.x", "two");
    const big = "é".repeat(65_536);
    await store.putMeta("big", big);
    const since = await store.feedCursor();
    const other = await open(schema);
    expect(await other.getMeta("replica.x")).toBe("two");
    expect(await other.getMeta("big")).toBe(big);
    expect(await other.listPipelineIds()).toEqual([]);
    // Meta values are not changes.
    expect(await store.feedCursor()).toBe(since);
  });
});
