import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  InvalidConfigError,
  openStore,
  registeredStrategies,
  resolveStore,
} from "../../src/index.js";

const saved = process.env.CAIRN_STORE;
afterEach(() => {
  if (saved === undefined) delete process.env.CAIRN_STORE;
  else process.env.CAIRN_STORE = saved;
});

describe("store registry", () => {
  it("knows the seed's strategies", () => {
    expect(registeredStrategies()).toEqual(expect.arrayContaining(["file", "sqlite", "memory"]));
  });

  it("picks a store by strategy and normalizes the seed's snake_case options", () => {
    const r = resolveStore("file", { base_path: "/var/cairn" });
    expect(r.definition.strategy).toBe("file");
    expect(r.config).toEqual({ basePath: "/var/cairn" });
  });

  it("picks a store by URL", () => {
    expect(resolveStore("file:./x").config).toEqual({ basePath: "./x" });
    expect(resolveStore("file:///abs/dir").config).toEqual({ basePath: "/abs/dir" });
    expect(resolveStore("sqlite:./c.db").config).toEqual({ dbPath: "./c.db" });
    expect(resolveStore("sqlite:///tmp/c.db").config).toEqual({ dbPath: "/tmp/c.db" });
    expect(resolveStore("memory:").definition.strategy).toBe("memory");
    expect(resolveStore("memory:shared").config).toEqual({ name: "shared" });
  });

  it("lists every configuration problem in one error", () => {
    try {
      resolveStore("file", { basePath: 3, fsync: "yes", colour: "blue" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as InvalidConfigError).code).toBe("CAIRN_INVALID_CONFIG");
      expect((error as InvalidConfigError).problems).toHaveLength(3);
    }
    expect(() => resolveStore("gcs")).toThrow(/unknown checkpoint strategy "gcs"/);
    expect(() => resolveStore("nope://x")).toThrow(/unknown checkpoint strategy/);
    expect(() => resolveStore("sqlite", {})).toThrow(/dbPath/);
  });

  it("fails at construction, not at first write, when the configuration is wrong", () => {
    expect(() => new CheckpointManager({ strategy: "sqlite", config: { db_path: "" } })).toThrow(
      InvalidConfigError,
    );
    expect(() => new CheckpointManager({ strategy: "file", config: { basepath: "x" } })).toThrow(/basepath/);
  });

  it("defaults to CAIRN_STORE, then to the file store under .cairn/checkpoints", async () => {
    delete process.env.CAIRN_STORE;
    const fallback = resolveStore();
    expect(fallback.definition.strategy).toBe("file");
    const store = await openStore();
    expect(store.location).toBe(`file:${resolve(".cairn/checkpoints")}`);
    process.env.CAIRN_STORE = "memory:env";
    expect(resolveStore().definition.strategy).toBe("memory");
    expect(new CheckpointManager().storageStrategy).toBe("memory");
  });

  it("shares a named memory store between managers, and not an unnamed one", async () => {
    const a = new CheckpointManager({ store: "memory:shared-test" });
    const b = new CheckpointManager({ store: "memory:shared-test" });
    await a.createCheckpoint({ pipelineId: "p", stageName: "s", stageIndex: 0 });
    expect(await b.getCheckpointHistory("p")).toHaveLength(1);
    const c = new CheckpointManager({ strategy: "memory" });
    expect(await c.getCheckpointHistory("p")).toHaveLength(0);
  });

  it("refuses use after close", async () => {
    const m = new CheckpointManager({ strategy: "memory" });
    await m.close();
    await expect(m.listPipelines()).rejects.toMatchObject({ code: "CAIRN_CLOSED" });
  });
});

describe("server store URLs", () => {
  it("resolves postgres (and the seed's database alias) and redis by URL and by strategy", () => {
    expect(resolveStore("postgres://u@h:5432/db").definition.strategy).toBe("postgres");
    expect(resolveStore("postgresql://u@h/db").definition.strategy).toBe("postgres");
    expect(resolveStore("database", { connection_string: "postgres://u@h/db" }).config).toEqual({
      connectionString: "postgres://u@h/db",
    });
    expect(resolveStore("redis://127.0.0.1:6379/2").definition.strategy).toBe("redis");
    expect(resolveStore("rediss://h:6380").config).toEqual({ url: "rediss://h:6380" });
    expect(resolveStore("redis", { host: "redis.internal", port: 6379, ttl_seconds: 3600 }).config).toEqual({
      host: "redis.internal",
      port: 6379,
      ttlSeconds: 3600,
    });
    expect(() => resolveStore("redis", { ttlSeconds: -1 })).toThrow(/ttlSeconds/);
    expect(() => resolveStore("postgres", { poolSize: 0 })).toThrow(/poolSize/);
  });
});
