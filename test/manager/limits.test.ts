/**
 * Limits that agree (issue 11): one nesting limit, refused at write time and honoured by every
 * reader; import and load refuse oversized data with CAIRN_TOO_LARGE before reading it whole;
 * run exports are written a checkpoint at a time.
 */
import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../../src/debug/inspect.js";
import {
  CheckpointManager,
  InvalidArgumentError,
  MAX_DEPTH,
  TooLargeError,
  UnserializableValueError,
} from "../../src/index.js";
import { MemoryStore } from "../../src/stores/memory/memory-store.js";

let dir: string;
let managers: CheckpointManager[];
const manager = (options: ConstructorParameters<typeof CheckpointManager>[0]) => {
  const m = new CheckpointManager(options);
  managers.push(m);
  return m;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-limits-"));
  managers = [];
});
afterEach(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await rm(dir, { recursive: true, force: true });
});

const nest = (levels: number, wrap: (inner: unknown) => unknown): unknown => {
  let value: unknown = new Date(0);
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
};
const asMap = (inner: unknown) => new Map([["next", inner]]);
const asObject = (inner: unknown) => ({ next: inner });

describe("the nesting limit", () => {
  it.each([
    ["objects", asObject],
    ["Maps", asMap],
  ])(
    "a value of %s nested MAX_DEPTH deep round-trips through write, load, inspect, export and import",
    async (_, wrap) => {
      const source = manager({ strategy: "file", config: { basePath: join(dir, "files") } });
      const deep = nest(MAX_DEPTH, wrap);
      // stateData is itself the first level.
      const state = { next: nest(MAX_DEPTH - 1, wrap) };
      const id = await source.createCheckpoint({
        pipelineId: "deep",
        stageName: "s",
        stageIndex: 0,
        stateData: state,
        agentOutputs: { s: deep },
      });
      const loaded = await source.loadCheckpoint(id);
      expect(loaded.agentOutputs.s).toStrictEqual(deep);
      expect(loaded.stateData).toStrictEqual(state);
      const inspected = await inspectCheckpoint(source, id);
      expect(inspected.readable).toBe(true);
      expect(inspected.validation.valid).toBe(true);

      await source.exportCheckpoint(id, join(dir, "one.json"));
      await source.exportPipeline("deep", join(dir, "run.json"));
      const one = manager({ store: new MemoryStore() });
      await one.importCheckpoint(join(dir, "one.json"));
      expect((await one.loadCheckpoint(id)).agentOutputs.s).toStrictEqual(deep);
      const run = manager({ store: `sqlite:${join(dir, "cairn.db")}` });
      await run.importPipeline(join(dir, "run.json"));
      expect((await run.loadCheckpoint(id)).stateData).toStrictEqual(state);
    },
  );

  it("one level deeper is refused at write time, naming the path, and nothing is written", async () => {
    const m = manager({ store: new MemoryStore() });
    const write = (agentOutputs: Record<string, unknown>) =>
      m.createCheckpoint({ pipelineId: "deep", stageName: "s", stageIndex: 0, agentOutputs });
    await expect(write({ s: nest(MAX_DEPTH + 1, asMap) })).rejects.toThrow(UnserializableValueError);
    const error = await write({ s: nest(MAX_DEPTH + 1, asObject) }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "CAIRN_UNSERIALIZABLE",
      path: `agentOutputs.s${".next".repeat(MAX_DEPTH)}`,
    });
    await expect(m.listRun("deep")).rejects.toThrow(/No pipeline run/);
  });
});

describe("size limits on import", () => {
  async function exportOne(): Promise<{ path: string; id: string }> {
    const m = manager({ store: new MemoryStore() });
    const id = await m.createCheckpoint({
      pipelineId: "etl",
      stageName: "s",
      stageIndex: 0,
      agentOutputs: { s: "x".repeat(10_000) },
    });
    const path = join(dir, "one.json");
    await m.exportCheckpoint(id, path);
    return { path, id };
  }

  it("refuses a file over the default limit before reading it", async () => {
    // A sparse 2 GiB file: reading it whole would take gigabytes; the size alone refuses it.
    const path = join(dir, "huge.json");
    const handle = await open(path, "w");
    await handle.truncate(2 * 1024 ** 3);
    await handle.close();
    const m = manager({ store: new MemoryStore() });
    const error = await m.importPipeline(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooLargeError);
    expect(error).toMatchObject({ code: "CAIRN_TOO_LARGE", size: 2 * 1024 ** 3, limit: 1024 ** 3 });
    await expect(m.importCheckpoint(path)).rejects.toThrow(TooLargeError);
  });

  it("honours maxImportBytes for checkpoint and run imports, and checks its value", async () => {
    const { path, id } = await exportOne();
    const { size } = await (await open(path)).stat().finally(() => undefined);
    const m = manager({ store: new MemoryStore() });
    await expect(m.importCheckpoint(path, { maxImportBytes: size - 1 })).rejects.toMatchObject({
      code: "CAIRN_TOO_LARGE",
      size,
      limit: size - 1,
    });
    await expect(m.importPipeline(path, { maxImportBytes: size - 1 })).rejects.toThrow(TooLargeError);
    await expect(m.importPipeline(path, { maxImportBytes: 0 })).rejects.toThrow(InvalidArgumentError);
    await expect(m.listRun("etl")).rejects.toThrow(/No pipeline run/);
    expect(await m.importCheckpoint(path, { maxImportBytes: size })).toBe(id);
  });
});

