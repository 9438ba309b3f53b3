import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, type CheckpointManagerOptions } from "../../src/index.js";
import { type CliResult, runCairn } from "../support/cli.js";
import { checkpointFile as fileOf } from "../support/file-store.js";

function cairn(args: string[]): Promise<CliResult> {
  return runCairn(args, { cwd: dir });
}

let dir: string;
let basePath: string;
let dbPath: string;
let backupDir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-repair-"));
  basePath = join(dir, "checkpoints");
  dbPath = join(dir, "cairn.db");
  backupDir = join(dir, "backups");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const STAGES = ["extract", "transform", "load"];

/** A three-stage run, one checkpoint per stage; ids oldest first. */
async function makeRun(options: CheckpointManagerOptions, provenance = true): Promise<string[]> {
  const manager = new CheckpointManager(options);
  try {
    const ids: string[] = [];
    for (let i = 0; i < STAGES.length; i++) {
      const done = STAGES.slice(0, i + 1);
      ids.push(
        await manager.createCheckpoint({
          pipelineId: "etl",
          stageName: STAGES[i] as string,
          stageIndex: i,
          stateData: { total: (i + 1) * 100, source: "orders.csv" },
          completedStages: done,
          pendingStages: STAGES.slice(i + 1),
          agentOutputs: Object.fromEntries(done.map((s) => [s, { rows: [s] }])),
          provenanceHashes: provenance ? Object.fromEntries(done.map((s) => [s, `p-${s}`])) : {},
          status: "completed",
        }),
      );
    }
    return ids;
  } finally {
    await manager.close();
  }
}

async function withManager<T>(options: CheckpointManagerOptions, work: (m: CheckpointManager) => Promise<T>) {
  const manager = new CheckpointManager(options);
  try {
    return await work(manager);
  } finally {
    await manager.close();
  }
}

function checkpointFile(checkpointId: string): Promise<string> {
  return fileOf(basePath, "etl", checkpointId);
}

/** A function: `basePath` is set per test, after this module loads. */
const fileStore = () => ({ strategy: "file", config: { basePath } }) as const;
const fileArgs = () => ["--base-path", basePath, "--backup-dir", backupDir];
const backups = async () => readdir(backupDir).catch(() => [] as string[]);

