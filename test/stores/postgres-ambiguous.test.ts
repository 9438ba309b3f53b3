/**
 * A connection lost while a write is on the wire: the PostgreSQL store cannot know whether the
 * server applied it, and says so (`maybeCommitted`). The server is real; the lost connection is
 * a proxy that holds the server's reply (the write is applied, the client never hears) or drops
 * the client's request (the client sent it, the server never got it), then cuts the connection.
 */
import type pg from "pg";
import { describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/core/errors.js";
import type { PgPool, PgPoolClient } from "../../src/stores/postgres/driver.js";
import { POSTGRES_URL, postgresUp } from "../support/services.js";
import { startProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { later, newPool, newSchema, openStore, output, record, sql } from "./postgres-fixtures.js";

async function proxied(): Promise<{ proxy: TcpProxy; url: string }> {
  const proxy = await startProxy("127.0.0.1", Number(new URL(POSTGRES_URL).port || 5432));
  later(() => proxy.close());
  const url = new URL(POSTGRES_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  return { proxy, url: url.toString() };
}

/** Waits until `check` holds, polling; the test's own timeout bounds it. */
async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 10));
}

const stored = async (schema: string, checkpointId: string) =>
  (
    await sql(`SELECT count(*)::int AS n FROM "${schema}".cairn_checkpoints WHERE checkpoint_id = $1`, [
      checkpointId,
    ])
  ).rows[0]?.n === 1;

const sequences = async (schema: string, pipelineId: string) =>
  (
    await sql(`SELECT sequence FROM "${schema}".cairn_checkpoints WHERE pipeline_id = $1 ORDER BY sequence`, [
      pipelineId,
    ])
  ).rows.map((r) => r.sequence as number);

async function ambiguous(promise: Promise<unknown>): Promise<StoreUnavailableError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StoreUnavailableError);
  return error as StoreUnavailableError;
}

