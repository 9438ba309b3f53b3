/**
 * SIGKILL of the real `cairn` CLI in the middle of `export`, `import`, `import --overwrite` and
 * `cleanup`: no reader ever sees a half-written export, a half-imported run or a half-deleted
 * run, and running the command again finishes the job. The kill comes at a point the test
 * observes (a temp file appearing, store files or the SQLite WAL growing), never after a delay.
 * Runs the built CLI (`dist/`, built by the global setup).
 */
import { type Dirent, existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { FileStore } from "../../src/stores/file/file-store.js";
import { runCairn } from "../support/cli.js";
import { killWhen, start } from "../support/kill.js";

const NAME = "bulk";
const RUN = "bulk-run";
/** Checkpoints of the big run, each with one new output of about OUTPUT_BYTES. */
const CHECKPOINTS = 40;
const OUTPUT_BYTES = 600_000;
const TEST_TIMEOUT = 120_000;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sigkill-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface StoreCase {
  name: string;
  /** The store flags of the CLI, for a store named `tag` inside the test's folder. */
  flags(tag: string): string[];
  /** The store URL of the same store, for an in-process manager. */
  url(tag: string): string;
  /** A number that grows while the store is being written (files, or bytes in the WAL). */
  progress(tag: string): number;
  /** How much `progress` must grow before the kill: a good part of the run, not all of it. */
  midway: number;
  /** Files the store's own bookkeeping left that a finished command must have removed. */
  leftovers(tag: string): string[];
}

/** Every file under `root`, recursively (none when it does not exist). */
function filesUnder(root: string): string[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch {
    // Absent, or removed while being read.
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(join(root, e.name)) : [join(root, e.name)]));
}

const FILE: StoreCase = {
  name: "file",
  flags: (tag) => ["--base-path", join(dir, tag)],
  url: (tag) => `file:${join(dir, tag)}`,
  progress: (tag) => filesUnder(join(dir, tag)).filter((f) => !f.includes(".leases")).length,
  midway: CHECKPOINTS / 2,
  leftovers: (tag) => [".staging", ".trash"].flatMap((d) => filesUnder(join(dir, tag, d))),
};

const SQLITE: StoreCase = {
  name: "sqlite",
  flags: (tag) => ["--db-path", join(dir, `${tag}.db`)],
  url: (tag) => `sqlite:${join(dir, `${tag}.db`)}`,
  progress: (tag) => {
    try {
      return statSync(join(dir, `${tag}.db-wal`)).size;
    } catch {
      return 0;
    }
  },
  // Below the WAL size SQLite checkpoints at (1000 pages), which one commit at a time never passes.
  midway: 3_000_000,
  leftovers: () => [],
};

/** Writes the big run (finished) into a store, in process. */
async function makeRun(url: string): Promise<void> {
  const manager = new CheckpointManager({ store: url });
  const stages = Array.from({ length: CHECKPOINTS - 1 }, (_, i) => `s${i}`);
  for (const [i, stage] of [...stages, PIPELINE_COMPLETE_STAGE].entries()) {
    await manager.createCheckpoint({
      pipelineId: RUN,
      pipelineName: NAME,
      stageName: stage,
      stageIndex: i,
      stateData: { i },
      completedStages: stages.slice(0, i + 1),
      pendingStages: stages.slice(i + 1),
      agentOutputs: stage === PIPELINE_COMPLETE_STAGE ? {} : { [stage]: `${i}`.padEnd(OUTPUT_BYTES, "x") },
      status: "completed",
    });
  }
  await manager.close();
}

/** How many checkpoints of the run a reader sees, and what the runs-by-name index says. */
async function readerView(store: StoreCase, tag: string) {
  const manager = new CheckpointManager({ store: store.url(tag) });
  try {
    const checkpoints = (await manager.getCheckpointHistory(RUN)).length;
    const runs = (await manager.listRuns(NAME)).runs.map((r) => r.pipelineId);
    const unfinished = await manager.findUnfinishedRun(NAME);
    return { checkpoints, runs, unfinished };
  } finally {
    await manager.close();
  }
}

const COMPLETE = { checkpoints: CHECKPOINTS, runs: [RUN], unfinished: undefined };
const ABSENT = { checkpoints: 0, runs: [], unfinished: undefined };

async function expectValid(store: StoreCase, tag: string): Promise<void> {
  const result = await runCairn(["validate", "--pipeline-id", RUN, ...store.flags(tag)], { cwd: dir });
  expect(result.code, result.stderr).toBe(0);
}