describe("cairn repair (file store)", () => {
  it("quarantines a hand-edited checkpoint: still invalid, backed up, resume uses the previous one", async () => {
    const [, transform, load] = (await makeRun(fileStore())) as string[];
    const path = await checkpointFile(load as string);
    const edited = (await readFile(path, "utf8")).replace('"total":300', '"total":301');
    await writeFile(path, edited);
    const result = await cairn(["repair", "--checkpoint-id", load as string, ...fileArgs()]);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain("invalid: quarantined");
    expect(result.stdout).toContain("checksum_mismatch");
    expect(result.stdout).toContain(`Resume point: ${transform}`);
    expect(result.stdout).toMatch(/Backup: .*backups.*\.json/);
    // Quarantined: still invalid, a handled problem (exit 0), a failure with --strict.
    expect((await cairn(["validate", "--checkpoint-id", load as string, "--base-path", basePath])).code).toBe(
      0,
    );
    const validate = await cairn([
      "validate",
      "--checkpoint-id",
      load as string,
      "--strict",
      "--base-path",
      basePath,
    ]);
    expect(validate.code).toBe(4);
    const [backupName] = await backups();
    const backup = JSON.parse(await readFile(join(backupDir, backupName as string), "utf8"));
    expect(`{"metadata":${JSON.stringify(backup.record.metadata)},"body":${backup.record.body}}\n`).toBe(
      edited,
    );
    await withManager(fileStore(), async (m) => {
      expect((await m.getCheckpointHistory("etl"))[0]).toMatchObject({
        checkpointId: load,
        status: "expired",
      });
      expect((await m.resumePipeline("etl"))?.checkpointId).toBe(transform);
    });
  });

  it("changes nothing and writes no backup with --dry-run", async () => {
    const [, , load] = (await makeRun(fileStore())) as string[];
    const path = await checkpointFile(load as string);
    const edited = (await readFile(path, "utf8")).replace('"total":300', '"total":301');
    await writeFile(path, edited);
    const result = await cairn(["repair", "--checkpoint-id", load as string, "--dry-run", ...fileArgs()]);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain("Dry run: nothing was changed");
    expect(await readFile(path, "utf8")).toBe(edited);
    expect(await backups()).toEqual([]);
  });

  it("with --force, appends a valid checkpoint recording the forced acceptance; the changed one stays invalid", async () => {
    const [, , load] = (await makeRun(fileStore())) as string[];
    const path = await checkpointFile(load as string);
    await writeFile(path, (await readFile(path, "utf8")).replace('"total":300', '"total":301'));
    const result = await cairn([
      "repair",
      "--checkpoint-id",
      load as string,
      "--force",
      "--json",
      ...fileArgs(),
    ]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ status: "force-accepted", resumePoint: report.newCheckpointId });
    expect(
      (await cairn(["validate", "--checkpoint-id", report.newCheckpointId, "--base-path", basePath])).code,
    ).toBe(0);
    expect(
      (await cairn(["validate", "--checkpoint-id", load as string, "--strict", "--base-path", basePath]))
        .code,
    ).toBe(4);
    await withManager(fileStore(), async (m) => {
      const added = await m.loadCheckpoint(report.newCheckpointId);
      expect(added.stateData).toMatchObject({ total: 301, repair: { forcedFrom: load } });
      expect((await m.resumePipeline("etl"))?.checkpointId).toBe(report.newCheckpointId);
    });
  });

  it("backs up and removes a garbage file; exits 3 for an unknown id and 0 for a healthy checkpoint", async () => {
    const [, , load] = (await makeRun(fileStore())) as string[];
    await writeFile(join(basePath, "etl", "0000000004-garbage.json"), "{not json");
    const result = await cairn(["repair", "--checkpoint-id", "garbage", ...fileArgs()]);
    expect(result.code).toBe(4);
    expect(result.stdout).toContain("unreadable: backed up and removed");
    expect(await readdir(join(basePath, "etl"))).not.toContain("0000000004-garbage.json");
    expect(await backups()).toHaveLength(1);
    expect((await cairn(["validate", "--pipeline-id", "etl", "--base-path", basePath])).code).toBe(0);
    const unknown = await cairn([
      "repair",
      "--checkpoint-id",
      "etl_x_20240101T000000000Z_aaaaaaaa",
      ...fileArgs(),
    ]);
    expect(unknown.code).toBe(3);
    const healthy = await cairn(["repair", "--checkpoint-id", load as string, ...fileArgs()]);
    expect(healthy.code).toBe(0);
    expect(healthy.stdout).toContain("valid: nothing to repair");
  });

  it("rebuilds missing provenance of a valid checkpoint", async () => {
    const [, , load] = (await makeRun(fileStore(), false)) as string[];
    const result = await cairn(["repair", "--checkpoint-id", load as string, "--json", ...fileArgs()]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.status).toBe("rebuilt");
    await withManager(fileStore(), async (m) => {
      const added = await m.loadCheckpoint(report.newCheckpointId);
      expect(Object.keys(added.provenanceHashes).sort()).toEqual([...STAGES].sort());
    });
  });

  it("documents the exit codes in --help", async () => {
    const help = await cairn(["repair", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(
      /Exit codes:[\s\S]*0 {2}repaired[\s\S]*3 {2}no checkpoint[\s\S]*4 {2}the checkpoint was invalid/,
    );
  });
});

describe("cairn compare (file store)", () => {
  it("shows the differing state paths and output changes", async () => {
    const [extract, , load] = (await makeRun(fileStore())) as string[];
    const result = await cairn([
      "compare",
      "--checkpoint-id",
      extract as string,
      "--checkpoint-id",
      load as string,
      "--base-path",
      basePath,
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("~ total: 100 → 300");
    expect(result.stdout).toMatch(/\+ load: added [0-9a-f]{12}…/);
    expect(result.stdout).toMatch(/\+ transform: added/);
    expect(result.stdout).toContain("= same: extract");
    expect(result.stdout).toContain("Same run: yes");
    const json = await cairn([
      "compare",
      "--checkpoint-id",
      extract as string,
      "--checkpoint-id",
      load as string,
      "--base-path",
      basePath,
      "--json",
    ]);
    expect(JSON.parse(json.stdout).state).toEqual([{ path: "total", change: "changed", a: "100", b: "300" }]);
  });

  it("exits 2 unless given exactly two ids, and 4 when one fails verification", async () => {
    const [extract, , load] = (await makeRun(fileStore())) as string[];
    const one = await cairn(["compare", "--checkpoint-id", extract as string, "--base-path", basePath]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain("exactly two");
    const three = [
      "--checkpoint-id",
      extract as string,
      "--checkpoint-id",
      load as string,
      "--checkpoint-id",
      load as string,
    ];
    expect((await cairn(["compare", ...three, "--base-path", basePath])).code).toBe(2);
    const path = await checkpointFile(load as string);
    await writeFile(path, (await readFile(path, "utf8")).replace('"total":300', '"total":301'));
    const corrupt = await cairn([
      "compare",
      "--checkpoint-id",
      extract as string,
      "--checkpoint-id",
      load as string,
      "--base-path",
      basePath,
    ]);
    expect(corrupt.code).toBe(4);
    expect(corrupt.stdout).toContain("FAILED VERIFICATION");
    expect(corrupt.stdout).toContain("~ total: 100 → 301");
  });
});

describe("cairn repair and compare (sqlite store)", () => {
  const sqliteStore = () => ({ strategy: "sqlite", config: { dbPath } }) as const;
  const sqliteArgs = () => ["--db-path", dbPath, "--backup-dir", backupDir];

  it("quarantines an edited row, accepts it with --force, rebuilds indexes and compares", async () => {
    const [extract, transform, load] = (await makeRun(sqliteStore())) as string[];
    const db = new Database(dbPath);
    try {
      db.prepare(
        "UPDATE cairn_checkpoints SET body = replace(body, '\"total\":300', '\"total\":301') WHERE checkpoint_id = ?",
      ).run(load);
    } finally {
      db.close();
    }
    const quarantined = await cairn(["repair", "--checkpoint-id", load as string, "--json", ...sqliteArgs()]);
    expect(quarantined.code).toBe(4);
    expect(JSON.parse(quarantined.stdout)).toMatchObject({ status: "quarantined", resumePoint: transform });
    expect(
      (await cairn(["validate", "--checkpoint-id", load as string, "--strict", "--db-path", dbPath])).code,
    ).toBe(4);
    const forced = await cairn([
      "repair",
      "--checkpoint-id",
      load as string,
      "--force",
      "--json",
      ...sqliteArgs(),
    ]);
    expect(forced.code).toBe(0);
    const report = JSON.parse(forced.stdout);
    expect(report.status).toBe("force-accepted");
    await withManager(sqliteStore(), async (m) => {
      expect((await m.loadCheckpoint(report.newCheckpointId)).stateData).toMatchObject({
        total: 301,
        repair: { forcedFrom: load },
      });
    });
    const healthy = await cairn(["repair", "--checkpoint-id", report.newCheckpointId, ...sqliteArgs()]);
    expect(healthy.code).toBe(0);
    expect(healthy.stdout).toContain("REINDEX cairn_checkpoints");
    const compared = await cairn([
      "compare",
      "--checkpoint-id",
      extract as string,
      "--checkpoint-id",
      report.newCheckpointId,
      "--db-path",
      dbPath,
    ]);
    expect(compared.code).toBe(0);
    expect(compared.stdout).toContain("~ total: 100 → 301");
    expect(compared.stdout).toContain("+ repair:");
  });
});
