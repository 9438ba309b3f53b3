/** Unknown option names are refused everywhere an options object is taken, never ignored. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, InvalidArgumentError, InvalidConfigError } from "../../src/core/errors.js";
import { assertKnownOptions, unknownKeys, unknownOptionsProblem } from "../../src/core/options.js";
import { CheckpointManager } from "../../src/manager/checkpoint-manager.js";
import { FileStore } from "../../src/stores/file/file-store.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";
import { PostgresStore } from "../../src/stores/postgres/postgres-store.js";
import { RedisStore } from "../../src/stores/redis/redis-store.js";
import { SqliteStore } from "../../src/stores/sqlite/sqlite-store.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("unknown options", () => {
  it("names every unknown key and the accepted ones; undefined values ask for nothing", () => {
    expect(unknownKeys({ a: 1, b: undefined, c: 2, x: 3 }, ["a"])).toEqual(["c", "x"]);
    expect(unknownKeys({ base_path: 1 }, ["basePath"], (k) => k.replace("_p", "P"))).toEqual([]);
    expect(unknownOptionsProblem("the thing", { a: 1 }, ["a", "b"])).toBeUndefined();
    expect(unknownOptionsProblem("the thing", { c: 1, d: 2 }, ["a", "b"])).toBe(
      'the thing has no options "c", "d" (options: a, b)',
    );
    expect(() => assertKnownOptions("X", { y: 1 }, ["z"])).toThrow(InvalidArgumentError);
  });

  it("CheckpointManager refuses a misspelt option instead of silently dropping it", () => {
    const error = thrown(
      () =>
        new CheckpointManager({
          strategy: "memory",
          encryptoin: { key: "k" },
          retention: 3,
        } as unknown as ConstructorParameters<typeof CheckpointManager>[0]),
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(error).toMatchObject({ code: ErrorCode.InvalidArgument });
    expect((error as Error).message).toBe(
      'CheckpointManager has no options "encryptoin", "retention" (options: strategy, config, store, clock, maxRecordBytes, readOnly, compression, encryption)',
    );
    expect(() => new CheckpointManager({ strategy: "memory", clock: undefined })).not.toThrow();
  });

  it("each store's own constructor refuses unknown keys, as the registry does", async () => {
    const cases: [string, () => unknown][] = [
      ["file", () => new FileStore({ basePth: "/tmp/x" } as never)],
      ["memory", () => new MemoryStore({ nmae: "x" } as never)],
    ];
    for (const [store, make] of cases) {
      const error = thrown(make);
      expect(error, store).toBeInstanceOf(InvalidConfigError);
      expect((error as Error).message, store).toContain(`the ${store} store has no option`);
    }
    const opened: [string, () => Promise<unknown>][] = [
      ["sqlite", () => SqliteStore.open({ dbPath: join("/tmp", "x.db"), tablePrefx: "a_" })],
      ["postgres", () => PostgresStore.open({ connectionString: "postgres://localhost/x", shcema: "a" })],
      ["redis", () => RedisStore.open({ host: "localhost", keyPrefx: "a:" })],
    ];
    for (const [store, open] of opened) {
      const error = await open().catch((e: unknown) => e);
      expect(error, store).toBeInstanceOf(InvalidConfigError);
      expect((error as InvalidConfigError).problems[0], store).toMatch(
        new RegExp(`^the ${store} store has no option "(tablePrefx|shcema|keyPrefx)" \\(options: `),
      );
    }
    // Through the registry, snake_case is accepted and typos are refused the same way.
    expect(() => new CheckpointManager({ strategy: "file", config: { base_pth: "/tmp/x" } })).toThrow(
      'the file store has no option "base_pth" (options: basePath, fsync, feedRetention)',
    );
  });
});
