/**
 * Data written by a newer cairn (a store schema, a checkpoint record, an export file) is refused
 * with `CAIRN_FORMAT_TOO_NEW`, naming both versions, and the CLI exits 2: not "unavailable" (5),
 * which would send an operator looking for a server problem, and not "corrupt" (4).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager, FORMAT_VERSION, FormatTooNewError } from "../../src/index.js";
import { runCairn } from "../support/cli.js";

let dir: string;
let basePath: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-too-new-"));
  basePath = join(dir, "checkpoints");
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (args: string[]) => runCairn(args, { cwd: dir });

async function makeCheckpoint(config: CheckpointManagerConfig): Promise<string> {
  const manager = new CheckpointManager(config);
  try {
    return await manager.createCheckpoint({
      pipelineId: "run-a",
      stageName: "extract",
      stageIndex: 0,
      stateData: { n: 1 },
      completedStages: ["extract"],
      pendingStages: ["load"],
    });
  } finally {
    await manager.close();
  }
}
type CheckpointManagerConfig = ConstructorParameters<typeof CheckpointManager>[0];

describe("data of a newer cairn", () => {
  it("a checkpoint record with a newer format_version: FormatTooNewError, exit 2", async () => {
    const id = await makeCheckpoint({ strategy: "file", config: { basePath } });
    const runDir = join(basePath, "run-a");
    const name = (await readdir(runDir)).find((n) => n.endsWith(`${id}.json`)) as string;
    const text = await readFile(join(runDir, name), "utf8");
    const future = FORMAT_VERSION + 1;
    expect(text).toContain(`"format_version":${FORMAT_VERSION}`);
    await writeFile(
      join(runDir, name),
      text.replace(`"format_version":${FORMAT_VERSION}`, `"format_version":${future}`),
    );

    const manager = new CheckpointManager({ strategy: "file", config: { basePath } });
    try {
      const error = await manager.loadCheckpoint(id).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FormatTooNewError);
      expect(error).toMatchObject({ subject: "checkpoint record", found: future, supported: FORMAT_VERSION });
    } finally {
      await manager.close();
    }
    const result = await cairn(["inspect", "--checkpoint-id", id, "--base-path", basePath]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `checkpoint record format version ${future} is newer than this cairn supports (${FORMAT_VERSION})`,
    );
    expect(result.stderr).toContain("(CAIRN_FORMAT_TOO_NEW)");
  });

  it("a sqlite schema of a newer version: exit 2, not 5 (store unavailable)", async () => {
    const dbPath = join(dir, "cairn.db");
    await makeCheckpoint({ strategy: "sqlite", config: { dbPath } });
    const db = new Database(dbPath);
    db.prepare("INSERT INTO cairn_migrations VALUES (99, 'future', '2099-01-01T00:00:00.000Z')").run();
    db.close();
    const result = await cairn(["list", "--store", `sqlite:${dbPath}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /store schema format version 99 is newer than this cairn supports \(\d+\).*\(CAIRN_FORMAT_TOO_NEW\)/,
    );
  });

  it("an export file of a newer version: exit 2, while an unknown one stays corrupt (4)", async () => {
    const id = await makeCheckpoint({ strategy: "file", config: { basePath } });
    const file = join(dir, "export.json");
    expect(
      (await cairn(["export", "--checkpoint-id", id, "--output", file, "--base-path", basePath])).code,
    ).toBe(0);
    const text = await readFile(file, "utf8");
    await writeFile(file, text.replace('"export_version":"1.2"', '"export_version":"1.3"'));
    const newer = await cairn(["import", "--input", file, "--store", "memory:"]);
    expect(newer.code).toBe(2);
    expect(newer.stderr).toContain("export file format version 1.3 is newer than this cairn supports (1.2)");
    await writeFile(file, text.replace('"export_version":"1.2"', '"export_version":"banana"'));
    expect((await cairn(["import", "--input", file, "--store", "memory:"])).code).toBe(4);
  });
});
