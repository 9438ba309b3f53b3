/**
 * What a killed import or delete leaves in the file store, and how the next setup resolves it:
 * each state between the steps of `staging.ts` is built by hand, as a SIGKILL would leave it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { FileStore } from "../../src/stores/file/file-store.js";
import { STAGING_DIR, stageRun, TRASH_DIR } from "../../src/stores/file/staging.js";
import { GuardedStore } from "../../src/stores/guarded-store.js";
import type { ImportedCheckpoint } from "../../src/stores/types.js";
import { makeRecord } from "../../src/testing/store-contract.js";

let basePath: string;
beforeEach(async () => {
  basePath = join(await mkdtemp(join(tmpdir(), "cairn-staging-")), "store");
});
afterEach(async () => {
  await rm(join(basePath, ".."), { recursive: true, force: true });
});

const NAME = "staged";
const when = (m: number) => new Date(Date.UTC(2024, 0, 1, 0, m)).toISOString();
const run = (tag: string, start: number, n: number): ImportedCheckpoint[] =>
  Array.from({ length: n }, (_, i) =>
    makeRecord("r1", i + 1, {
      pipelineName: NAME,
      timestamp: when(start + i),
      outputs: { [`s${i}`]: `"${tag}${i}"` },
    }),
  );
const ids = (c: ImportedCheckpoint[]) => c.map((x) => x.record.metadata.checkpoint_id);

async function opened(): Promise<GuardedStore> {
  const store = new GuardedStore(new FileStore({ basePath, fsync: false }));
  await store.setup();
  return store;
}

async function listed(store: GuardedStore): Promise<string[]> {
  return (await store.listCheckpoints("r1")).map((e) => (e.ok ? e.metadata.checkpoint_id : "?"));
}

/** Marks a staging folder as written by a process that is gone. */
function orphan(folder: string): void {
  const dead = Number(
    spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout,
  );
  writeFileSync(join(folder, "owner.json"), JSON.stringify({ host: hostname(), pid: dead }));
}

async function leftovers(): Promise<string[]> {
  const names = async (d: string) => (existsSync(join(basePath, d)) ? await readdir(join(basePath, d)) : []);
  return [...(await names(STAGING_DIR)), ...(await names(TRASH_DIR))];
}

it("finishes a replace killed between moving the old run aside and renaming the new one in", async () => {
  const old = run("old", 0, 2);
  const fresh = run("new", 10, 3);
  const store = await opened();
  await store.importRun("r1", old, { replace: false });
  await store.close();
  const staged = await stageRun(basePath, "r1", fresh, false);
  orphan(staged.folder);
  renameSync(join(basePath, "r1"), join(basePath, TRASH_DIR, `r1~${staged.nonce}`));

  const again = await opened();
  expect(await listed(again)).toEqual(ids(fresh));
  expect((await again.listRuns({ pipelineName: NAME })).runs).toEqual([
    { pipelineId: "r1", pipelineName: NAME, createdAt: when(10), finished: false },
  ]);
  expect(await leftovers()).toEqual([]);
  await again.close();
});

it("removes an import killed while staging and keeps the old run", async () => {
  const old = run("old", 0, 2);
  const store = await opened();
  await store.importRun("r1", old, { replace: false });
  const staged = await stageRun(basePath, "r1", run("new", 10, 3), false);
  orphan(staged.folder);
  // A live importer's staging folder (this process's) is never touched.
  const live = await stageRun(basePath, "r2", run("live", 20, 1), false);
  await store.close();

  const again = await opened();
  expect(await listed(again)).toEqual(ids(old));
  expect(await leftovers()).toEqual([live.folder.split("/").at(-1)]);
  await again.close();
});

it("finishes a delete killed after the run was moved into the trash", async () => {
  const store = await opened();
  await store.importRun("r1", run("old", 0, 2), { replace: false });
  await store.close();
  await mkdir(join(basePath, TRASH_DIR), { recursive: true });
  renameSync(join(basePath, "r1"), join(basePath, TRASH_DIR, "r1~0123456789abcdef"));

  const again = await opened();
  expect(await listed(again)).toEqual([]);
  expect((await again.listRuns({ pipelineName: NAME })).runs).toEqual([]);
  expect(await again.listPipelineIds()).toEqual([]);
  expect(await leftovers()).toEqual([]);
  await again.close();
});
