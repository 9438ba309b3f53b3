/**
 * Secure deletion of run key records, checked around each store: after a key record was written
 * (and replaced), used by a run and destroyed (by deleteRun, or by a replacing import), its text
 * is found nowhere the store's files or server still show: every file of the file store's folder,
 * the SQLite database and WAL files byte for byte, the PostgreSQL table by plain SQL, every Redis
 * key of the prefix by plain commands, every object of an s3 or azure prefix through a raw client
 * (what the object API shows: not the server's disk, nor old versions in a versioned bucket). What each check cannot see is in docs/notes/i13-runkeys.md.
 */
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileStore } from "../../src/stores/file/file-store.js";
import { GuardedStore } from "../../src/stores/guarded-store.js";
import { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { openStore } from "../../src/stores/registry.js";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";
import type { CheckpointStore } from "../../src/stores/types.js";
import { makeRecord } from "../../src/testing/store-contract.js";
import { azureUp, azureUrl, objectPrefix, rawObjects, s3Up, s3Url } from "../support/object-servers.js";
import { POSTGRES_URL, postgresUp, REDIS_URL, redisUp, uniqueName } from "../support/services.js";

/** Texts that occur nowhere but in the key records: found anywhere after deletion, they leaked. */
const markers = () => {
  const tag = uniqueName("k").replace(/[^A-Za-z0-9]/g, "");
  return { first: `KEYFIRST${tag}`, second: `KEYSECOND${tag}`, imported: `KEYIMPORTED${tag}` };
};

/** Key records with the marker inside a realistic, larger record (a wrapped key is ~100 bytes). */
const keyRecord = (marker: string) =>
  JSON.stringify({ kek: "kek-1", wrapped: `${marker}${"x".repeat(300)}` });

/**
 * The scenario every store goes through: a key created then replaced, checkpoints written, the
 * run deleted; a second run imported with a key, then replaced by an import without one.
 */
async function useAndDestroyKeys(store: CheckpointStore, m: ReturnType<typeof markers>, run: string) {
  const putRunKey = store.putRunKey?.bind(store);
  if (!putRunKey) throw new Error(`the ${store.strategy} store has no putRunKey`);
  expect(await putRunKey(run, keyRecord(m.first), undefined)).toBe(true);
  expect(await putRunKey(run, keyRecord(m.second), keyRecord(m.first))).toBe(true);
  for (let s = 1; s <= 3; s++) {
    const made = makeRecord(run, s, { outputs: { [`s${s}`]: `"body ${s}"` } });
    await store.putCheckpoint(made.record, made.outputs);
  }
  await store.deleteRun(run);
  expect(await store.getRunKey?.(run)).toBeUndefined();
  const other = `${run}-imported`;
  const imported = [1, 2].map((s) => makeRecord(other, s, { outputs: { [`i${s}`]: `"imported ${s}"` } }));
  await store.importRun(other, imported, { replace: false, runKey: keyRecord(m.imported) });
  expect(await store.getRunKey?.(other)).toBe(keyRecord(m.imported));
  await store.importRun(other, [makeRecord(other, 1)], { replace: true });
  expect(await store.getRunKey?.(other)).toBeUndefined();
}

function expectNoMarker(where: string, content: Buffer | string, m: ReturnType<typeof markers>): void {
  const text = typeof content === "string" ? content : content.toString("latin1");
  for (const marker of Object.values(m)) {
    // A boolean, so a failure names the place, not megabytes of content.
    expect(text.includes(marker), `${marker} found in ${where}`).toBe(false);
  }
}

/** Every file under `dir`, recursively, dot-folders (leases, index, staging, trash) included. */
async function filesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(path)));
    else found.push(path);
  }
  return found;
}

