/**
 * Stores filled by real pipeline runs for the console's data functions: a completed run, a run
 * that failed at `load`, one that failed at `load` and was resumed to completion, and a completed
 * run whose `transform` checkpoint was then damaged in the store (its stored checksum replaced, as
 * a stray UPDATE or an edit on disk would), on each store.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import Database from "better-sqlite3";
import { expect } from "vitest";
import { type CheckpointManager, Pipeline, StageFailedError } from "../../src/index.js";
import type { ApiContext } from "../../src/ui/api/index.js";
import { POSTGRES_URL } from "../support/services.js";

/** The runs a filled store holds. */
export interface FilledRuns {
  completed: string;
  failed: string;
  resumed: string;
  corrupt: string;
  /** The damaged checkpoint of `corrupt`. */
  corruptCheckpoint: string;
}

/** A three-stage pipeline whose `load` throws while `fail.load` is set. */
export function etl(manager: CheckpointManager, fail: { load: boolean }, name = "etl"): Pipeline {
  return new Pipeline({
    name,
    checkpointEnabled: true,
    checkpointStore: manager,
    steps: [
      { name: "extract", agent: () => ({ rows: [1, 2, 3], source: "orders.csv" }) },
      { name: "transform", agent: () => ({ rows: [2, 4, 6] }) },
      {
        name: "load",
        agent: () => {
          if (fail.load) throw new Error("warehouse unreachable");
          return { loaded: 3 };
        },
      },
    ],
  });
}

async function failedRun(manager: CheckpointManager): Promise<string> {
  try {
    await etl(manager, { load: true }).execute({ resume: false });
  } catch (error) {
    expect(error).toBeInstanceOf(StageFailedError);
    return (error as StageFailedError).pipelineId;
  }
  throw new Error("the run was meant to fail");
}

/** Fills the store with the four runs. */
export async function fillStore(manager: CheckpointManager, url: string): Promise<FilledRuns> {
  const completed = (await etl(manager, { load: false }).execute({ resume: false })).pipelineId;
  const failed = await failedRun(manager);
  const resumed = await failedRun(manager);
  await etl(manager, { load: false }).execute({ runId: resumed });
  const corrupt = (await etl(manager, { load: false }).execute({ resume: false })).pipelineId;
  const history = await manager.getCheckpointHistory(corrupt);
  const target = history.find((m) => m.stageName === "transform");
  if (!target) throw new Error("no transform checkpoint");
  await damageChecksum(manager, url, corrupt, target.checkpointId);
  return { completed, failed, resumed, corrupt, corruptCheckpoint: target.checkpointId };
}

const BAD = "0".repeat(64);

/** Replaces the stored checksum of a checkpoint in the store's own data. */
async function damageChecksum(manager: CheckpointManager, url: string, runId: string, id: string) {
  if (url.startsWith("file:")) {
    const base = url.slice("file:".length);
    const name = (await readdir(join(base, runId))).find((n) => n.endsWith(`-${id}.json`));
    if (!name) throw new Error(`no file of checkpoint ${id}`);
    const path = join(base, runId, name);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace(/"checksum":"[0-9a-f]{64}"/, `"checksum":"${BAD}"`));
  } else if (url.startsWith("sqlite:")) {
    const db = new Database(url.slice("sqlite:".length));
    try {
      db.prepare("UPDATE cairn_checkpoints SET checksum = ? WHERE checkpoint_id = ?").run(BAD, id);
    } finally {
      db.close();
    }
  } else if (url.startsWith("postgres")) {
    const schema = new URL(url).searchParams.get("schema");
    const pg = new (await import("pg")).default.Client({ connectionString: POSTGRES_URL });
    await pg.connect();
    try {
      await pg.query(`UPDATE "${schema}".cairn_checkpoints SET checksum = $1 WHERE checkpoint_id = $2`, [
        BAD,
        id,
      ]);
    } finally {
      await pg.end();
    }
  } else {
    // The memory store has no outside handle: the run goes back into it whole, as stored but
    // for the damaged checksum (a store moves records, it never verifies them).
    const store = await manager.getStore();
    const records = [];
    for (const entry of await store.listCheckpoints(runId)) {
      if (!entry.ok) continue;
      const record = await store.getCheckpoint(entry.metadata.checkpoint_id);
      if (!record) continue;
      records.push(
        id === record.metadata.checkpoint_id
          ? { ...record, metadata: { ...record.metadata, checksum: BAD } }
          : record,
      );
    }
    const hashes = await store.listOutputHashes(runId);
    const texts = await store.getOutputs(runId, hashes);
    const outputs = [...texts].map(([hash, body]) => ({ hash, body }));
    await store.importRun(
      runId,
      records.map((record, i) => ({ record, outputs: i === 0 ? outputs : [] })),
      { replace: true },
    );
  }
}

/** The console's context on a manager. */
export function contextOf(manager: CheckpointManager, url: string): ApiContext {
  return { manager, storeHint: ` --store ${url}` };
}
