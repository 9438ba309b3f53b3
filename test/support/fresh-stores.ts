/**
 * Fresh, empty stores for tests that need a new one per case (replication pairs: each pair its own
 * source and target), all removed after the file's tests: folders under one temporary folder, a
 * schema and a key prefix per store, each server's only when it is up. Registers its own
 * `beforeAll`/`afterAll`. (`store-urls.ts` gives one location per store per file instead.)
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

/** Makers of fresh store URLs; `postgres` and `redis` are undefined when their server is down. */
export interface FreshStores {
  /** The temporary folder (valid once `beforeAll` has run). */
  dir(): string;
  memory(): string;
  file(): string;
  sqlite(): string;
  postgres: (() => string) | undefined;
  redis: (() => string) | undefined;
}

/** Fresh store URLs named after `tag`, cleaned up after the file's tests. */
export function freshStores(tag: string): FreshStores {
  let dir: string | undefined;
  const schemas: string[] = [];
  const prefixes: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `cairn-${tag}-`));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (postgresUp && schemas.length > 0) await dropSchemas(...schemas);
    if (redisUp && prefixes.length > 0) await deleteKeyPrefixes(...prefixes);
  });
  const folder = () => {
    if (!dir) throw new Error("freshStores: the folder exists from beforeAll on");
    return dir;
  };
  const hex = () => randomBytes(4).toString("hex");
  return {
    dir: folder,
    memory: () => `memory:${tag}-${hex()}`,
    file: () => `file:${join(folder(), `files-${hex()}`)}`,
    sqlite: () => `sqlite:${join(folder(), `${hex()}.db`)}`,
    postgres: postgresUp
      ? () => {
          const schema = uniqueName(`cairn_${tag.replace(/-/g, "_")}`);
          schemas.push(schema);
          return `${POSTGRES_URL}?schema=${schema}`;
        }
      : undefined,
    redis: redisUp
      ? () => {
          const prefix = `${uniqueName(`cairn-${tag}`)}:`;
          prefixes.push(prefix);
          return `${REDIS_URL}?keyPrefix=${prefix}`;
        }
      : undefined,
  };
}
