/** `cairn import --max-bytes`: a file over the limit is refused before reading, exit code 2. */
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { runCairn } from "../support/cli.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-limits-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("refuses an export file over --max-bytes with CAIRN_TOO_LARGE and exit code 2, and imports within it", async () => {
  const manager = new CheckpointManager({ store: `sqlite:${join(dir, "a.db")}` });
  try {
    await manager.createCheckpoint({ pipelineId: "etl", stageName: "s", stageIndex: 0, stateData: { n: 1 } });
    await manager.exportPipeline("etl", join(dir, "run.json"));
  } finally {
    await manager.close();
  }
  const { size } = await stat(join(dir, "run.json"));
  const store = ["--store", "sqlite:b.db"];
  const refused = await runCairn(
    ["import", "--input", "run.json", "--max-bytes", String(size - 1), ...store],
    {
      cwd: dir,
    },
  );
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("CAIRN_TOO_LARGE");
  expect(refused.stderr).toContain(`is ${size} bytes, more than the limit of ${size - 1} bytes`);
  const bad = await runCairn(["import", "--input", "run.json", "--max-bytes", "lots", ...store], {
    cwd: dir,
  });
  expect(bad.code).toBe(2);
  const ok = await runCairn(["import", "--input", "run.json", "--max-bytes", "1KiB", ...store], { cwd: dir });
  expect(ok.stdout).toContain("Imported run etl: 1 checkpoint");
  expect(ok.code).toBe(0);
});
