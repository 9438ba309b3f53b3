/** The file store's runs-by-name index (`.runs/`): its layout, its upkeep, and building it for an older store. */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeRecord } from "cairn-pipelines/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileStore } from "../../src/stores/file/file-store.js";

let root: string;
let basePath: string;
let store: FileStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "cairn-file-runs-"));
  basePath = join(root, "store");
  store = new FileStore({ basePath, fsync: false });
  await store.setup();
});

afterEach(async () => {
  await store.close();
  await rm(root, { recursive: true, force: true });
});

const minute = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();
const ls = async (...parts: string[]) => (await readdir(join(basePath, ".runs", ...parts))).sort();

/** Writes a run of `stages` checkpoints of pipeline `etl`, the first at minute `start`. */
async function writeRun(
  s: FileStore,
  pipelineId: string,
  start: number,
  { stages = 2, finish = false } = {},
): Promise<void> {
  for (let i = 1; i <= stages; i++) {
    const made = makeRecord(pipelineId, i, { pipelineName: "etl", timestamp: minute(start + i) });
    await s.putCheckpoint(made.record, made.outputs);
  }
  if (finish) {
    const done = makeRecord(pipelineId, stages + 1, {
      pipelineName: "etl",
      stage: "pipeline_complete",
      timestamp: minute(start + stages + 1),
    });
    await s.putCheckpoint(done.record, done.outputs);
  }
}

const ids = async (s: FileStore, unfinished = false) =>
  (await s.listRuns({ pipelineName: "etl", unfinished })).runs.map((r) => `${r.pipelineId}:${r.finished}`);

