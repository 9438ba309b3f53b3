/**
 * LangGraph's checkpoint validation kit over every store: a `CheckpointerTestInitializer` whose
 * `createCheckpointer` opens a saver on a fresh, empty store each time. The kit creates about a
 * hundred savers per store and requires that none sees another's data (its `list` cases list
 * every thread of the store), so each gets its own folder, database file, schema, key prefix or
 * object prefix; everything goes after the file's tests (one DROP / SCAN / `rm` per store, not
 * one per saver, to keep the runs fast). Servers that are down skip their store, as elsewhere.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import type { CheckpointSaverTestInitializer } from "@langchain/langgraph-checkpoint-validation";
import { afterAll, beforeAll } from "vitest";
import type { CheckpointManagerOptions } from "../../src/manager/manager-options.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
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

/** One store the kit runs on. */
export interface KitStore {
  /** The store's name in test titles (`memory`, `sqlite`, `s3`, …). */
  name: string;
  /** False when its server is down: the suite is skipped (services.ts warns). */
  up: boolean;
  /** Manager options of a new, empty store. */
  fresh(): CheckpointManagerOptions;
}

/**
 * Every store of the repo, each handing out fresh stores named after `tag`, all removed after
 * the file's tests. Registers its own `beforeAll`/`afterAll`.
 */
export function kitStores(tag: string): KitStore[] {
  let dir: string | undefined;
  const schemas: string[] = [];
  // One parent key prefix: a single SCAN removes every saver's keys afterwards.
  const redisPrefix = `${uniqueName(`cairn-${tag}`)}:`;
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), `cairn-${tag}-`));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    if (postgresUp) await dropSchemas(...schemas);
    if (redisUp) await deleteKeyPrefixes(redisPrefix);
  }, 120_000);
  const inDir = (name: string) => {
    if (!dir) throw new Error("kitStores: the folder exists from beforeAll on");
    return join(dir, name);
  };
  return [
    // An unnamed memory store is a new, private one each time.
    { name: "memory", up: true, fresh: () => ({ store: "memory:" }) },
    {
      name: "object-memory",
      up: true,
      fresh: () => ({ store: new ObjectStore({ strategy: "memobj", client: new MemoryObjects() }) }),
    },
    { name: "file", up: true, fresh: () => ({ store: `file:${inDir(`files-${++count}`)}` }) },
    { name: "sqlite", up: true, fresh: () => ({ store: `sqlite:${inDir(`${++count}.db`)}` }) },
    {
      name: "postgres",
      up: postgresUp,
      fresh: () => {
        const schema = uniqueName(`cairn_${tag.replace(/-/g, "_")}`);
        schemas.push(schema);
        return { store: `${POSTGRES_URL}?schema=${schema}` };
      },
    },
    {
      name: "redis",
      up: redisUp,
      fresh: () => ({ store: `${REDIS_URL}?keyPrefix=${redisPrefix}${++count}:` }),
    },
    // The bucket and the container, with every prefix in them, go after the file (object-servers.ts).
    { name: "s3", up: s3Up, fresh: () => ({ store: s3Url(objectPrefix(tag)) }) },
    { name: "azure", up: azureUp, fresh: () => ({ store: azureUrl(objectPrefix(tag)) }) },
  ];
}

/** A saver that can be closed, as every cairn-backed one can. */
type ClosableSaver = BaseCheckpointSaver & { close?(): Promise<void> };

/**
 * The kit's initializer for savers made by `make` on fresh stores of `store`. The kit skips one
 * test for savers *named* `MemorySaver` or like the SQLite saver, so `name` must be neither.
 */
export function kitInitializer<T extends ClosableSaver>(
  name: string,
  store: KitStore,
  make: (options: CheckpointManagerOptions) => T,
): CheckpointSaverTestInitializer<T> {
  return {
    checkpointerName: name,
    createCheckpointer: () => make(store.fresh()),
    destroyCheckpointer: async (saver) => {
      await saver.close?.();
    },
  };
}