describe("run key records are destroyed, not only unlinked", () => {
  let dir: string;
  const closing: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-runkeys-"));
  });
  afterEach(async () => {
    for (const store of closing.splice(0)) await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const guarded = async (inner: CheckpointStore) => {
    const store = new GuardedStore(inner);
    closing.push(store);
    await store.setup();
    return store;
  };

  it("file store: no file of the store's folder holds a destroyed key", async () => {
    const m = markers();
    const store = await guarded(new FileStore({ basePath: dir, fsync: true }));
    await useAndDestroyKeys(store, m, "run-file");
    const files = await filesUnder(dir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expectNoMarker(file, readFileSync(file), m);
  });

  it("file store: the key file's own bytes are zeroed before it is unlinked, and when replaced", async () => {
    const store = await guarded(new FileStore({ basePath: dir, fsync: true }));
    const run = "run-zeroed";
    const first = keyRecord("FIRSTKEY");
    expect(await store.putRunKey?.(run, first, undefined)).toBe(true);
    // A handle opened on the file keeps its inode readable after unlink or rename, as a
    // process holding it would: what it reads is what the disk blocks were given.
    const keyFile = join(dir, run, "outputs", ".run-key");
    const readAll = (fd: number, length: number) => {
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, 0);
      return buffer;
    };
    const before = openSync(keyFile, "r");
    expect(readAll(before, first.length).toString("utf8")).toBe(first);
    const second = keyRecord("SECONDKEY");
    expect(await store.putRunKey?.(run, second, first)).toBe(true);
    expect(readAll(before, first.length).equals(Buffer.alloc(first.length))).toBe(true);
    const current = openSync(keyFile, "r");
    await store.deleteRun(run);
    expect(readAll(current, second.length).equals(Buffer.alloc(second.length))).toBe(true);
    expect(await store.getRunKey?.(run)).toBeUndefined();
    // A run replaced by an import without a key: its key file is zeroed with the old run.
    const third = keyRecord("THIRDKEY");
    await store.importRun(run, [makeRecord(run, 1)], { replace: false, runKey: third });
    const imported = openSync(keyFile, "r");
    expect(readAll(imported, third.length).toString("utf8")).toBe(third);
    await store.importRun(run, [makeRecord(run, 1)], { replace: true });
    expect(readAll(imported, third.length).equals(Buffer.alloc(third.length))).toBe(true);
    for (const fd of [before, current, imported]) closeSync(fd);
  });

  it("sqlite store: neither the database file nor its WAL holds a destroyed key", async () => {
    const m = markers();
    const dbPath = join(dir, "cairn.db");
    const store = await guarded(await SqliteStore.open({ dbPath }));
    await useAndDestroyKeys(store, m, "run-sqlite");
    const files = (await readdir(dir)).filter((n) => n.startsWith("cairn.db"));
    expect(files).toContain("cairn.db");
    for (const name of files) expectNoMarker(name, readFileSync(join(dir, name)), m);
  });

  it("sqlite store: a replaced key record leaves neither the database file nor its WAL", async () => {
    const m = markers();
    const dbPath = join(dir, "cairn.db");
    const store = await guarded(await SqliteStore.open({ dbPath }));
    const checkFiles = async () => {
      for (const name of (await readdir(dir)).filter((n) => n.startsWith("cairn.db")))
        expectNoMarker(name, readFileSync(join(dir, name)), m);
    };
    const made = makeRecord("run-rekeyed", 1);
    await store.putCheckpoint(made.record, made.outputs);
    expect(await store.putRunKey?.("run-rekeyed", keyRecord(m.first), undefined)).toBe(true);
    // A rekey: the same run, a record of another length (its cell moves within the page).
    expect(await store.putRunKey?.("run-rekeyed", `${keyRecord("now")}!`, keyRecord(m.first))).toBe(true);
    await checkFiles();
    // A key-only run whose import brings its own key record.
    expect(await store.putRunKey?.("run-pending", keyRecord(m.second), undefined)).toBe(true);
    await store.importRun("run-pending", [makeRecord("run-pending", 1)], {
      replace: false,
      runKey: keyRecord("given"),
    });
    expect(await store.getRunKey?.("run-pending")).toBe(keyRecord("given"));
    await checkFiles();
  });

  for (const c of [
    { name: "s3", up: s3Up, url: s3Url },
    { name: "azure", up: azureUp, url: azureUrl },
  ])
    it.skipIf(!c.up)(`${c.name} store: no object of the prefix holds a destroyed key`, async () => {
      const m = markers();
      const url = c.url(objectPrefix("runkeys"));
      const store = await guarded(await openStore(url));
      await useAndDestroyKeys(store, m, `run-${c.name}`);
      const raw = await rawObjects(url);
      try {
        const { keys, continuation } = await raw.list("");
        expect(continuation).toBeUndefined();
        expect(keys.length).toBeGreaterThan(0);
        for (const key of keys) expectNoMarker(key, (await raw.get(key))?.body ?? "", m);
      } finally {
        await raw.close();
      }
    });

  it.skipIf(!postgresUp)("postgres store: no row of the key table holds a destroyed key", async () => {
    const m = markers();
    const schema = uniqueName("cairn_keys");
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const store = await guarded(await PostgresStore.open({ connectionString: POSTGRES_URL, schema }));
      await useAndDestroyKeys(store, m, "run-pg");
      const { rows } = await client.query(`SELECT pipeline_id, record FROM "${schema}".cairn_run_keys`);
      expect(rows).toEqual([]);
      // Every live row of every cairn table, as text: the key is in none of them.
      const tables = await client.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
        [schema],
      );
      for (const { tablename } of tables.rows as { tablename: string }[]) {
        const all = await client.query(`SELECT t::text AS row FROM "${schema}"."${tablename}" AS t`);
        expectNoMarker(tablename, all.rows.map((r) => String(r.row)).join("\n"), m);
      }
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });

  it.skipIf(!redisUp)("redis store: no key of the prefix holds a destroyed key", async () => {
    const m = markers();
    const keyPrefix = `${uniqueName("cairn-keys")}:`;
    const raw = new Redis(REDIS_URL);
    try {
      const store = await guarded(await RedisStore.open({ url: REDIS_URL, keyPrefix }));
      await useAndDestroyKeys(store, m, "run-redis");
      // KEYS is fine on a test server: the store itself never uses it.
      const keys = await raw.keys(`${keyPrefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.filter((k) => k.endsWith(":key"))).toEqual([]);
      for (const key of keys) {
        const type = await raw.type(key);
        const value =
          type === "string"
            ? await raw.get(key)
            : type === "hash"
              ? JSON.stringify(await raw.hgetall(key))
              : type === "zset"
                ? (await raw.zrange(key, 0, -1)).join("\n")
                : `unexpected type ${type}`;
        expectNoMarker(key, value ?? "", m);
      }
    } finally {
      const keys = await raw.keys(`${keyPrefix}*`);
      if (keys.length > 0) await raw.del(...keys);
      await raw.quit();
    }
  });
});
