/**
 * One store URL per store for a test file: a temporary folder for the file and sqlite stores, a
 * schema and a key prefix for PostgreSQL and Redis, a prefix in the file's bucket (s3, Ceph RGW)
 * and container (azure, azurite) — each server's only when it is up — all removed after the
 * file's tests. Registers its own `beforeAll`/`afterAll`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { azureUp, azureUrl, objectPrefix, s3Up, s3Url } from "./object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

/** The stores of a test file, and its temporary folder (valid once `beforeAll` has run). */
export interface StoreUrls {
  /** Store name → a function giving its URL. */
  urls: Record<string, () => string>;
  /** The temporary folder, for the file stores and anything else the tests write. */
  dir(): string;
}

/** Store URLs for every store this machine has, named after `tag`; `memory` adds a named memory store. */
export function storeUrls(tag: string, options: { memory?: boolean } = {}): StoreUrls {
  let dir: string | undefined;
  const folder = () => {
    if (!dir) throw new Error("storeUrls: the folder exists from beforeAll on");
    return dir;
  };
  const schema = uniqueName(`cairn_${tag.replace(/-/g, "_")}`);
  const prefix = `${uniqueName(`cairn-${tag}`)}:`;
  // The bucket and container (with every prefix in them) go after the file: object-servers.ts.
  const objects = objectPrefix(tag);
  const urls: Record<string, () => string> = {
    ...(options.memory ? { memory: () => `memory:${tag}` } : {}),
    file: () => `file:${join(folder(), "files")}`,
    sqlite: () => `sqlite:${join(folder(), "c.db")}`,
    ...(postgresUp ? { postgres: () => `${POSTGRES_URL}?schema=${schema}` } : {}),
    ...(redisUp ? { redis: () => `${REDIS_URL}?keyPrefix=${prefix}` } : {}),
    ...(s3Up ? { s3: () => s3Url(objects) } : {}),
    ...(azureUp ? { azure: () => azureUrl(objects) } : {}),
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `cairn-${tag}-`));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (postgresUp) await dropSchemas(schema);
    if (redisUp) await deleteKeyPrefixes(prefix);
  });
  return { urls, dir: folder };
}
