/**
 * Store layout versions: the file store's `.cairn-layout.json` and Redis's `{prefix}layout`
 * are written by the first write, never taken for a run, and a newer one is refused
 * (`FormatTooNewError`, "store layout"; exit 2 in the CLI) before anything is read or written.
 */
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, FormatTooNewError } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { deleteKeyPrefixes, REDIS_URL, redisUp, uniqueName } from "../support/services.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-layout-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Config = ConstructorParameters<typeof CheckpointManager>[0];

async function write(config: Config, pipelineId = "run-a"): Promise<string> {
  const manager = new CheckpointManager(config);
  try {
    return await manager.createCheckpoint({
      pipelineId,
      stageName: "extract",
      stageIndex: 0,
      stateData: { n: 1 },
      completedStages: ["extract"],
      pendingStages: [],
    });
  } finally {
    await manager.close();
  }
}

async function refused(config: Config, id: string): Promise<unknown> {
  const manager = new CheckpointManager(config);
  try {
    return await manager.loadCheckpoint(id).catch((e: unknown) => e);
  } finally {
    await manager.close();
  }
}

describe("file store layout", () => {
  it("is written by the first write, never listed as a run, and a newer one is refused", async () => {
    const basePath = join(dir, "store");
    const config: Config = { strategy: "file", config: { basePath } };
    const id = await write(config);
    const layoutPath = join(basePath, ".cairn-layout.json");
    expect(JSON.parse(await readFile(layoutPath, "utf8"))).toEqual({ layout: 2 });
    const manager = new CheckpointManager(config);
    try {
      expect((await manager.listPipelines()).map((p) => p.pipelineId)).toEqual(["run-a"]);
    } finally {
      await manager.close();
    }
    // A second writer keeps the file as it is.
    const before = (await stat(layoutPath)).mtimeMs;
    await write(config, "run-b");
    expect((await stat(layoutPath)).mtimeMs).toBe(before);

    await writeFile(layoutPath, '{"layout":3}\n');
    const error = await refused(config, id);
    expect(error).toBeInstanceOf(FormatTooNewError);
    expect(error).toMatchObject({ subject: "store layout", found: 3, supported: 2 });
    const result = await runCairn(["list", "--base-path", basePath], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("store layout format version 3 is newer than this cairn supports (2)");
    // A writer refuses too, and leaves the newer layout as it is.
    const writer = await runCairn(["migrate", "--base-path", basePath], { cwd: dir });
    expect(writer.code).toBe(2);
    expect(await readFile(layoutPath, "utf8")).toBe('{"layout":3}\n');
  });

  it("a store an older cairn wrote (no layout file) is read, and gets one on its next write", async () => {
    const basePath = join(dir, "store");
    const config: Config = { strategy: "file", config: { basePath } };
    const id = await write(config);
    await rm(join(basePath, ".cairn-layout.json"));
    const manager = new CheckpointManager(config);
    try {
      expect((await manager.loadCheckpoint(id)).metadata.checkpointId).toBe(id);
    } finally {
      await manager.close();
    }
    expect(await readdir(basePath)).not.toContain(".cairn-layout.json");
    await write(config, "run-b");
    expect(JSON.parse(await readFile(join(basePath, ".cairn-layout.json"), "utf8"))).toEqual({ layout: 2 });
  });

  it("a layout-1 store (no change feed) is read as is and raised to 2 by the next write", async () => {
    const basePath = join(dir, "store");
    const config: Config = { strategy: "file", config: { basePath } };
    const id = await write(config);
    const layoutPath = join(basePath, ".cairn-layout.json");
    await writeFile(layoutPath, '{"layout":1}\n');
    const manager = new CheckpointManager(config);
    try {
      expect((await manager.loadCheckpoint(id)).metadata.checkpointId).toBe(id);
    } finally {
      await manager.close();
    }
    expect(await readFile(layoutPath, "utf8")).toBe('{"layout":1}\n');
    // A cairn that knows only layout 1 would write without the feed: from now on it must refuse.
    await write(config, "run-b");
    expect(JSON.parse(await readFile(layoutPath, "utf8"))).toEqual({ layout: 2 });
  });

  it("a layout file that holds no version is corrupt (exit 4), not too new", async () => {
    const basePath = join(dir, "store");
    await write({ strategy: "file", config: { basePath } });
    await writeFile(join(basePath, ".cairn-layout.json"), "banana");
    const result = await runCairn(["list", "--base-path", basePath], { cwd: dir });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain("holds no layout version");
  });
});

describe.skipIf(!redisUp)("redis store layout", () => {
  let prefix: string;
  let raw: Redis;
  beforeEach(() => {
    prefix = `${uniqueName("cairn-layout")}:`;
    raw = new Redis(REDIS_URL);
  });
  afterEach(async () => {
    await deleteKeyPrefixes(prefix);
    await raw.quit();
  });

  it("is set by a writer, kept without TTL, and a newer one is refused before any read or write", async () => {
    const config: Config = {
      strategy: "redis",
      config: { url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 60 },
    };
    const id = await write(config);
    expect(await raw.get(`${prefix}layout`)).toBe("2");
    expect(await raw.pttl(`${prefix}layout`)).toBe(-1);
    const manager = new CheckpointManager(config);
    try {
      expect((await manager.listPipelines()).map((p) => p.pipelineId)).toEqual(["run-a"]);
    } finally {
      await manager.close();
    }

    await raw.set(`${prefix}layout`, "3");
    const error = await refused(config, id);
    expect(error).toBeInstanceOf(FormatTooNewError);
    expect(error).toMatchObject({ subject: "store layout", found: 3, supported: 2 });
    const store = `${REDIS_URL}?keyPrefix=${prefix}`;
    for (const args of [["list"], ["migrate"], ["inspect", "--checkpoint-id", id]]) {
      const result = await runCairn([...args, "--store", store], { cwd: dir });
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toContain(`${prefix}layout: store layout format version 3 is newer`);
    }
    expect(await raw.get(`${prefix}layout`)).toBe("3");
  });
});
