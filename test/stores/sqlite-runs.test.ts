import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";
import { record } from "../support/records.js";

let dir: string;
const opened: { close(): unknown }[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sqlite-runs-"));
});

afterEach(async () => {
  for (const handle of opened.splice(0)) await handle.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<SqliteStore> {
  const store = await SqliteStore.open({ dbPath: join(dir, "cairn.db") });
  opened.push(store);
  await store.setup();
  return store;
}

function raw(): Database.Database {
  const db = new Database(join(dir, "cairn.db"));
  opened.push(db);
  return db;
}

const at = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString();

/** Run `id` of pipeline `name`: `stages` checkpoints from `start`, then pipeline_complete if `finish`. */
async function writeRun(store: SqliteStore, id: string, name: string, start: number, finish = false) {
  for (let n = 1; n <= 2; n++)
    await store.putCheckpoint(record(id, n, { pipeline_name: name, timestamp: at(start + n) }), []);
  if (finish) {
    await store.putCheckpoint(
      record(id, 3, { pipeline_name: name, stage_name: "pipeline_complete", timestamp: at(start + 3) }),
      [],
    );
  }
}

const runsRows = (db: Database.Database) =>
  db.prepare("SELECT * FROM cairn_runs ORDER BY pipeline_id").all() as Record<string, unknown>[];

describe("SqliteStore runs index", () => {
  it("builds the index once from checkpoints an older cairn wrote (migration 3)", async () => {
    const store = await openStore();
    await writeRun(store, "a", "etl", 10, true);
    await writeRun(store, "b", "etl", 20);
    await writeRun(store, "c", "other", 30);
    const before = await store.listRuns({ pipelineName: "etl" });
    const rowsBefore = runsRows(raw());
    await store.close();
    // The schema as version 2 left it: no runs table, no record of migrations 3 to 5.
    const db = raw();
    db.exec(
      "DROP TABLE cairn_runs; DROP TABLE cairn_run_keys; DROP TABLE cairn_changes; DROP TABLE cairn_feed; DROP TABLE cairn_meta; DELETE FROM cairn_migrations WHERE version >= 3",
    );
    const again = await openStore();
    expect((await again.migrationStatus()).appliedNow).toEqual([3, 4, 5, 6]);
    expect(await again.listRuns({ pipelineName: "etl" })).toEqual(before);
    expect(before.runs.map((r) => [r.pipelineId, r.createdAt, r.finished])).toEqual([
      ["b", at(21), false],
      ["a", at(11), true],
    ]);
    expect(runsRows(db)).toEqual(rowsBefore);
    expect(runsRows(db)[0]).toMatchObject({
      pipeline_id: "a",
      last_sequence: 3,
      last_checkpoint_id: "a_s3",
      last_checksum: record("a", 3, {
        pipeline_name: "etl",
        stage_name: "pipeline_complete",
        timestamp: at(13),
      }).metadata.checksum,
    });
  });

  it("keeps each run's head (last checkpoint) with every write, and never moves it back", async () => {
    const store = await openStore();
    await writeRun(store, "h", "etl", 0);
    const head = () =>
      raw().prepare("SELECT last_sequence AS s, last_checkpoint_id AS id FROM cairn_runs").get();
    expect(head()).toEqual({ s: 2, id: "h_s2" });
    // A deletion keeps the head, so a truncation stays visible to validation.
    await store.deleteCheckpoints("h", ["h_s2"]);
    expect(head()).toEqual({ s: 2, id: "h_s2" });
    await store.deleteCheckpoints("h", ["h_s1"]);
    expect(head()).toEqual({ s: 2, id: "h_s2" });
    await store.deleteRun("h");
    expect(head()).toBeUndefined();
  });

  it("rebuilds a damaged entry from the run's checkpoints", async () => {
    const store = await openStore();
    await writeRun(store, "r", "etl", 5, true);
    const db = raw();
    const good = runsRows(db);
    db.exec("UPDATE cairn_runs SET created_at = 'x', finished = 0, last_checkpoint_id = NULL");
    const done = await store.rebuildIndexes("r");
    expect(done.at(-1)).toContain("recomputed the entry of r");
    expect(runsRows(db)).toEqual(good);
    db.exec("DELETE FROM cairn_checkpoints");
    expect((await store.rebuildIndexes("r")).at(-1)).toContain("no checkpoints");
    expect(runsRows(db)).toEqual([]);
  });

  it("pages through the indexes, never sorting or scanning the table", async () => {
    const store = await openStore();
    for (let i = 0; i < 5; i++) await writeRun(store, `p${i}`, "etl", i * 10, i % 2 === 0);
    const page = await store.listRuns({ pipelineName: "etl", unfinished: true, limit: 1 });
    expect(page.runs.map((r) => r.pipelineId)).toEqual(["p3"]);
    const next = await store.listRuns({
      pipelineName: "etl",
      unfinished: true,
      limit: 1,
      cursor: page.nextCursor as string,
    });
    expect(next).toEqual({ runs: [expect.objectContaining({ pipelineId: "p1" })] });

    const db = raw();
    const plan = (sql: string, ...params: unknown[]) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...params)
        .map((row) => (row as { detail: string }).detail)
        .join("\n");
    const select =
      "SELECT pipeline_id, pipeline_name, created_at, finished FROM cairn_runs WHERE pipeline_name = ?";
    const order = "ORDER BY created_at DESC, pipeline_id DESC LIMIT 3";
    const after = "AND (created_at, pipeline_id) < (?, ?)";
    for (const [sql, index] of [
      [`${select} ${order}`, "cairn_runs_by_name"],
      [`${select} ${after} ${order}`, "cairn_runs_by_name"],
      [`${select} AND finished = 0 ${order}`, "cairn_runs_unfinished"],
      [`${select} AND finished = 0 ${after} ${order}`, "cairn_runs_unfinished"],
    ] as const) {
      const params = sql.includes("<") ? ["etl", at(30), "p3"] : ["etl"];
      const detail = plan(sql, ...params);
      expect(detail).toMatch(new RegExp(`USING (COVERING )?INDEX ${index} `));
      expect(detail).not.toContain("TEMP B-TREE");
      // A later page seeks to the cursor in the index rather than skipping entries before it.
      if (sql.includes("<")) expect(detail).toContain("(created_at,pipeline_id)<(?,?)");
    }
  });

  it("refuses a cursor it did not make", async () => {
    const store = await openStore();
    for (const cursor of ["not base64 json!", Buffer.from("[1,2]").toString("base64url"), "e30"]) {
      await expect(store.listRuns({ pipelineName: "etl", cursor })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    }
  });
});
