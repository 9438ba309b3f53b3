/**
 * `cairn replicate` and `cairn compare --store A --store B` as subprocesses: a copy compares equal;
 * a tampered source record is reported, not copied, and the exit code says so; a follow stopped by
 * SIGINT exits 0 and the same command continues from the saved position; usage errors.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import { openStore } from "../../src/stores/registry.js";
import { writeRun } from "../support/at-rest-runs.js";
import { CLI_PATH, runCairn } from "../support/cli.js";
import { checkpointFile } from "../support/file-store.js";
import { storeUrls } from "../support/store-urls.js";

const { dir } = storeUrls("replicate-cli");
const cairn = (...args: string[]) => runCairn(args, { cwd: dir() });

let n = 0;
const sqlite = () => `sqlite:${join(dir(), `s-${++n}.db`)}`;
const files = () => join(dir(), `f-${++n}`);

interface Line {
  type: "progress" | "problem" | "report";
  [key: string]: unknown;
}
const jsonLines = (stdout: string) =>
  stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Line);

async function fill(url: string, runs: string[]): Promise<Record<string, string[]>> {
  const manager = new CheckpointManager({ store: url });
  const ids: Record<string, string[]> = {};
  for (const run of runs) ids[run] = await writeRun(manager, run);
  await manager.close();
  return ids;
}

describe("cairn replicate", () => {
  it("copies every run; compare then finds no difference; a second run copies nothing", async () => {
    const from = sqlite();
    const folder = files();
    const to = `file:${folder}`;
    await fill(from, ["etl-1", "etl-2"]);
    // The target does not exist yet: compare opens both stores read-only and creates nothing.
    const before = await cairn("compare", "--store", from, "--store", to);
    expect(before.code).toBe(3);
    expect(existsSync(folder)).toBe(false);
    const first = await cairn("replicate", "--from", from, "--to", to, "--json");
    expect(first.code, first.stderr).toBe(0);
    const lines = jsonLines(first.stdout);
    expect(lines.at(-1)).toMatchObject({ type: "report", checkpointsCopied: 6, corrupt: [], stopped: false });
    expect(lines.some((l) => l.type === "progress")).toBe(true);
    const same = await cairn("compare", "--store", from, "--store", to);
    expect(same.code, same.stdout).toBe(0);
    expect(same.stdout).toContain("No differences.");
    const json = JSON.parse((await cairn("compare", "--store", from, "--store", to, "--json")).stdout);
    expect(json).toMatchObject({ equal: true, runsCompared: 2 });
    const again = await cairn("replicate", "--from", from, "--to", to, "--json");
    expect(jsonLines(again.stdout).at(-1)).toMatchObject({ type: "report", checkpointsCopied: 0 });
  });

  it("--pipeline-id copies one run; compare --pipeline-id and --name filter", async () => {
    const from = sqlite();
    const to = sqlite();
    await fill(from, ["etl-1", "etl-2"]);
    const one = await cairn("replicate", "--from", from, "--to", to, "--pipeline-id", "etl-2", "--json");
    expect(one.code, one.stderr).toBe(0);
    expect((await cairn("compare", "--store", from, "--store", to, "--pipeline-id", "etl-2")).code).toBe(0);
    const all = await cairn("compare", "--store", from, "--store", to);
    expect(all.code).toBe(1);
    expect(all.stdout).toContain("Only in A:\n  etl-1");
    expect((await cairn("compare", "--store", from, "--store", to, "--name", "no-such")).code).toBe(0);
  });

  it("a tampered source record is reported and not copied (exit 4); the rest is copied", async () => {
    const base = files();
    const ids = await fill(`file:${base}`, ["etl-1", "etl-2"]);
    const bad = (ids["etl-2"] as string[])[0] as string;
    const path = await checkpointFile(base, "etl-2", bad);
    const text = await readFile(path, "utf8");
    await writeFile(path, text.replace('"stage":"fetch"', '"stage":"FETCH"'));
    expect(await readFile(path, "utf8")).not.toBe(text);
    const to = sqlite();
    const result = await cairn("replicate", "--from", `file:${base}`, "--to", to, "--json");
    expect(result.code, result.stderr).toBe(4);
    const lines = jsonLines(result.stdout);
    expect(lines.filter((l) => l.type === "problem")).toEqual([
      expect.objectContaining({ kind: "corrupt", checkpointId: bad }),
    ]);
    const report = lines.at(-1) as Line & { corrupt: { checkpointId: string }[] };
    expect(report.corrupt.map((c) => c.checkpointId)).toEqual([bad]);
    const compared = JSON.parse(
      (await cairn("compare", "--store", `file:${base}`, "--store", to, "--json")).stdout,
    );
    expect(
      compared.runs.flatMap((r: { checkpointsOnlyInA: { checkpointId: string }[] }) =>
        r.checkpointsOnlyInA.map((c) => c.checkpointId),
      ),
    ).toContain(bad);
    expect(compared.onlyInA).toEqual([]);
    // Without --json (and off a terminal) the same JSON lines; into a fresh target, the same problem.
    const again = await cairn("replicate", "--from", `file:${base}`, "--to", sqlite());
    expect(again.code).toBe(4);
    expect(jsonLines(again.stdout).filter((l) => l.type === "problem")).toHaveLength(1);
  });

  it("--follow stops cleanly on SIGINT (exit 0); the same command continues from there", async () => {
    const from = sqlite();
    const to = sqlite();
    await fill(from, ["etl-1"]);
    const child = spawn(
      process.execPath,
      [CLI_PATH, "replicate", "--from", from, "--to", to, "--follow", "--poll-ms", "200"],
      { cwd: dir(), env: { ...process.env, CAIRN_STORE: undefined } },
    );
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
    // Caught up: a progress line in the follow phase.
    const deadline = Date.now() + 60_000;
    while (!stdout.includes('"phase":"follow"')) {
      if (Date.now() > deadline) throw new Error(`no follow phase: ${stdout}${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill("SIGINT");
    expect(await exit, stderr).toBe(0);
    const report = jsonLines(stdout).at(-1);
    expect(report).toMatchObject({ type: "report", stopped: true, checkpointsCopied: 3 });
    await fill(from, ["etl-2"]);
    const rest = await cairn("replicate", "--from", from, "--to", to, "--json");
    expect(jsonLines(rest.stdout).at(-1)).toMatchObject({ type: "report", checkpointsCopied: 3 });
    expect((await cairn("compare", "--store", from, "--store", to)).code).toBe(0);
  });

  it("cairn run with a pipeline file's checkpoint.replicas: the replica holds the run", async () => {
    await writeFile(
      join(dir(), "replicated.yaml"),
      `name: replicated
checkpoint: { enabled: true, replicas: ["sqlite:./replica.db"] }
steps:
  - { name: a, agent: ./replicated.mjs:a }
  - { name: b, agent: ./replicated.mjs:b }
`,
    );
    await writeFile(join(dir(), "replicated.mjs"), "export const a = () => 1;\nexport const b = () => 2;\n");
    const run = await cairn("run", "replicated.yaml", "--run-id", "rep-1", "--store", "sqlite:./primary.db");
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("replica sqlite:./replica.db caught up");
    const compared = await cairn(
      "compare",
      "--store",
      "sqlite:./primary.db",
      "--store",
      "sqlite:./replica.db",
    );
    expect(compared.code, compared.stdout).toBe(0);
    expect(compared.stdout).toContain("Compared 1 run");
  });

  it("on a terminal: a status line, then a summary; Ctrl+C stops a follow with exit 0", async () => {
    const from = sqlite();
    const to = sqlite();
    await fill(from, ["etl-1"]);
    const quote = (v: string) => `'${v.replace(/'/g, "'\\''")}'`;
    // `exec`: with no shell left between `script` and node, Ctrl+C reaches node alone (a dash
    // parent would die of the SIGINT itself and `script` would report 130 for it).
    const command = `exec ${[process.execPath, CLI_PATH, "replicate", "--from", from, "--to", to, "--follow"]
      .map(quote)
      .join(" ")}`;
    // util-linux `script` runs the command on a pseudo-terminal; Ctrl+C typed there is SIGINT.
    const child = spawn("script", ["-qefc", command, "/dev/null"], {
      cwd: dir(),
      env: { ...process.env, CAIRN_STORE: undefined },
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      output += d;
    });
    const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
    const deadline = Date.now() + 60_000;
    while (!output.includes("follow · runs 1/1 · 3 copied")) {
      if (Date.now() > deadline) throw new Error(`no follow status line: ${JSON.stringify(output)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.stdin.write("\x03");
    expect(await exit, output).toBe(0);
    expect(output).toContain("sync · runs");
    expect(output).toMatch(/lag \d+\.\d s · 0 behind/);
    expect(output).toContain(`Stopped ${from} → ${to}: 3 checkpoints`);
    expect(output).toContain("The replica is at ");
  });

  it("an empty source store deletes nothing on a populated target (exit 1)", async () => {
    const empty = sqlite();
    const created = await openStore(empty);
    await created.setup();
    await created.close();
    const to = sqlite();
    await fill(to, ["etl-1"]);
    const json = await cairn("replicate", "--from", empty, "--to", to, "--json");
    expect(json.code, json.stderr).toBe(1);
    const lines = jsonLines(json.stdout);
    expect(lines.some((l) => l.type === "problem" && l.kind === "empty-source")).toBe(true);
    expect(lines.at(-1)).toMatchObject({
      type: "report",
      runsDeleted: 0,
      emptySource: { kind: "empty-source" },
    });
    expect((await cairn("list", "--store", to)).stdout).toContain("etl-1");
    // --keep-deleted would delete nothing anyway: a plain success.
    expect((await cairn("replicate", "--from", empty, "--to", to, "--keep-deleted")).code).toBe(0);
  });

  it("usage errors", async () => {
    const a = sqlite();
    await fill(a, ["etl-1"]);
    expect((await cairn("replicate", "--from", a)).code).toBe(2);
    const same = await cairn("replicate", "--from", a, "--to", a);
    expect(same.code).toBe(2);
    expect(same.stderr).toContain("same store");
    expect((await cairn("replicate", "--from", a, "--to", sqlite(), "--poll-ms", "5")).code).toBe(2);
    // A mistyped source is no store (exit 3), never an empty source whose sync empties the target.
    const missing = join(dir(), "no-such.db");
    const typo = await cairn("replicate", "--from", `sqlite:${missing}`, "--to", a);
    expect(typo.code).toBe(3);
    expect(typo.stderr).toContain("No cairn store at");
    expect(existsSync(missing)).toBe(false);
    expect((await cairn("list", "--store", a)).stdout).toContain("etl-1");
    expect((await cairn("compare", "--store", a, "--store", a, "--store", a)).code).toBe(2);
    const withId = await cairn("compare", "--store", a, "--store", sqlite(), "--checkpoint-id", "x");
    expect(withId.code).toBe(2);
    expect((await cairn("compare", "--store", a, "--pipeline-id", "etl-1")).code).toBe(2);
    // One --store keeps its old meaning: the store of the two checkpoints.
    const one = await cairn("compare", "--store", a, "--checkpoint-id", "x", "--checkpoint-id", "y");
    expect(one.code).toBe(3);
  });
});
