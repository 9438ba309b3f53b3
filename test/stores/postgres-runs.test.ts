import { describe, expect, it } from "vitest";
import { TipMovedError } from "../../src/core/errors.js";
import type { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { POSTGRES_URL, postgresUp } from "../support/services.js";
import { newPool, newSchema, openStore, output, record, sql } from "./postgres-fixtures.js";

const url = POSTGRES_URL;
const at = (minute: number) => new Date(Date.UTC(2024, 0, 1, 0, minute)).toISOString();

async function writeRun(store: PostgresStore, id: string, name: string, start: number, finish = false) {
  for (let n = 1; n <= 2; n++)
    await store.putCheckpoint(record(id, n, { pipeline_name: name, timestamp: at(start + n) }), []);
  if (finish) {
    const done = { pipeline_name: name, stage_name: "pipeline_complete", timestamp: at(start + 3) };
    await store.putCheckpoint(record(id, 3, done), []);
  }
}

const runsRows = async (schema: string) =>
  (await sql(`SELECT * FROM "${schema}".cairn_runs ORDER BY pipeline_id`)).rows;

describe.skipIf(!postgresUp)("PostgresStore runs index and tip", () => {
  it("keeps one chain when two stores race writes to one run with expectedTip", async () => {
    const schema = newSchema();
    const stores = await Promise.all(
      [1, 2].map(() => openStore({ connectionString: url, schema, poolSize: 2 })),
    );
    const p = "race";
    const perWriter = 60;
    // Each writer chains to the newest it read; a refused write reads again and retries.
    const writer = async (store: PostgresStore, name: string) => {
      let written = 0;
      let refused = 0;
      while (written < perWriter) {
        const tip = (await store.getLatestCheckpoint(p))?.metadata;
        const sequence = (tip?.sequence ?? 0) + 1;
        const next = record(p, sequence, {
          checkpoint_id: `${p}_${name}_${written}`,
          parent_checkpoint_id: tip?.checkpoint_id ?? null,
        });
        try {
          await store.putCheckpoint(next, [output(`${name}${written}`)], undefined, {
            expectedTip: tip?.checkpoint_id ?? null,
          });
          written++;
        } catch (error) {
          if (!(error instanceof TipMovedError)) throw error;
          refused++;
        }
      }
      return refused;
    };
    const [storeA, storeB] = stores as [PostgresStore, PostgresStore];
    const refused = await Promise.all([writer(storeA, "a"), writer(storeB, "b")]);
    const listed = await storeA.listCheckpoints(p);
    const chain = listed.map((entry) => (entry.ok ? entry.metadata : undefined));
    expect(chain).toHaveLength(2 * perWriter);
    // Linear: sequences 1..n, each checkpoint's parent the one before it (no fork, no gap).
    chain.forEach((m, i) => {
      expect(m?.sequence).toBe(i + 1);
      expect(m?.parent_checkpoint_id).toBe(i === 0 ? null : chain[i - 1]?.checkpoint_id);
    });
    // The race really happened: some writes were refused.
    expect(refused[0] + refused[1]).toBeGreaterThan(0);
    const [run] = await runsRows(schema);
    expect(run).toMatchObject({
      last_sequence: 2 * perWriter,
      last_checkpoint_id: chain.at(-1)?.checkpoint_id,
    });
  });

  it("checks the tip and writes a checkpoint with one output in one round trip", async () => {
    const schema = newSchema();
    const pool = newPool();
    let queries = 0;
    let transactions = 0;
    const query = pool.query.bind(pool);
    const connect = pool.connect.bind(pool);
    const spied = pool as unknown as { query: unknown; connect: unknown };
    spied.query = (...args: Parameters<typeof pool.query>) => {
      queries++;
      return query(...args);
    };
    // pool.query checks out a client with a callback; the store's transactions call connect().
    spied.connect = (...args: unknown[]) => {
      if (args.length === 0) transactions++;
      return (connect as (...a: unknown[]) => unknown)(...args);
    };
    const store = await openStore({ pool, schema });
    const first = record("p1", 1);
    queries = 0;
    transactions = 0;
    await store.putCheckpoint(first, [output("a")], undefined, { expectedTip: null });
    await store.putCheckpoint(record("p1", 2), [output("b")], undefined, { expectedTip: "p1_s1" });
    expect({ queries, transactions }).toEqual({ queries: 2, transactions: 0 });
    // A write whose tip moved stores nothing, and names the actual tip.
    await expect(
      store.putCheckpoint(record("p1", 3), [output("c")], undefined, { expectedTip: "p1_s1" }),
    ).rejects.toMatchObject({ name: "TipMovedError", expected: "p1_s1", actual: "p1_s2" });
    expect(await store.listOutputHashes("p1")).toEqual([output("a").hash, output("b").hash].sort());
  });

  it("keeps the head through deletions, while the tip check follows the checkpoints left", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    await writeRun(store, "h", "etl", 0);
    await store.deleteCheckpoints("h", ["h_s2"]);
    // A deletion keeps the head, so a truncation stays visible to validation.
    expect((await runsRows(schema))[0]).toMatchObject({ last_sequence: 2, last_checkpoint_id: "h_s2" });
    await expect(
      store.putCheckpoint(record("h", 2, { checkpoint_id: "h_again" }), [], undefined, {
        expectedTip: "h_s2",
      }),
    ).rejects.toMatchObject({ name: "TipMovedError", actual: "h_s1" });
    await store.putCheckpoint(record("h", 2, { checkpoint_id: "h_again" }), [], undefined, {
      expectedTip: "h_s1",
    });
    await store.deleteCheckpoints("h", ["h_s1", "h_again"]);
    expect((await runsRows(schema))[0]).toMatchObject({ last_sequence: 2, last_checkpoint_id: "h_again" });
    await store.putCheckpoint(record("h", 1), [], undefined, { expectedTip: null });
    await store.deleteRun("h");
    expect(await runsRows(schema)).toEqual([]);
  });

  it("builds the index once from checkpoints an older cairn wrote (migration 3)", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    await writeRun(store, "a", "etl", 10, true);
    await writeRun(store, "b", "etl", 20);
    await writeRun(store, "c", "other", 30);
    const before = await store.listRuns({ pipelineName: "etl" });
    const rowsBefore = await runsRows(schema);
    await store.close();
    // The schema as version 2 left it: no runs table, no record of migrations 3 and later.
    await sql(
      `DROP TABLE "${schema}".cairn_runs, "${schema}".cairn_run_keys, "${schema}".cairn_changes, "${schema}".cairn_feed, "${schema}".cairn_meta;
       DROP FUNCTION "${schema}".cairn_feed_notify(); DELETE FROM "${schema}".cairn_migrations WHERE version >= 3`,
    );
    const again = await openStore({ connectionString: url, schema });
    expect((await again.migrationStatus()).appliedNow).toEqual([3, 4, 5, 6]);
    expect(await again.listRuns({ pipelineName: "etl" })).toEqual(before);
    expect(before.runs.map((r) => [r.pipelineId, r.createdAt, r.finished])).toEqual([
      ["b", at(21), false],
      ["a", at(11), true],
    ]);
    expect(await runsRows(schema)).toEqual(rowsBefore);
    expect(rowsBefore[0]).toMatchObject({ pipeline_id: "a", last_sequence: 3, last_checkpoint_id: "a_s3" });
  });

  it("rebuilds a damaged entry from the run's checkpoints", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    await writeRun(store, "r", "etl", 5, true);
    const good = await runsRows(schema);
    await sql(
      `UPDATE "${schema}".cairn_runs SET created_at = now(), finished = false, last_checkpoint_id = NULL`,
    );
    expect((await store.rebuildIndexes("r")).at(-1)).toContain("recomputed the entry of r");
    expect(await runsRows(schema)).toEqual(good);
    await sql(`DELETE FROM "${schema}".cairn_checkpoints`);
    expect((await store.rebuildIndexes("r")).at(-1)).toContain("no checkpoints");
    expect(await runsRows(schema)).toEqual([]);
  });

  it("pages through the indexes and refuses a cursor it did not make", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    for (let i = 0; i < 5; i++) await writeRun(store, `p${i}`, "etl", i * 10, i % 2 === 0);
    const page = await store.listRuns({ pipelineName: "etl", unfinished: true, limit: 1 });
    expect(page.runs.map((r) => r.pipelineId)).toEqual(["p3"]);
    const next = await store.listRuns({
      pipelineName: "etl",
      unfinished: true,
      limit: 1,
      cursor: page.nextCursor as string,
    });
    expect(next).toEqual({ runs: [expect.objectContaining({ pipelineId: "p1", createdAt: at(11) })] });
    const bad = ["not base64 json!", Buffer.from('["yesterday","p1"]').toString("base64url"), "e30"];
    for (const cursor of bad) {
      await expect(store.listRuns({ pipelineName: "etl", cursor })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    }
    // The planner reads the (partial) index in order; seq scans off so the tiny table shows it.
    const plan = async (unfinished: boolean) => {
      const filter = unfinished ? "AND NOT finished" : "";
      const text = `SET enable_seqscan = off; EXPLAIN SELECT pipeline_id FROM "${schema}".cairn_runs
        WHERE pipeline_name = 'etl' ${filter} AND (created_at, pipeline_id) < (now(), 'x')
        ORDER BY created_at DESC, pipeline_id DESC LIMIT 3`;
      const results = (await sql(text)) as unknown as { rows: { "QUERY PLAN": string }[] }[];
      return (results[1]?.rows ?? []).map((r) => r["QUERY PLAN"]).join("\n");
    };
    expect(await plan(false)).toMatch(/Index (Only )?Scan using cairn_runs_by_name/);
    expect(await plan(true)).toMatch(/Index (Only )?Scan using cairn_runs_unfinished/);
    expect(await plan(true)).not.toMatch(/Sort/);
  });
});
