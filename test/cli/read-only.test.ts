/**
 * Reading commands open the store read-only: on a location with no store they say so (exit 3)
 * and create nothing — no folder, no database file, no schema, no key.
 */
import { access, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { azureUp, azureUrl, objectPrefix, rawObjects, s3Up, s3Url } from "../support/object-servers.js";
import { POSTGRES_URL, postgresUp, REDIS_URL, redisUp, uniqueName } from "../support/services.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("read-only");

/** Every reading command, with what it needs to name (a run or checkpoint that does not exist). */
const READERS: readonly string[][] = [
  ["list"],
  ["list", "--pipeline-id", "etl"],
  ["chain", "--pipeline-id", "etl"],
  ["stats"],
  ["inspect", "--checkpoint-id", "etl_extract_1"],
  ["validate", "--all"],
  ["analyze", "--pipeline-id", "etl"],
  ["report", "--pipeline-id", "etl"],
  ["visualize", "--pipeline-id", "etl", "--output", "graph.svg"],
  ["compare", "--checkpoint-id", "a", "--checkpoint-id", "b"],
  ["monitor", "--once"],
  ["watch"],
  ["export", "--pipeline-id", "etl", "--output", "etl.json"],
];

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function expectNoStore(store: string): Promise<void> {
  for (const args of READERS) {
    const result = await runCairn([...args, "--store", store], { cwd: dir() });
    expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(3);
    expect(result.stderr, args.join(" ")).toContain("No cairn store at");
  }
}

describe("reading commands on a location with no store", () => {
  it("file: exit 3, and no folder is created", async () => {
    const base = join(dir(), "no", "files");
    await expectNoStore(`file:${base}`);
    expect(await exists(join(dir(), "no"))).toBe(false);
  }, 120_000);

  it("sqlite: exit 3, and neither the folder nor the database is created", async () => {
    const db = join(dir(), "no-such-dir", "x.db");
    await expectNoStore(`sqlite:${db}`);
    expect(await exists(join(dir(), "no-such-dir"))).toBe(false);
  }, 120_000);

  it("sqlite: a database file without cairn's tables is no store, and gets none", async () => {
    const db = join(dir(), "other.db");
    const { default: Database } = await import("better-sqlite3");
    const other = new Database(db);
    other.exec("CREATE TABLE notes (text TEXT)");
    other.close();
    const result = await runCairn(["list", "--store", `sqlite:${db}`], { cwd: dir() });
    expect(result.code).toBe(3);
    const after = new Database(db, { readonly: true });
    const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    after.close();
    expect(tables).toEqual([{ name: "notes" }]);
  }, 60_000);

  it.skipIf(!postgresUp)(
    "postgres: exit 3, and the schema is not created",
    async () => {
      const schema = uniqueName("cairn_read_only");
      await expectNoStore(`${POSTGRES_URL}?schema=${schema}`);
      const { default: pg } = await import("pg");
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const { rows } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
        expect(rows).toEqual([]);
      } finally {
        await client.end();
      }
    },
    120_000,
  );

  it.skipIf(!redisUp)(
    "redis: an empty key prefix is an empty store, and reading writes no key",
    async () => {
      const prefix = `${uniqueName("cairn-read-only")}:`;
      const store = `${REDIS_URL}?keyPrefix=${prefix}`;
      for (const args of [["list"], ["stats"], ["validate", "--all"], ["monitor", "--once"]]) {
        const result = await runCairn([...args, "--store", store], { cwd: dir() });
        expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(0);
      }
      // No feed before a writable open: watching asks for one (exit 5) rather than creating it.
      const watch = await runCairn(["watch", "--store", store], { cwd: dir() });
      expect(watch.code, watch.stderr).toBe(5);
      const { Redis } = await import("ioredis");
      const client = new Redis(REDIS_URL);
      try {
        expect(await client.keys(`${prefix}*`)).toEqual([]);
      } finally {
        client.disconnect();
      }
    },
    60_000,
  );

  for (const c of [
    { name: "s3", up: s3Up, url: s3Url },
    { name: "azure", up: azureUp, url: azureUrl },
  ])
    it.skipIf(!c.up)(
      `${c.name}: exit 3 on a prefix with no objects, and no object is written`,
      async () => {
        const store = c.url(objectPrefix("read-only"));
        await expectNoStore(store);
        const raw = await rawObjects(store);
        try {
          expect((await raw.list("")).keys).toEqual([]);
        } finally {
          await raw.close();
        }
      },
      120_000,
    );

  it("file: a store an older cairn wrote (no runs index) is read only after cairn migrate", async () => {
    const base = join(dir(), "legacy");
    const manager = new CheckpointManager({ store: `file:${base}` });
    await manager.createCheckpoint({ pipelineId: "etl", stageName: "extract", stageIndex: 0 });
    await manager.close();
    await rm(join(base, ".runs"), { recursive: true });
    const before = await runCairn(["list", "--store", `file:${base}`], { cwd: dir() });
    expect(before.code).toBe(2);
    expect(before.stderr).toContain("cairn migrate");
    expect(await exists(join(base, ".runs"))).toBe(false);
    expect((await runCairn(["migrate", "--store", `file:${base}`], { cwd: dir() })).code).toBe(0);
    const after = await runCairn(["list", "--store", `file:${base}`], { cwd: dir() });
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toContain("etl");
  }, 60_000);

  it("reads an existing store as before", async () => {
    const store = `sqlite:${join(dir(), "real.db")}`;
    const manager = new CheckpointManager({ store });
    await manager.createCheckpoint({ pipelineId: "etl", stageName: "extract", stageIndex: 0 });
    await manager.close();
    const list = await runCairn(["list", "--pipeline-id", "etl", "--store", store], { cwd: dir() });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain("extract");
    expect((await runCairn(["validate", "--all", "--store", store], { cwd: dir() })).code).toBe(0);
  }, 60_000);
});
