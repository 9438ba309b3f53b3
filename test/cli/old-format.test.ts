/**
 * The CLI on a store holding records of an older format (format 1, as cairn 1.x wrote them): they
 * validate, inspect, list, export and import as they are; a format below the oldest this cairn
 * reads is corrupt (exit 4), not too new (exit 2).
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCairn } from "../support/cli.js";

const FIXTURE = join(import.meta.dirname, "..", "fixtures", "run-v1.1.export");

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-old-format-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const cairn = (args: string[]) => runCairn(args, { cwd: dir });

describe("a store holding format 1 records", () => {
  it("validates, lists, inspects, exports and imports them", async () => {
    const files = ["--base-path", join(dir, "cp")];
    const imported = await cairn(["import", "--input", FIXTURE, ...files]);
    expect(imported.code, imported.stderr).toBe(0);
    const validated = await cairn(["validate", "--pipeline-id", "etl_v11", ...files]);
    expect(validated.code, validated.stderr).toBe(0);
    expect(validated.stdout).toContain("all valid");
    const listed = await cairn(["list", "--pipeline-id", "etl_v11", "--json", ...files]);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { checkpointId: string; formatVersion?: number }[];
    expect(rows).toHaveLength(3);
    const newest = rows[0]?.checkpointId as string;
    const inspected = await cairn(["inspect", "--checkpoint-id", newest, ...files]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stdout).toMatch(/Format version: +1\n/);
    expect(inspected.stdout).toContain("Validation: valid");

    const out = join(dir, "again.export");
    const exported = await cairn(["export", "--pipeline-id", "etl_v11", "--output", out, ...files]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(await readFile(out, "utf8")).toContain('"format_version":1');
    const sqlite = ["--store", `sqlite:${join(dir, "other.db")}`];
    const again = await cairn(["import", "--input", out, ...sqlite]);
    expect(again.code, again.stderr).toBe(0);
    const there = await cairn(["validate", "--pipeline-id", "etl_v11", ...sqlite]);
    expect(there.code, there.stderr).toBe(0);
  });

  it("calls a record of a format below the oldest corrupt: exit 4, not 2", async () => {
    const basePath = join(dir, "cp");
    expect((await cairn(["import", "--input", FIXTURE, "--base-path", basePath])).code).toBe(0);
    const runDir = join(basePath, "etl_v11");
    const name = (await readdir(runDir)).find((n) => n.includes("_extract_")) as string;
    const text = await readFile(join(runDir, name), "utf8");
    expect(text).toContain('"format_version":1');
    await writeFile(join(runDir, name), text.replace('"format_version":1', '"format_version":0'));
    const result = await cairn(["validate", "--pipeline-id", "etl_v11", "--base-path", basePath]);
    expect(result.code).toBe(4);
    expect(result.stdout + result.stderr).toContain("format version 0 is not one this cairn knows");
    expect(result.stderr).not.toContain("CAIRN_FORMAT_TOO_NEW");
  });
});
