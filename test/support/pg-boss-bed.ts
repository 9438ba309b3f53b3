/**
 * What the in-process pg-boss tests (test/workers/pg-boss-*.test.ts) share: a pool on the test
 * PostgreSQL to read pg-boss's job table, the schemas they create (dropped after the file), what
 * they start (closed after each test), and a poll for a condition.
 */
import pg from "pg";
import { afterAll, afterEach } from "vitest";
import { dropSchemas, POSTGRES_URL } from "./services.js";

/** Polls `probe` every 50 ms until it returns a value; throws naming `what` after `ms`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  what: string,
  ms: number,
) {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Registers the cleanup of a describe block: each list is emptied and closed after each test, in
 * the order given (workers before the stores they write to); after the file the pool ends and the
 * schemas pushed to `schemas` are dropped.
 */
export function pgBossTestBed(...closeAfterEach: { close(): Promise<unknown> }[][]) {
  const schemas: string[] = [];
  const db = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  afterEach(async () => {
    for (const list of closeAfterEach) for (const item of list.splice(0)) await item.close();
  });
  afterAll(async () => {
    await db.end();
    await dropSchemas(...schemas);
  });
  return { schemas, db };
}