describe.skipIf(!postgresUp)("PostgresStore: a write whose reply is lost", () => {
  it("reports a single-statement write applied but unanswered as maybe committed", async () => {
    const { proxy, url } = await proxied();
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema, connectionTimeoutMs: 2000 });
    await store.putCheckpoint(record("p1", 1), [output("one")]);
    const second = record("p1", 2, { parent_checkpoint_id: "p1_s1" });

    proxy.holdReplies(true);
    const put = store.putCheckpoint(second, [output("two")], undefined, { expectedTip: "p1_s1" });
    // The server applied it; its answer is held in the proxy. Then the connection is lost.
    await until(() => stored(schema, "p1_s2"));
    proxy.cut();
    proxy.holdReplies(false);
    const error = await ambiguous(put);
    expect(error.maybeCommitted).toBe(true);
    expect(error.message).toMatch(/may have been applied/);

    // Reading the id tells what happened: it was written, once.
    expect(await store.getCheckpoint("p1_s2")).toEqual(second);
    // A blind retry is refused by the tip check: no second copy.
    await expect(
      store.putCheckpoint(second, [output("two")], undefined, { expectedTip: "p1_s1" }),
    ).rejects.toMatchObject({ code: "CAIRN_CONFLICT" });
    expect(await sequences(schema, "p1")).toEqual([1, 2]);
  });

  it("reports a request the server never got as maybe committed too: the client cannot tell", async () => {
    const { proxy, url } = await proxied();
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema, connectionTimeoutMs: 2000 });
    await store.putCheckpoint(record("p1", 1), [output("one")]);
    const second = record("p1", 2, { parent_checkpoint_id: "p1_s1" });

    proxy.dropRequests(true);
    const sent = proxy.clientBytes;
    const put = store.putCheckpoint(second, [output("two")], undefined, { expectedTip: "p1_s1" });
    await until(() => proxy.clientBytes > sent);
    proxy.cut();
    proxy.dropRequests(false);
    const error = await ambiguous(put);
    expect(error.maybeCommitted).toBe(true);

    // Reading the id tells: absent, so the write is retried, and stored once.
    expect(await store.getCheckpoint("p1_s2")).toBeUndefined();
    await store.putCheckpoint(second, [output("two")], undefined, { expectedTip: "p1_s1" });
    expect(await sequences(schema, "p1")).toEqual([1, 2]);
  });

  it("does not report a write that never left as maybe committed", async () => {
    const { proxy, url } = await proxied();
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema, connectionTimeoutMs: 2000 });
    await store.putCheckpoint(record("p1", 1), [output("one")]);
    await proxy.down();
    // Once the pool has seen its idle connection go: a request written into a connection the
    // peer has just closed is ambiguous too, as far as the client can tell.
    const pool = (store as unknown as { pool: pg.Pool }).pool;
    await until(() => pool.totalCount === 0);
    const error = await ambiguous(store.putCheckpoint(record("p1", 2), [output("two")]));
    expect(error.maybeCommitted).toBe(false);
    expect(error.message).not.toMatch(/may have been applied/);
    // Reads never are.
    const read = await ambiguous(store.getCheckpoint("p1_s1"));
    expect(read.maybeCommitted).toBe(false);
  });

  it("reports a status update applied but unanswered as maybe committed", async () => {
    const { proxy, url } = await proxied();
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema, connectionTimeoutMs: 2000 });
    await store.putCheckpoint(record("p1", 1), []);
    proxy.holdReplies(true);
    const update = store.updateCheckpoint("p1_s1", { status: "failed" });
    await until(
      async () =>
        (await sql(`SELECT status FROM "${schema}".cairn_checkpoints WHERE checkpoint_id = 'p1_s1'`)).rows[0]
          ?.status === "failed",
    );
    proxy.cut();
    proxy.holdReplies(false);
    expect((await ambiguous(update)).maybeCommitted).toBe(true);
  });

  describe("in a transaction (several new outputs)", () => {
    /** The caller's pool, with a hook run before each statement a checked-out client sends. */
    function hookedPool(url: string, before: (text: string) => void): PgPool {
      const pool = newPool({ connectionString: url, connectionTimeoutMillis: 2000 });
      return {
        query: (q) => pool.query(q as pg.QueryConfig),
        end: () => pool.end(),
        on: (event, listener) => pool.on(event, listener),
        options: pool.options,
        connect: async (): Promise<PgPoolClient> => {
          const client = await pool.connect();
          return {
            query: (q) => {
              before(q.text);
              return client.query(q as pg.QueryConfig);
            },
            release: (error) => client.release(error),
            on: (event, listener) => client.on(event, listener),
            removeListener: (event, listener) => client.removeListener(event, listener),
          };
        },
      };
    }

    it("reports a COMMIT applied but unanswered as maybe committed", async () => {
      const { proxy, url } = await proxied();
      let armed = false;
      const pool = hookedPool(url, (text) => {
        if (armed && text === "COMMIT") proxy.holdReplies(true);
      });
      const schema = newSchema();
      const store = await openStore({ pool, schema });
      await store.putCheckpoint(record("p1", 1), [output("one")]);
      const second = record("p1", 2, { parent_checkpoint_id: "p1_s1" });

      armed = true;
      const put = store.putCheckpoint(second, [output("two"), output("three")], undefined, {
        expectedTip: "p1_s1",
      });
      await until(() => stored(schema, "p1_s2"));
      proxy.cut();
      proxy.holdReplies(false);
      armed = false;
      const error = await ambiguous(put);
      expect(error.maybeCommitted).toBe(true);
      expect(error.message).toMatch(/may have been applied/);
      expect(await store.getCheckpoint("p1_s2")).toEqual(second);
      expect(await sequences(schema, "p1")).toEqual([1, 2]);
    });

    it("does not report a connection lost before COMMIT as maybe committed: the server rolls back", async () => {
      const { proxy, url } = await proxied();
      let armed = false;
      const pool = hookedPool(url, (text) => {
        if (armed && /^INSERT INTO \S+cairn_checkpoints/.test(text)) {
          armed = false;
          proxy.cut();
        }
      });
      const schema = newSchema();
      const store = await openStore({ pool, schema });
      await store.putCheckpoint(record("p1", 1), [output("one")]);

      armed = true;
      const error = await ambiguous(store.putCheckpoint(record("p1", 2), [output("two"), output("three")]));
      expect(error.maybeCommitted).toBe(false);
      expect(await sequences(schema, "p1")).toEqual([1]);
    });
  });
});
