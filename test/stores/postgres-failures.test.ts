import type pg from "pg";
import { describe, expect, it } from "vitest";
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

const rowCounts = async (schema: string, pipelineId: string) => {
  const { rows } = await sql(
    `SELECT (SELECT count(*)::int FROM "${schema}".cairn_checkpoints WHERE pipeline_id = $1) AS checkpoints,
            (SELECT count(*)::int FROM "${schema}".cairn_outputs WHERE pipeline_id = $1) AS outputs`,
    [pipelineId],
  );
  return rows[0];
};

describe.skipIf(!postgresUp)("PostgresStore failures", () => {
  it("reports the server going away as unavailable, stores nothing, and recovers", async () => {
    const { proxy, url } = await proxied();
    const schema = newSchema();
    const store = await openStore({ connectionString: url, schema, connectionTimeoutMs: 2000 });
    await store.putCheckpoint(record("p1", 1), [output("one")]);
    // The store's own listener keeps a dropped idle connection from crashing the process.
    expect((store as unknown as { pool: pg.Pool }).pool.listenerCount("error")).toBe(1);

    await proxy.down();
    const second = record("p1", 2);
    await expect(store.putCheckpoint(second, [output("two")])).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
      store: "postgres",
    });
    await expect(store.listCheckpoints("p1")).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
    expect(await rowCounts(schema, "p1")).toEqual({ checkpoints: 1, outputs: 1 });

    await proxy.up();
    await store.putCheckpoint(second, [output("two")]);
    expect((await store.listCheckpoints("p1")).map((e) => e.ok && e.metadata.sequence)).toEqual([1, 2]);
    expect(await store.getCheckpoint("p1_s2")).toEqual(second);
    const outputs = await store.getOutputs("p1", [output("one").hash, output("two").hash]);
    expect([...outputs.values()].sort()).toEqual(["one", "two"]);
  });

  it("times out on a server that accepts but never answers", async () => {
    // A listener that never speaks: the connection attempt must give up, not hang.
    const { createServer } = await import("node:net");
    const sockets = new Set<import("node:net").Socket>();
    const silent = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    later(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as { port: number }).port;
    const url = new URL(POSTGRES_URL);
    url.host = `127.0.0.1:${port}`;
    const { PostgresStore } = await import("../../src/stores/postgres/postgres-store.js");
    const store = await PostgresStore.open({ connectionString: url.toString(), connectionTimeoutMs: 300 });
    later(() => store.close());
    await expect(store.setup()).rejects.toMatchObject({ code: "CAIRN_STORE_UNAVAILABLE" });
  });

  it("leaves no partial checkpoint when the connection drops mid-transaction", async () => {
    const { proxy, url } = await proxied();
    const pool = newPool({ connectionString: url, connectionTimeoutMillis: 2000 });
    let dropBeforeCheckpoint = false;
    let dropped = false;
    // The caller's pool, with a hook that cuts the connection after the outputs are inserted
    // and before the checkpoint row is.
    const hooked: PgPool = {
      query: (q) => pool.query(q as pg.QueryConfig),
      end: () => pool.end(),
      on: (event, listener) => pool.on(event, listener),
      options: pool.options,
      connect: async (): Promise<PgPoolClient> => {
        const client = await pool.connect();
        return {
          query: async (q) => {
            if (dropBeforeCheckpoint && /^INSERT INTO \S+cairn_checkpoints/.test(q.text)) {
              dropped = true;
              await proxy.down();
            }
            return client.query(q as pg.QueryConfig);
          },
          release: (error) => client.release(error),
          on: (event, listener) => client.on(event, listener),
          removeListener: (event, listener) => client.removeListener(event, listener),
        };
      },
    };
    const schema = newSchema();
    const store = await openStore({ pool: hooked, schema });
    await store.putCheckpoint(record("p1", 1), [output("one")]);

    dropBeforeCheckpoint = true;
    const second = record("p1", 2);
    await expect(store.putCheckpoint(second, [output("two"), output("three")])).rejects.toMatchObject({
      code: "CAIRN_STORE_UNAVAILABLE",
    });
    expect(dropped).toBe(true);
    expect(await rowCounts(schema, "p1")).toEqual({ checkpoints: 1, outputs: 1 });

    dropBeforeCheckpoint = false;
    await proxy.up();
    await store.putCheckpoint(second, [output("two"), output("three")]);
    expect(await rowCounts(schema, "p1")).toEqual({ checkpoints: 2, outputs: 3 });
  });

  it("rolls the outputs back when the checkpoint insert fails", async () => {
    const schema = newSchema();
    const store = await openStore({ connectionString: POSTGRES_URL, schema });
    // A sequence past INTEGER fails on the checkpoint row, after the outputs went in.
    const tooBig = record("p1", 2 ** 31);
    await expect(store.putCheckpoint(tooBig, [output("lost")])).rejects.toMatchObject({ code: "22003" });
    expect(await rowCounts(schema, "p1")).toEqual({ checkpoints: 0, outputs: 0 });
    // The pooled connection is usable again afterwards.
    await store.putCheckpoint(record("p1", 1), [output("kept")]);
    expect(await store.listOutputHashes("p1")).toEqual([output("kept").hash]);
  });
});
