import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { FormatTooNewError } from "../../src/core/errors.js";
import { compareStored } from "../../src/core/record.js";
import { CheckpointManager } from "../../src/manager/checkpoint-manager.js";
import { applyMigrations, LATEST_VERSION, tableNames } from "../../src/stores/postgres/migrations.js";
import { configProblems, PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { buildStatements } from "../../src/stores/postgres/queries.js";
import { POSTGRES_URL, postgresUp } from "../support/services.js";
import { later, newPool, newSchema, openStore, output, record, sql } from "./postgres-fixtures.js";

const url = POSTGRES_URL;
const server = new URL(url);
const where = `postgres://${server.hostname}:${server.port || 5432}${server.pathname}`;

describe.skipIf(!postgresUp)("PostgresStore", () => {
  it("reports where it lives, without the password", async () => {
    const schema = newSchema();
    const withPassword = new URL(url);
    withPassword.password = "s3cret";
    const store = await PostgresStore.open({ connectionString: withPassword.toString(), schema });
    later(() => store.close());
    expect(store.strategy).toBe("postgres");
    expect(store.persistent).toBe(true);
    expect(store.location).toBe(`${where} (schema ${schema})`);
    expect(store.location).not.toContain("s3cret");
  });

  it("connects with separate fields and hands ssl to pg as is", async () => {
    const schema = newSchema();
    const store = await openStore({
      host: server.hostname,
      port: Number(server.port || 5432),
      user: decodeURIComponent(server.username) || "postgres",
      database: server.pathname.slice(1),
      schema,
    });
    expect(store.location).toBe(`${where} (schema ${schema})`);
    await store.putCheckpoint(record("p1", 1), []);
    expect((await store.getLatestCheckpoint("p1"))?.metadata.sequence).toBe(1);

    const tls = { rejectUnauthorized: true, servername: "db.example" };
    const secure = await PostgresStore.open({ host: "db.example", ssl: tls });
    later(() => secure.close());
    expect((secure as unknown as { pool: pg.Pool }).pool.options.ssl).toBe(tls);
  });

  it("records each migration once when two stores set up at the same moment", async () => {
    const schema = newSchema();
    const [a, b] = await Promise.all([
      openStore({ connectionString: url, schema, poolSize: 2 }),
      openStore({ connectionString: url, schema, poolSize: 2 }),
    ]);
    await Promise.all([a.setup(), b.setup()]);
    const { rows } = await sql(
      `SELECT version, name, applied_at FROM "${schema}".cairn_migrations ORDER BY 1`,
    );
    expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(LATEST_VERSION).toBe(6);
    expect(rows[0]?.applied_at).toBeInstanceOf(Date);

    // Applied once: of two racing transactions, one applies everything and the other nothing.
    const other = newSchema();
    const tables = tableNames(other, "cairn_");
    const pool = newPool({ max: 2 });
    const race = () =>
      pool.connect().then(async (client) => {
        try {
          await client.query("BEGIN");
          const applied = await applyMigrations(client, other, "cairn_", tables);
          await client.query("COMMIT");
          return applied;
        } finally {
          client.release();
        }
      });
    const results = await Promise.all([race(), race()]);
    expect(results.sort((x, y) => y.length - x.length)).toEqual([[1, 2, 3, 4, 5, 6], []]);
  });

  it("refuses a schema written by a newer version", async () => {
    const schema = newSchema();
    await openStore({ connectionString: url, schema });
    await sql(`INSERT INTO "${schema}".cairn_migrations (version, name) VALUES (99, 'future')`);
    const store = await PostgresStore.open({ connectionString: url, schema });
    later(() => store.close());
    const error = await store.setup().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FormatTooNewError);
    expect(error).toMatchObject({ code: "CAIRN_FORMAT_TOO_NEW", subject: "store schema", found: 99 });
    expect((error as Error).message).toMatch(/cairn_migrations": store schema format version 99 .*\(6\)/);

    // Through a manager (a guarded store): the same error, unwrapped, on every attempt.
    const manager = new CheckpointManager({
      strategy: "postgres",
      config: { connectionString: url, schema },
    });
    later(() => manager.close());
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(manager.listPipelines()).rejects.toBeInstanceOf(FormatTooNewError);
    }
  });

  it("creates the indexes and reads the latest checkpoint with one indexed LIMIT 1", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    const { rows } = await sql("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1", [schema]);
    const defs = Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef]));
    expect(defs.cairn_checkpoints_run_sequence).toContain(
      '(pipeline_id, sequence DESC, "timestamp" DESC, checkpoint_id DESC)',
    );
    expect(defs.cairn_checkpoints_timestamp).toContain('("timestamp")');
    expect(Object.keys(defs)).toEqual(
      expect.arrayContaining(["cairn_checkpoints_pkey", "cairn_outputs_pkey", "cairn_leases_pkey"]),
    );

    // 4,000 checkpoints over 40 runs, then fresh statistics, so the planner has a real choice.
    await sql(
      `INSERT INTO "${schema}".cairn_checkpoints (checkpoint_id, pipeline_id, pipeline_name, stage_name,
       stage_index, sequence, timestamp, status, checksum, data_size, resume_count, format_version, body)
       SELECT 'run' || (i % 40) || '_c' || i, 'run' || (i % 40), 'demo', 's', 0, i / 40 + 1,
              timestamptz '2024-01-01' + i * interval '1 second', 'completed', repeat('0', 64), 2, 0, 1, '{}'
       FROM generate_series(0, 3999) AS i`,
    );
    await sql(`ANALYZE "${schema}".cairn_checkpoints`);
    expect((await store.getLatestCheckpoint("run7"))?.metadata).toMatchObject({
      checkpoint_id: "run7_c3967",
      sequence: 100,
    });

    const statements = buildStatements(tableNames(schema, "cairn_"), schema, "cairn_");
    const plan = async (text: string, generic: boolean) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        // A prepared statement may switch to a generic plan after five runs: check both kinds.
        await client.query(`SET plan_cache_mode = ${generic ? "force_generic_plan" : "force_custom_plan"}`);
        await client.query(`PREPARE q AS ${text}`);
        const result = await client.query("EXPLAIN (FORMAT TEXT) EXECUTE q('run7')");
        return result.rows.map((r) => r["QUERY PLAN"]).join("\n");
      } finally {
        await client.end();
      }
    };
    for (const generic of [false, true]) {
      const latest = await plan(statements.selectLatest.text, generic);
      expect(latest).toMatch(/Index Scan using cairn_checkpoints_run_sequence/);
      expect(latest).not.toMatch(/Sort|Seq Scan/);
      // The listing reads the whole run, so the planner may fetch it by index and sort it.
      const listing = await plan(statements.selectRun.text, generic);
      expect(listing).toMatch(
        /Index Scan.* on cairn_checkpoints_run_sequence|using cairn_checkpoints_run_sequence/,
      );
      expect(listing).not.toMatch(/Seq Scan/);
    }
  });

  it("gives back the exact body bytes: unicode, escapes JSONB refuses, megabytes", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    const states = [
      { text: "héllo wörld — 日本語 🚀👩‍👩‍👧 e\u0301", quote: "\"'\\", nul: "a\u0000b" },
      { lone: "\ud800 and \udfff", crlf: "a\r\nb\tc" },
      { big: "x€🚀".repeat(400_000) },
    ];
    for (const [i, state] of states.entries()) {
      const made = record("bytes", i + 1, {}, state);
      const out = output(JSON.stringify(state));
      await store.putCheckpoint(made, [out]);
      const got = await store.getCheckpoint(made.metadata.checkpoint_id);
      expect(got?.body === made.body).toBe(true);
      expect(got?.metadata).toEqual(made.metadata);
      expect((await store.getOutputs("bytes", [out.hash])).get(out.hash) === out.body).toBe(true);
    }
    // The JSONB columns are a queryable copy; a body JSONB refuses gets none, and still stores.
    const { rows } = await sql(
      `SELECT sequence, state_data ->> 'crlf' AS crlf, completed_stages, pending_stages, state_data IS NULL AS no_copy
       FROM "${schema}".cairn_checkpoints ORDER BY sequence`,
    );
    expect(rows.map((r) => r.no_copy)).toEqual([true, true, false]);
    expect(rows[2]?.completed_stages).toEqual(["s3"]);
    expect(rows[2]?.pending_stages).toEqual(["later"]);
  });

  it("gives timestamps back with their milliseconds, whatever the session time zone", async () => {
    const schema = newSchema();
    const pool = newPool({ options: "-c TimeZone=Asia/Kolkata" });
    const store = await openStore({ pool, schema });
    const stamps = ["2024-02-29T23:59:59.999Z", "1999-12-31T18:30:00.001Z", "2024-06-01T00:00:00.000Z"];
    for (const [i, timestamp] of stamps.entries())
      await store.putCheckpoint(record("ts", i + 1, { timestamp }), []);
    const listed = await store.listCheckpoints("ts");
    expect(listed.map((e) => e.ok && e.metadata.timestamp)).toEqual(stamps);
    expect((await store.getLatestCheckpoint("ts"))?.metadata.timestamp).toBe(stamps[2]);
    expect((await pool.query("SHOW TimeZone")).rows[0]?.TimeZone).toBe("Asia/Kolkata");

    // Another spelling of an instant would come back changed and fail its checksum: refused.
    const odd = record("ts", 9, { timestamp: "2024-01-01T00:00:00Z" });
    await expect(store.putCheckpoint(odd, [output("o")])).rejects.toMatchObject({
      code: "CAIRN_INVALID_ARGUMENT",
    });
    expect(await store.listOutputHashes("ts")).toEqual([]);
  });

  it("stores none of a conflicting put's outputs", async () => {
    const store = await openStore({ connectionString: url, schema: newSchema() });
    const first = record("p1", 1);
    await store.putCheckpoint(first, [output("a")]);
    const duplicate = record("p1", 2, { checkpoint_id: "p1_s1" });
    await expect(
      store.putCheckpoint(duplicate, [output("a"), output("b"), output("b")]),
    ).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
      id: "p1_s1",
    });
    expect(await store.listOutputHashes("p1")).toEqual([output("a").hash]);
    expect(await store.getCheckpoint("p1_s1")).toEqual(first);
  });

  it("writes a checkpoint with one new output in one statement, atomically, fenced or not", async () => {
    const store = await openStore({ connectionString: url, schema: newSchema() });
    const first = record("p1", 1);
    await store.putCheckpoint(first, [output("a")]);
    // A duplicate id with one new output: the output insert is undone with the failed statement.
    await expect(
      store.putCheckpoint(record("p1", 2, { checkpoint_id: "p1_s1" }), [output("b")]),
    ).rejects.toMatchObject({
      code: "CAIRN_CONFLICT",
    });
    expect(await store.listOutputHashes("p1")).toEqual([output("a").hash]);
    const attempt = await store.acquireLease("p1", "me", 60_000);
    if (!attempt.acquired) throw new Error("lease not acquired");
    const stale = { ...attempt.lease, token: attempt.lease.token - 1 };
    await expect(store.putCheckpoint(record("p1", 2), [output("c")], stale)).rejects.toMatchObject({
      code: "CAIRN_LEASE_LOST",
    });
    expect(await store.listOutputHashes("p1")).toEqual([output("a").hash]);
    expect((await store.listCheckpoints("p1")).length).toBe(1);
    await store.putCheckpoint(record("p1", 2), [output("c")], attempt.lease);
    await store.putCheckpoint(record("p1", 3), [], attempt.lease);
    expect((await store.listCheckpoints("p1")).length).toBe(3);
    expect((await store.listOutputHashes("p1")).sort()).toEqual([output("a").hash, output("c").hash].sort());
  });

  it("updates status, error message and resume count together, in one statement", async () => {
    const pool = newPool();
    const texts: string[] = [];
    const spy = Object.assign(Object.create(pool) as pg.Pool, {
      query: (config: pg.QueryConfig) => {
        texts.push(config.text);
        return pool.query(config);
      },
    });
    const schema = newSchema();
    const store = await openStore({ pool: spy, schema });
    await store.putCheckpoint(record("p1", 1, { error_message: "kept" }), []);
    texts.length = 0;
    await store.updateCheckpoint("p1_s1", { status: "failed", error_message: "boom", resume_count: 3 });
    // The feed's `status` change is recorded by the same statement.
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain(`UPDATE "${schema}"."cairn_checkpoints"`);
    expect((await store.getCheckpoint("p1_s1"))?.metadata).toMatchObject({
      status: "failed",
      error_message: "boom",
      resume_count: 3,
    });
    await store.updateCheckpoint("p1_s1", { error_message: null });
    await store.updateCheckpoint("p1_s1", {});
    expect((await store.getCheckpoint("p1_s1"))?.metadata).toMatchObject({
      status: "failed",
      error_message: null,
      resume_count: 3,
    });
    await expect(store.updateCheckpoint("nope", { status: "failed" })).rejects.toMatchObject({
      code: "CAIRN_NOT_FOUND",
    });
    await expect(store.updateCheckpoint("nope", {})).rejects.toMatchObject({ code: "CAIRN_NOT_FOUND" });
  });

  it("lists a row edited by hand as corrupt, with where it is", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema });
    await store.putCheckpoint(record("p1", 1), []);
    await store.putCheckpoint(record("p1", 2), []);
    await sql(`UPDATE "${schema}".cairn_checkpoints SET status = 'bogus' WHERE checkpoint_id = 'p1_s2'`);
    const listed = await store.listCheckpoints("p1");
    expect(listed[0]?.ok).toBe(true);
    expect(listed[1]).toEqual({
      ok: false,
      corrupt: {
        pipelineId: "p1",
        checkpointId: "p1_s2",
        location: `${schema}.cairn_checkpoints#p1_s2`,
        reason: expect.stringContaining('status "bogus" is unknown'),
      },
    });
    await expect(store.getLatestCheckpoint("p1")).rejects.toMatchObject({ code: "CAIRN_CORRUPT" });
  });

  it("breaks ties in byte order, as compareStored does", async () => {
    const store = await openStore({ connectionString: url, schema: newSchema() });
    const ids = ["p1_b", "p1_B", "p1_a", "p1_-", "p1_Z"];
    const made = ids.map((id) =>
      record("p1", 1, { checkpoint_id: id, timestamp: "2024-01-01T00:00:00.000Z" }),
    );
    for (const r of made) await store.putCheckpoint(r, []);
    const expected = made.map((r) => r.metadata).sort(compareStored);
    const listed = await store.listCheckpoints("p1");
    expect(listed.map((e) => e.ok && e.metadata.checkpoint_id)).toEqual(expected.map((m) => m.checkpoint_id));
    expect((await store.getLatestCheckpoint("p1"))?.metadata.checkpoint_id).toBe(
      expected.at(-1)?.checkpoint_id,
    );
  });

  it("uses a caller's pool, schema and prefix, and leaves the pool open", async () => {
    const pool = newPool({ max: 2 });
    const schema = newSchema("Mixed_Case"); // quoted: its case is kept
    const store = await PostgresStore.open({ pool, schema, tablePrefix: "app_" });
    await store.setup();
    await store.putCheckpoint(record("p1", 1), [output("x")]);
    expect(store.location).toBe(`${where} (schema ${schema})`);
    await store.close();
    expect(pool.ended).toBe(false);
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".app_checkpoints`);
    expect(rows[0]?.n).toBe(1);
  });

  it("takes settings from the connection string and hands the rest to pg", async () => {
    const schema = newSchema();
    const store = await openStore({
      connectionString: `${url}?schema=${schema}&tablePrefix=q_&poolSize=3&statementTimeoutMs=4500&sslmode=disable`,
      applicationName: "cairn-test",
    });
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    expect(pool.options.max).toBe(3);
    const settings = await pool.query(
      "SELECT current_setting('statement_timeout') AS t, current_setting('application_name') AS a",
    );
    expect(settings.rows[0]).toEqual({ t: "4500ms", a: "cairn-test" });
    const { rows } = await sql("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", [schema]);
    expect(rows.map((r) => r.tablename)).toEqual([
      "q_changes",
      "q_checkpoints",
      "q_feed",
      "q_leases",
      "q_meta",
      "q_migrations",
      "q_outputs",
      "q_run_keys",
      "q_runs",
    ]);
  });

  it("lists every configuration problem at once", async () => {
    const error = await PostgresStore.open({
      connectionString: "mysql://db/x",
      host: "h",
      port: 70000,
      schema: "bad-name",
      tablePrefix: "1x",
      poolSize: 0,
      ssl: "yes",
      statementTimeoutMs: -1,
      colour: "red",
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "CAIRN_INVALID_CONFIG" });
    const problems = (error as { problems: string[] }).problems;
    for (const word of [
      "colour",
      "mysql",
      "port",
      "schema",
      "tablePrefix",
      "poolSize",
      "ssl",
      "statementTimeoutMs",
    ]) {
      expect(problems.some((p) => p.includes(word))).toBe(true);
    }
    const clash = await PostgresStore.open({
      connectionString: `${url}?schema=a&poolSize=many`,
      schema: "b",
      user: "u",
    }).catch((e: unknown) => e);
    expect((clash as { problems: string[] }).problems).toEqual([
      "schema is given both in connectionString and as an option",
      "give connectionString or user, not both",
      "poolSize must be an integer from 1 to 10000",
    ]);
    const pool = newPool();
    await expect(PostgresStore.open({ pool, poolSize: 3 })).rejects.toThrow(/remove poolSize/);
    await expect(PostgresStore.open({ pool: {} })).rejects.toThrow(/pool must be a pg.Pool/);
    await expect(PostgresStore.open({ schema: "pg_catalog" })).rejects.toThrow(/schema must be/);
    // The same checks without opening anything, for the registry.
    expect(configProblems({ connectionString: url, schema: "ok_1" })).toEqual([]);
    expect(configProblems({ poolSize: "x", tablePrefix: "a-b" })).toHaveLength(2);
  });

  it("lets exactly one of two pools' racing acquirers win, by the server's clock", async () => {
    const schema = newSchema();
    const a = await openStore({ connectionString: url, schema, poolSize: 4 });
    const b = await openStore({ connectionString: url, schema, poolSize: 4 });
    const race = async () =>
      (
        await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).acquireLease("run", `w${i}`, 10_000)),
        )
      ).filter((x) => x.acquired);
    const first = await race();
    expect(first).toHaveLength(1);
    // Released through the other pool's store: the lease lives in the database, not the store.
    if (first[0]?.acquired) await b.releaseLease(first[0].lease);
    const second = await race();
    expect(second).toHaveLength(1);
    expect(second[0]?.acquired && second[0].lease.token).toBe(2);

    // A machine whose clock is an hour fast still gets an expiry from the server's clock.
    const serverNow = (await sql("SELECT clock_timestamp() AS t")).rows[0]?.t as Date;
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 3_600_000);
      const attempt = await a.acquireLease("other", "fast-clock", 10_000);
      expect(attempt.acquired).toBe(true);
      const expires = attempt.acquired ? attempt.lease.expiresAt.getTime() : 0;
      expect(Math.abs(expires - (serverNow.getTime() + 10_000))).toBeLessThan(5_000);
      const renewed = attempt.acquired ? await a.renewLease(attempt.lease, 20_000) : undefined;
      expect(Math.abs((renewed?.expiresAt.getTime() ?? 0) - (serverNow.getTime() + 20_000))).toBeLessThan(
        5_000,
      );
    } finally {
      vi.useRealTimers();
    }
  });

  it("keeps a run's lease row after deleteRun, so tokens still grow", async () => {
    const store = await openStore({ connectionString: url, schema: newSchema() });
    const first = await store.acquireLease("p1", "a", 10_000);
    await store.putCheckpoint(record("p1", 1), [output("x")]);
    if (first.acquired) await store.releaseLease(first.lease);
    await store.deleteRun("p1");
    expect(await store.listPipelineIds()).toEqual([]);
    const again = await store.acquireLease("p1", "b", 10_000);
    expect(again.acquired && again.lease.token).toBe(2);
  });
});