describe.each([FILE, SQLITE])("$name store", (store) => {
  it(
    "export: a killed export leaves no export file or a whole one, and the next export removes its temp file",
    async () => {
      await makeRun(store.url("src"));
      const out = join(dir, "exports");
      const target = join(out, "run.json");
      const args = ["export", "--pipeline-id", RUN, "--output", target, ...store.flags("src")];
      mkdirSync(out);
      const temps = () => readdirSync(out).filter((n) => n.startsWith(".run.json.") && n.endsWith(".tmp"));
      const killed = await killWhen(start(args), () => temps().length > 0, [out]);
      expect(killed).toBe(true);
      expect(existsSync(target)).toBe(false);
      expect(temps()).toHaveLength(1);

      const again = await runCairn(args, { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
      expect(readdirSync(out)).toEqual(["run.json"]);
      const imported = await runCairn(["import", "--input", target, ...store.flags("dst")], { cwd: dir });
      expect(imported.code, imported.stderr).toBe(0);
      expect(await readerView(store, "dst")).toEqual(COMPLETE);
    },
    TEST_TIMEOUT,
  );

  it(
    "import: a killed import leaves no trace of the run, and importing again stores it whole",
    async () => {
      await makeRun(store.url("src"));
      const file = join(dir, "run.json");
      await runCairn(["export", "--pipeline-id", RUN, "--output", file, ...store.flags("src")], { cwd: dir });
      const args = ["import", "--input", file, ...store.flags("dst")];
      const child = start(args);
      const killed = await killWhen(child, () => store.progress("dst") >= store.midway);
      expect(killed).toBe(true);
      if (store.name === "file") {
        // Before any setup could tidy up: the raw run folder is absent, not half-written.
        const raw = new FileStore({ basePath: join(dir, "dst") });
        expect(await raw.listCheckpoints(RUN)).toEqual([]);
        expect((await raw.listRuns({ pipelineName: NAME })).runs).toEqual([]);
      }
      // Nothing half-imported: execute() finds no unfinished run to resume.
      expect(await readerView(store, "dst")).toEqual(ABSENT);

      const again = await runCairn(args, { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
      expect(await readerView(store, "dst")).toEqual(COMPLETE);
      await expectValid(store, "dst");
      expect(store.leftovers("dst")).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "import --overwrite: a killed replace keeps the old run whole, and overwriting again finishes",
    async () => {
      await makeRun(store.url("dst"));
      const file = join(dir, "run.json");
      await runCairn(["export", "--pipeline-id", RUN, "--output", file, ...store.flags("dst")], { cwd: dir });
      const before = store.progress("dst");
      const args = ["import", "--input", file, "--overwrite", ...store.flags("dst")];
      const killed = await killWhen(
        start(args),
        () =>
          Math.abs(store.progress("dst") - before) >= store.midway ||
          readdirIfAny(store, "dst") < CHECKPOINTS,
      );
      expect(killed).toBe(true);
      expect(await readerView(store, "dst")).toEqual(COMPLETE);
      await expectValid(store, "dst");

      const again = await runCairn(args, { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain(`replacing ${CHECKPOINTS}`);
      expect(await readerView(store, "dst")).toEqual(COMPLETE);
      await expectValid(store, "dst");
      expect(store.leftovers("dst")).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    "cleanup --force: a killed delete leaves the run whole or gone, and cleaning up again finishes",
    async () => {
      await makeRun(store.url("dst"));
      const before = store.progress("dst");
      const args = ["cleanup", "--pipeline-id", RUN, "--force", ...store.flags("dst")];
      const runDir = join(dir, "dst", RUN);
      const killed = await killWhen(
        start(args),
        () =>
          store.name === "file"
            ? existsSync(join(dir, "dst", ".trash")) || readdirIfAny(store, "dst") < CHECKPOINTS
            : store.progress("dst") - before > 0,
        store.name === "file" ? [runDir] : [],
      );
      const view = await readerView(store, "dst");
      expect([COMPLETE, ABSENT]).toContainEqual(view);
      // Only the SQLite delete may have committed before the kill landed.
      if (store.name === "file") expect(killed).toBe(true);

      const again = await runCairn(args, { cwd: dir });
      // A run the kill had already deleted whole is reported as not found (exit 3).
      expect(again.code, again.stderr).toBe(view.checkpoints === 0 ? 3 : 0);
      expect(await readerView(store, "dst")).toEqual(ABSENT);
      expect(store.leftovers("dst")).toEqual([]);
      if (store.name === "file") expect(existsSync(runDir)).toBe(false);
    },
    TEST_TIMEOUT,
  );
});

/** The checkpoint files in the file store's run folder (the SQLite case: always all of them). */
function readdirIfAny(store: StoreCase, tag: string): number {
  if (store.name !== "file") return CHECKPOINTS;
  try {
    return readdirSync(join(dir, tag, RUN)).filter((n) => n.endsWith(".json")).length;
  } catch {
    return CHECKPOINTS;
  }
}
