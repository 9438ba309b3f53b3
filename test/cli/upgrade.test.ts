/**
 * `cairn upgrade` as users run it: a summary (or `--json`), `--dry-run` writing nothing, a
 * second run doing nothing, exit codes for a corrupt tip (4), a run in use (1), a missing run
 * (3), a bad flag combination (2) and an encrypted run without its key (7).
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, FORMAT_VERSION, Pipeline } from "../../src/index.js";
import { runCairn } from "../support/cli.js";
import { rewriteAsFormat1 } from "../support/old-format.js";
import { snapshot } from "../support/too-new.js";

let dir: string;
let basePath: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-upgrade-cli-"));
  basePath = join(dir, "store");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (args: string[]) => runCairn([...args, "--base-path", basePath], { cwd: dir });

type Options = Omit<ConstructorParameters<typeof CheckpointManager>[0] & object, "store">;

/** A finished run of `demo`, rewritten in format 1; returns its id. */
async function oldRun(options: Options = {}, rewrite: { corruptTip?: boolean } = {}): Promise<string> {
  const manager = new CheckpointManager({ ...options, store: `file:${basePath}` });
  try {
    const pipeline = new Pipeline({
      name: "demo",
      checkpointEnabled: true,
      checkpointStore: manager,
      steps: [
        { name: "a", agent: () => ({ a: 1 }) },
        { name: "b", agent: () => ({ b: 2 }) },
      ],
    });
    const { pipelineId } = await pipeline.execute({ resume: false });
    await rewriteAsFormat1(manager, pipelineId, rewrite);
    return pipelineId;
  } finally {
    await manager.close();
  }
}

describe.skipIf(FORMAT_VERSION < 2)("cairn upgrade", () => {
  it("dry run, upgrade, then nothing left: summaries, --json and exit 0", async () => {
    const first = await oldRun();
    const second = await oldRun();
    const before = await snapshot({ kind: "file", basePath });
    const dry = await cairn(["upgrade", "--all", "--dry-run"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`Would upgrade run ${first}`);
    expect(dry.stdout).toContain(`Would upgrade run ${second}`);
    expect(dry.stdout).toContain("2 runs looked at: 2 would be upgraded, 0 already in format");
    expect(dry.stdout).toContain("Dry run: nothing was written.");
    expect(await snapshot({ kind: "file", basePath })).toEqual(before);

    const one = await cairn(["upgrade", "--pipeline-id", first, "--json"]);
    expect(one.code, one.stderr).toBe(0);
    const report = JSON.parse(one.stdout);
    expect(report).toMatchObject({ dryRun: false, formatVersion: FORMAT_VERSION, runs: 1, skipped: [] });
    expect(report.upgraded).toEqual([
      expect.objectContaining({ pipelineId: first, fromVersion: 1, checkpointId: expect.any(String) }),
    ]);

    const all = await cairn(["upgrade", "--all"]);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toContain(`Upgraded run ${second}:`);
    expect(all.stdout).toContain(
      `2 runs looked at: 1 upgraded, 1 already in format ${FORMAT_VERSION}, 0 skipped`,
    );
    const validate = await cairn(["validate", "--all"]);
    expect(validate.code, validate.stdout).toBe(0);

    const after = await snapshot({ kind: "file", basePath });
    const again = await cairn(["upgrade", "--all", "--json"]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ upgraded: [], skipped: [], runs: 2 });
    expect(await snapshot({ kind: "file", basePath })).toEqual(after);
  });

  it("upgrades a run exported by cairn of format 1 (test/fixtures/run-v1.1.export)", async () => {
    const fixture = join(import.meta.dirname, "..", "fixtures", "run-v1.1.export");
    expect((await cairn(["import", "--input", fixture])).code).toBe(0);
    const done = await cairn(["upgrade", "--pipeline-id", "etl_v11", "--json"]);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout).upgraded).toEqual([
      expect.objectContaining({ pipelineId: "etl_v11", fromVersion: 1, checkpointId: expect.any(String) }),
    ]);
    const listed = await cairn(["list", "--pipeline-id", "etl_v11", "--json"]);
    expect(JSON.parse(listed.stdout)).toHaveLength(4);
    const validated = await cairn(["validate", "--pipeline-id", "etl_v11"]);
    expect(validated.code, validated.stdout).toBe(0);
  });

  it("exit codes: corrupt tip 4, in use 1, missing run 3, bad flags 2", async () => {
    const broken = await oldRun({}, { corruptTip: true });
    const corrupt = await cairn(["upgrade", "--all"]);
    expect(corrupt.code).toBe(4);
    expect(corrupt.stdout).toContain(`Skipped run ${broken}: its newest checkpoint`);
    expect(corrupt.stdout).toContain("fails verification");
    await rm(basePath, { recursive: true });

    const busy = await oldRun();
    const manager = new CheckpointManager({ store: `file:${basePath}` });
    try {
      const store = await manager.getStore();
      const attempt = await store.acquireLease(busy, "someone-else", 60_000);
      expect(attempt.acquired).toBe(true);
      const inUse = await cairn(["upgrade", "--pipeline-id", busy]);
      expect(inUse.code).toBe(1);
      expect(inUse.stdout).toContain(`Skipped run ${busy}: in use by someone-else`);
      if (attempt.acquired) await store.releaseLease(attempt.lease);
    } finally {
      await manager.close();
    }
    expect((await cairn(["upgrade", "--pipeline-id", "nope"])).code).toBe(3);
    expect((await cairn(["upgrade"])).code).toBe(2);
    expect((await cairn(["upgrade", "--all", "--pipeline-id", busy])).code).toBe(2);
  });

  it("an encrypted run needs its key: exit 7 without it, upgraded with it", async () => {
    const key = randomBytes(32);
    const id = await oldRun({ encryption: { keys: { k1: key }, activeKeyId: "k1" } });
    const before = await snapshot({ kind: "file", basePath });
    const locked = await cairn(["upgrade", "--all"]);
    expect(locked.code, locked.stderr).toBe(7);
    expect(locked.stderr).toContain("CAIRN_KEY_MISSING");
    expect(await snapshot({ kind: "file", basePath })).toEqual(before);
    const keyFile = join(dir, "k.keys");
    const keys = { cairn_key_file: 1, active_key_id: "k1", keys: { k1: key.toString("base64") } };
    await writeFile(keyFile, `${JSON.stringify(keys)}\n`, { mode: 0o600 });
    const done = await cairn(["upgrade", "--all", "--key-file", keyFile]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`Upgraded run ${id}`);
    expect((await cairn(["validate", "--pipeline-id", id, "--key-file", keyFile])).code).toBe(0);
  });
});
