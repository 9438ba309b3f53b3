/**
 * LangGraph's checkpoint validation kit over every store: a `CheckpointerTestInitializer` whose
 * `createCheckpointer` opens a saver on a fresh, empty store each time. The kit creates about 40
 * savers per store and requires that none sees another's data (its `list` cases list every
 * thread of the store), so each gets its own folder, database file, schema, key prefix or object
 * prefix; everything goes after the file's tests (one DROP / SCAN / `rm` per store, not one per
 * saver, to keep the runs fast). Servers that are down skip their store, as elsewhere.
 *
 * s3 and azure are in langgraph-kit-objects.ts: importing object-servers.ts starts Ceph RGW
 * and azurite, which the local stores' file does not need.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BaseCheckpointSaver } from "@langchain/langgraph-checkpoint";
import {
  type CheckpointSaverTestInitializer,
  deltaChannelHistoryTests,
  specTest,
} from "@langchain/langgraph-checkpoint-validation";
import { afterAll, beforeAll, describe } from "vitest";
import { CairnSaver } from "../../src/langgraph/index.js";
import type { CheckpointManagerOptions } from "../../src/manager/manager-options.js";
import { MemoryObjects } from "../../src/stores/object/memory-objects.js";
import { ObjectStore } from "../../src/stores/object/object-store.js";
// The kit calls vitest's APIs as globals: set for the files that import this module only.
import "./vitest-globals.js";
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
 * The stores on this machine (memory, object-memory, file, sqlite) and on local servers
 * (postgres, redis), each handing out fresh stores named after `tag`, all removed after the
 * file's tests. Registers its own `beforeAll`/`afterAll`.
 */
export function localKitStores(tag: string): KitStore[] {
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

/**
 * The kit's suites (`specTest` and the opt-in `deltaChannelHistoryTests`) against `CairnSaver`
 * on `store`, skipped when its server is down.
 */
export function describeKit(store: KitStore): void {
  describe.skipIf(!store.up)(`validation kit on ${store.name}`, () => {
    // Not "MemorySaver" nor the SQLite saver's name: the kit skips a test for those.
    const initializer = kitInitializer(`CairnSaver (${store.name})`, store, (o) => new CairnSaver(o));
    specTest(initializer);
    deltaChannelHistoryTests(initializer);
  });
}
