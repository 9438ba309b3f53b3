/**
 * Shared helpers of the PostgreSQL store tests: records, a schema per test, direct SQL around
 * the store, and a registry of everything to close or drop after each test.
 */
import pg from "pg";
import { afterEach } from "vitest";
import { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { POSTGRES_URL, uniqueName } from "../support/services.js";

export { output, record } from "../support/records.js";

const cleanups: (() => Promise<unknown>)[] = [];

/** Runs `fn` after the current test, latest first. */
export function later(fn: () => Promise<unknown>): void {
  cleanups.push(fn);
}

afterEach(async () => {
  const errors: unknown[] = [];
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, "cleanup failed");
});

/** Runs one statement on a connection of its own, beside the store. */
export async function sql(text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** A fresh schema name, dropped after the test. */
export function newSchema(prefix = "cairn_t"): string {
  const schema = uniqueName(prefix);
  later(() => sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  return schema;
}

/** A pg pool the test owns, ended after the test. */
export function newPool(config: pg.PoolConfig = {}): pg.Pool {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, ...config });
  pool.on("error", () => {});
  later(() => pool.end());
  return pool;
}

/** Opens and sets up a store, closed after the test. */
export async function openStore(config: Record<string, unknown>): Promise<PostgresStore> {
  const store = await PostgresStore.open(config);
  later(() => store.close());
  await store.setup();
  return store;
}
