/**
 * SIGKILL of `cairn rekey` half-way through many runs: every run is left wrapped under the old
 * key or the new one (each is one compare-and-set), running it again re-wraps only the rest, and
 * with the old key removed everything reads. The kill comes when the test sees re-wrapped key
 * records in the database, never after a delay. Runs the built CLI.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { writeKeyFile } from "../../src/transforms/key-file.js";
import { runCairn } from "../support/cli.js";
import { killWhen, start } from "../support/kill.js";

const RUNS = 600;
const TEST_TIMEOUT = 120_000;
const k1 = randomBytes(32).toString("base64");
const k2 = randomBytes(32).toString("base64");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-sigkill-rekey-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it(
  "a killed rekey leaves every run readable, and running it again finishes the rotation",
  async () => {
    const db = join(dir, "c.db");
    const url = `sqlite:${db}`;
    const writer = new CheckpointManager({ store: url, encryption: { keys: { k1 }, activeKeyId: "k1" } });
    const runs = Array.from({ length: RUNS }, (_, i) => `run-${String(i).padStart(4, "0")}`);
    try {
      for (const run of runs)
        await writer.createCheckpoint({
          pipelineId: run,
          stageName: "only",
          stageIndex: 0,
          stateData: { run },
        });
    } finally {
      await writer.close();
    }
    const both = join(dir, "both.keys");
    await writeKeyFile(both, { activeKeyId: "k2", keys: { k1, k2 } });

    // Read while the CLI writes: WAL readers never block the writer.
    const reader = new Database(db, { readonly: true });
    const underK2 = reader.prepare(
      `SELECT count(*) AS n FROM cairn_run_keys WHERE record LIKE '%"kek":"k2"%'`,
    );
    const done = () => (underK2.get() as { n: number }).n;
    let seen = 0;
    try {
      const child = start(["rekey", "--store", url, "--key-file", both]);
      const killed = await killWhen(child, () => {
        seen = done();
        return seen >= RUNS / 10;
      });
      expect(killed).toBe(true);
      seen = done();
    } finally {
      reader.close();
    }
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(RUNS);

    // Mid-rotation, a ring with both keys reads every run.
    const mid = new CheckpointManager({ store: url, encryption: { keys: { k1, k2 }, activeKeyId: "k2" } });
    try {
      for (const run of runs) expect((await mid.loadLatestCheckpoint(run))?.stateData).toEqual({ run });
    } finally {
      await mid.close();
    }

    const again = await runCairn(["rekey", "--store", url, "--key-file", both, "--json"], { cwd: dir });
    expect(again.code).toBe(0);
    // The commit in flight at the kill may be durable yet not seen by the reader before recovery.
    const report = JSON.parse(again.stdout) as Record<string, number | string>;
    expect(report).toMatchObject({ toKeyId: "k2", runs: RUNS, plaintext: 0 });
    expect(report.alreadyCurrent).toBeGreaterThanOrEqual(seen);
    expect(report.alreadyCurrent).toBeLessThanOrEqual(seen + 1);
    expect(report.rewrapped).toBe(RUNS - (report.alreadyCurrent as number));

    const only = join(dir, "k2.keys");
    await writeKeyFile(only, { activeKeyId: "k2", keys: { k2 } });
    const validate = await runCairn(["validate", "--store", url, "--all", "--key-file", only], { cwd: dir });
    expect(validate.code).toBe(0);
    const after = new CheckpointManager({ store: url, encryption: { keys: { k2 }, activeKeyId: "k2" } });
    try {
      for (const run of runs) expect((await after.loadLatestCheckpoint(run))?.stateData).toEqual({ run });
    } finally {
      await after.close();
    }
  },
  TEST_TIMEOUT,
);