describe("size limits on load", () => {
  it("refuses a checkpoint over maxRecordBytes with CAIRN_TOO_LARGE, and loads one within it", async () => {
    const store = new MemoryStore();
    const writer = manager({ store });
    const id = await writer.createCheckpoint({
      pipelineId: "etl",
      stageName: "s",
      stageIndex: 0,
      agentOutputs: { s: "x".repeat(100_000) },
      status: "completed",
    });
    const small = manager({ store, maxRecordBytes: 50_000 });
    const error = await small.loadCheckpoint(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooLargeError);
    expect((error as TooLargeError).size).toBeGreaterThan(100_000);
    await expect(small.loadLatestCheckpoint("etl")).rejects.toThrow(TooLargeError);
    const roomy = manager({ store, maxRecordBytes: 200_000 });
    expect((await roomy.loadCheckpoint(id)).agentOutputs.s).toHaveLength(100_000);
    expect(() => manager({ store, maxRecordBytes: -1 })).toThrow(InvalidArgumentError);
  });

  it("types a store read of a value longer than any string as CAIRN_TOO_LARGE, with the cause", async () => {
    const store = new MemoryStore();
    const id = await manager({ store }).createCheckpoint({
      pipelineId: "etl",
      stageName: "s",
      stageIndex: 0,
    });
    const tooLong = new RangeError("Invalid string length");
    store.getCheckpoint = async () => {
      throw tooLong;
    };
    const m = manager({ store });
    const error = await m.loadCheckpoint(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooLargeError);
    expect((error as TooLargeError).cause).toBe(tooLong);
  });
});

describe("run exports written a checkpoint at a time", () => {
  it("exports and imports 50 checkpoints of 1 MB outputs with their content", async () => {
    const source = manager({ strategy: "file", config: { basePath: join(dir, "files") } });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids.push(
        await source.createCheckpoint({
          pipelineId: "big",
          stageName: `s${i}`,
          stageIndex: i,
          stateData: { i },
          agentOutputs: { [`s${i}`]: `${i}:`.padEnd(1024 * 1024, String.fromCharCode(97 + (i % 26))) },
        }),
      );
    }
    const path = join(dir, "run.json");
    const report = await source.exportPipeline("big", path);
    expect(report.checkpointIds).toEqual(ids);
    const text = await readFile(path, "utf8");
    // One line for the head, one per checkpoint, one for the tail.
    expect(text.split("\n").filter((l) => l !== "")).toHaveLength(52);
    const target = manager({ store: `sqlite:${join(dir, "cairn.db")}` });
    const imported = await target.importPipeline(path);
    expect(imported.checkpointIds).toEqual(ids);
    for (const [i, id] of ids.entries()) {
      const [a, b] = await Promise.all([source.loadCheckpoint(id), target.loadCheckpoint(id)]);
      expect(b.agentOutputs).toStrictEqual(a.agentOutputs);
      expect(b.stateData).toEqual({ i });
    }
  });

  it("a refused export leaves neither the file nor a temp file", async () => {
    const m = manager({ store: new MemoryStore() });
    await expect(m.exportPipeline("missing", join(dir, "out", "run.json"))).rejects.toThrow();
    expect(await readdir(join(dir, "out")).catch(() => [])).toEqual([]);
  });

  it("imports run exports laid out otherwise: by hand, and as earlier cairn wrote them", async () => {
    const source = manager({ store: new MemoryStore() });
    for (let i = 0; i < 3; i++)
      await source.createCheckpoint({
        pipelineId: "etl",
        stageName: `s${i}`,
        stageIndex: i,
        stateData: { i },
      });
    const path = join(dir, "run.json");
    await source.exportPipeline("etl", path);
    const parsed = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    const { checkpoints, skipped_corrupt, ...head } = parsed;
    const layouts = {
      pretty: JSON.stringify(parsed, null, 2),
      oneLine: JSON.stringify(parsed),
      // Before streaming, skipped_corrupt came ahead of the checkpoints and the file ended in "]}".
      earlier: `${JSON.stringify({ ...head, skipped_corrupt }).slice(0, -1)},"checkpoints":[\n${(checkpoints as unknown[]).map((c) => JSON.stringify(c)).join(",\n")}\n]}\n`,
    };
    for (const [name, text] of Object.entries(layouts)) {
      const file = join(dir, `${name}.json`);
      await writeFile(file, text);
      const target = manager({ store: new MemoryStore() });
      const report = await target.importPipeline(file);
      expect(report.checkpointIds, name).toHaveLength(3);
    }
  });
});