describe("FileStore runs index", () => {
  it("keeps one empty file per run named by its sort key, and unfinished runs apart", async () => {
    expect(existsSync(basePath)).toBe(false);
    await writeRun(store, "a1", 0, { finish: true });
    await writeRun(store, "b2", 10);
    expect(await ls()).toEqual([".ids", ".version", "etl"]);
    expect(await ls("etl", "all")).toEqual(["2024-01-01T00_01_00.000Z~a1", "2024-01-01T00_11_00.000Z~b2"]);
    expect(await ls("etl", "unfinished")).toEqual(["2024-01-01T00_11_00.000Z~b2"]);
    expect(await readFile(join(basePath, ".runs", "etl", "all", "2024-01-01T00_11_00.000Z~b2"), "utf8")).toBe(
      "",
    );
    // Not a run: run listings skip the index folder.
    expect(await store.listPipelineIds()).toEqual(["a1", "b2"]);
    await store.deleteRun("b2");
    expect(await ls("etl", "all")).toEqual(["2024-01-01T00_01_00.000Z~a1"]);
    expect(await ls("etl", "unfinished")).toEqual([]);
    expect(await ls(".ids")).toEqual(["a1.json"]);
  });

  it("answers unfinished: true from the unfinished folder alone", async () => {
    await writeRun(store, "done1", 0, { finish: true });
    await writeRun(store, "open1", 5);
    // Every finished run unreadable: were they read, the query would fail.
    await rm(join(basePath, ".runs", "etl", "all"), { recursive: true });
    await writeFile(join(basePath, ".runs", "etl", "all"), "not a folder");
    expect(await ids(store, true)).toEqual(["open1:false"]);
    await expect(store.listRuns({ pipelineName: "etl" })).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("builds the whole index once for a store an older cairn wrote, durably, marker last", async () => {
    await writeRun(store, "old1", 0, { finish: true });
    await writeRun(store, "old2", 10, { stages: 3 });
    await writeRun(store, "old3", 20);
    await rm(join(basePath, ".runs"), { recursive: true });
    const reopened = new FileStore({ basePath, fsync: true });
    await reopened.setup();
    expect(await ids(reopened)).toEqual(["old3:false", "old2:false", "old1:true"]);
    expect(await ids(reopened, true)).toEqual(["old3:false", "old2:false"]);
    expect(await readFile(join(basePath, ".runs", ".version"), "utf8")).toBe("1\n");

    // A build cut short (no marker yet) is done again; with the marker, setup reads nothing more.
    await unlink(join(basePath, ".runs", ".version"));
    await rm(join(basePath, ".runs", "etl", "unfinished"), { recursive: true });
    const again = new FileStore({ basePath, fsync: false });
    await again.setup();
    expect(await ids(again, true)).toEqual(["old3:false", "old2:false"]);
    await rm(join(basePath, ".runs", "etl", "unfinished"), { recursive: true });
    await new FileStore({ basePath, fsync: false }).setup();
    expect(await ids(again, true)).toEqual([]);
  });

  it("creates nothing on setup of a store with no checkpoint, and completes the index with the first run", async () => {
    const empty = join(root, "empty");
    await writeFile(join(root, "placeholder"), "");
    const fresh = new FileStore({ basePath: empty, fsync: false });
    await fresh.setup();
    expect(existsSync(empty)).toBe(false);
    await writeRun(fresh, "first", 0);
    expect(existsSync(join(empty, ".runs", ".version"))).toBe(true);
  });

  it("tolerates, then removes on rebuild, an entry for a run whose first checkpoint a crash kept from being written", async () => {
    await writeRun(store, "kept", 0);
    await writeRun(store, "crashed", 5, { stages: 1 });
    // The entry is made before the checkpoint is linked: a crash in between leaves this.
    const files = (await readdir(join(basePath, "crashed"))).filter((n) => n.endsWith(".json"));
    for (const f of files) await unlink(join(basePath, "crashed", f));
    expect(await ids(store)).toEqual(["crashed:false", "kept:false"]);
    expect(await store.rebuildIndexes("crashed")).toEqual(
      expect.arrayContaining([expect.stringContaining("removed the runs-index entry etl/")]),
    );
    expect(await ids(store)).toEqual(["kept:false"]);
    expect(await ls(".ids")).toEqual(["kept.json"]);
  });

  it("replaces a run's entry when its first checkpoint is written again, never listing it twice", async () => {
    await writeRun(store, "again", 0, { stages: 1 });
    const [first] = await store.listCheckpoints("again");
    await store.deleteCheckpoints("again", [first?.ok ? first.metadata.checkpoint_id : ""]);
    expect(await store.listCheckpoints("again")).toEqual([]);
    await writeRun(store, "again", 30, { stages: 1 });
    const { runs } = await store.listRuns({ pipelineName: "etl" });
    expect(runs).toEqual([
      { pipelineId: "again", pipelineName: "etl", createdAt: minute(31), finished: false },
    ]);
  });

  it("marks a run finished only once its pipeline_complete checkpoint is written, and rebuilds it from the checkpoints", async () => {
    await writeRun(store, "r1", 0, { finish: true });
    expect(await ids(store)).toEqual(["r1:true"]);
    // Restored by hand to unfinished: a rebuild reads the checkpoints and finds pipeline_complete.
    await writeFile(join(basePath, ".runs", "etl", "unfinished", "2024-01-01T00_01_00.000Z~r1"), "");
    expect(await ids(store)).toEqual(["r1:false"]);
    expect(await store.rebuildIndexes("r1")).toEqual(
      expect.arrayContaining([expect.stringContaining("etl/2024-01-01T00_01_00.000Z~r1 (finished)")]),
    );
    expect(await ids(store)).toEqual(["r1:true"]);
    expect(await store.rebuildIndexes("r1")).toEqual([]);
  });

  it("repairs a run's unreadable .ids file on rebuild, and refuses a cursor it did not give", async () => {
    await writeRun(store, "r1", 0);
    await writeFile(join(basePath, ".runs", ".ids", "r1.json"), '{"name":"../x","entry":"../../y"}');
    expect(await store.rebuildIndexes("r1")).toEqual(
      expect.arrayContaining([expect.stringContaining("replaced the unreadable")]),
    );
    expect(JSON.parse(await readFile(join(basePath, ".runs", ".ids", "r1.json"), "utf8"))).toEqual({
      name: "etl",
      entry: "2024-01-01T00_01_00.000Z~r1",
    });
    for (const cursor of ["x", "../../etc~passwd", "2024~"]) {
      await expect(store.listRuns({ pipelineName: "etl", cursor })).rejects.toMatchObject({
        code: "CAIRN_INVALID_ARGUMENT",
      });
    }
  });
});
