/**
 * Failover end to end, with real processes: `cairn run` writes a run to a primary (sqlite) while
 * `cairn replicate --follow` copies it to a replica (PostgreSQL when it is up, else a file store);
 * the runner is SIGKILLed mid-run and the primary's files are deleted once the replica holds the
 * last checkpoint; `cairn run --store <replica>` resumes the run and finishes it without running
 * again a stage the replica had. Then the primary comes back (a copy taken at the kill):
 * `cairn compare` shows what differs and `cairn replicate` in reverse reconciles it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, expect, it } from "vitest";
import type { StoreComparison } from "../../src/feed/compare-stores.js";
import { openStore } from "../../src/stores/registry.js";
import { CLI_PATH, runCairn } from "../support/cli.js";
import { dropSchemas, POSTGRES_URL, postgresUp, uniqueName } from "../support/services.js";

let dir: string;
const children = new Set<ChildProcess>();
const schemas: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-failover-"));
  await writeFile(
    join(dir, "p.yaml"),
    `name: failover
checkpoint: { enabled: true }
steps:
${["s1", "s2", "s3", "s4", "s5", "s6"].map((s) => `  - { name: ${s}, agent: ./agents.mjs:${s} }`).join("\n")}
`,
  );
  // Every stage journals its execution; the stage HANG names hangs (the runner is killed there),
  // the stage GATE names waits for a file "go".
  await writeFile(
    join(dir, "agents.mjs"),
    `import { appendFileSync, existsSync } from "node:fs";
const stage = (name) => async () => {
  appendFileSync("journal.txt", name + "\\n");
  await new Promise((r) => setTimeout(r, 150));
  while (name === process.env.GATE && !existsSync("go")) await new Promise((r) => setTimeout(r, 50));
  if (name === process.env.HANG) await new Promise((r) => setTimeout(r, 1e9));
  return { stage: name, rows: Array.from({ length: 50 }, (_, i) => name + ":" + i) };
};
${["s1", "s2", "s3", "s4", "s5", "s6"].map((s) => `export const ${s} = stage("${s}");`).join("\n")}
`,
  );
});
afterEach(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  await rm(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await dropSchemas(...schemas);
});

/** A child `cairn` process; `output()` is what it printed so far, `exit` its exit code. */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: dir,
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined, ...env },
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, exit, output: () => ({ stdout, stderr }) };
}

/** Polls `check` until it is true; fails with `what` (and `context()`) after `ms`. */
async function until(what: string, check: () => Promise<boolean>, context: () => string, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const journal = async () =>
  (await readFile(join(dir, "journal.txt"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);

/** The stages of the run's checkpoints the store holds (none while the store does not exist yet). */
async function storedStages(url: string, runId: string): Promise<string[]> {
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  try {
    store = await openStore(url, { readOnly: true });
    const listed = await store.listCheckpoints(runId);
    return listed.flatMap((e) => (e.ok ? [e.metadata.stage_name] : []));
  } catch (error) {
    if ((error as { code?: string }).code === "CAIRN_NOT_FOUND") return [];
    throw error;
  } finally {
    await store?.close();
  }
}

/**
 * Starts the run on the primary and, once s1 runs, a following replicator to the replica;
 * resolves once the run is in s4 and the replica holds s3's checkpoint.
 */
async function runAndReplicate(
  runId: string,
  primary: string,
  replica: string,
  env: Record<string, string>,
  replicateFlags: string[],
) {
  const runner = start(["run", "p.yaml", "--run-id", runId, "--store", primary], env);
  await until(
    "s1 to start",
    async () => (await journal()).includes("s1"),
    () => runner.output().stderr,
  );
  const replicator = start(["replicate", "--from", primary, "--to", replica, "--follow", ...replicateFlags]);
  await until(
    "s4 to start",
    async () => (await journal()).includes("s4"),
    () => runner.output().stderr,
  );
  await until(
    "the replica to hold s3's checkpoint",
    async () => (await storedStages(replica, runId)).includes("s3"),
    () => JSON.stringify(replicator.output()),
  );
  return { runner, replicator };
}

it("a run resumes on the replica after the primary dies, and the primary is reconciled when it returns", {
  timeout: 240_000,
}, async () => {
  const primary = `sqlite:${join(dir, "primary.db")}`;
  const restored = `sqlite:${join(dir, "restored.db")}`;
  let replica: string;
  if (postgresUp) {
    const schema = uniqueName("cairn_failover");
    schemas.push(schema);
    replica = `${POSTGRES_URL}?schema=${schema}`;
  } else replica = `file:${join(dir, "replica")}`;
  const runId = "failover-1";

  // The runner writes s1..s3, then hangs in s4.
  const { runner, replicator } = await runAndReplicate(runId, primary, replica, { HANG: "s4" }, [
    "--poll-ms",
    "200",
  ]);
  expect(await storedStages(primary, runId)).toEqual(["s1", "s2", "s3"]);

  // The primary dies: the runner is killed, its files are copied (the "restored" primary) and deleted.
  runner.child.kill("SIGKILL");
  await runner.exit;
  for (const suffix of ["", "-wal", "-shm"]) {
    await copyFile(join(dir, `primary.db${suffix}`), join(dir, `restored.db${suffix}`)).catch((error) => {
      if (suffix === "" || error.code !== "ENOENT") throw error;
    });
  }
  // The replicator stops cleanly on SIGTERM (exit 0) with its report as the last JSON line.
  replicator.child.kill("SIGTERM");
  expect(await replicator.exit, replicator.output().stderr).toBe(0);
  const lines = replicator.output().stdout.trim().split("\n");
  const report = JSON.parse(lines.at(-1) as string) as { type: string; stopped: boolean; corrupt: unknown[] };
  expect(report).toMatchObject({ type: "report", stopped: true, corrupt: [] });
  expect(lines.some((l) => (JSON.parse(l) as { type: string }).type === "progress")).toBe(true);
  for (const suffix of ["", "-wal", "-shm"]) await rm(join(dir, `primary.db${suffix}`), { force: true });

  // Failover: the run resumes on the replica; s1..s3 are not run again.
  const resumed = await runCairn(["run", "p.yaml", "--run-id", runId, "--store", replica, "--json"], {
    cwd: dir,
  });
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(JSON.parse(resumed.stdout)).toMatchObject({
    status: "completed",
    skippedStages: ["s1", "s2", "s3"],
  });
  expect(await journal()).toEqual(["s1", "s2", "s3", "s4", "s4", "s5", "s6"]);

  // The primary returns: compare shows what the replica has that it lacks...
  const before = await runCairn(["compare", "--store", restored, "--store", replica, "--json"], { cwd: dir });
  expect(before.code, before.stderr).toBe(1);
  const diff = JSON.parse(before.stdout) as StoreComparison;
  expect(diff.onlyInA).toEqual([]);
  expect(diff.onlyInB).toEqual([]);
  const run = diff.runs[0] ?? expect.fail("no run differs");
  expect(run.pipelineId).toBe(runId);
  expect(run.checkpointsOnlyInA).toEqual([]);
  expect(run.diverged).toEqual([]);
  expect(run.checkpointsOnlyInB.map((c) => c.stageName)).toEqual(expect.arrayContaining(["s4", "s5", "s6"]));
  const text = await runCairn(["compare", "--store", restored, "--store", replica], { cwd: dir });
  expect(text.code).toBe(1);
  expect(text.stdout).toContain("only in B: #");
  expect(text.stdout).toContain("The stores differ.");

  // ...and the replicator in reverse reconciles it: compare then finds nothing, validate passes.
  const back = await runCairn(["replicate", "--from", replica, "--to", restored], { cwd: dir });
  expect(back.code, back.stderr).toBe(0);
  const after = await runCairn(["compare", "--store", restored, "--store", replica], { cwd: dir });
  expect(after.code, after.stdout).toBe(0);
  expect(after.stdout).toContain("No differences.");
  const valid = await runCairn(["validate", "--all", "--store", restored], { cwd: dir });
  expect(valid.code, valid.stdout).toBe(0);
});

it("a checkpoint the replica never got is run again on it, and removed from the primary by the reconciliation", {
  timeout: 240_000,
}, async () => {
  const primary = `sqlite:${join(dir, "primary.db")}`;
  const restored = `sqlite:${join(dir, "restored.db")}`;
  const replica = `sqlite:${join(dir, "replica.db")}`;
  const runId = "failover-2";
  // s4 waits for "go"; the replicator is stopped before it: s4's checkpoint reaches only the primary.
  const { runner, replicator } = await runAndReplicate(runId, primary, replica, { GATE: "s4", HANG: "s5" }, [
    "--json",
  ]);
  replicator.child.kill("SIGTERM");
  expect(await replicator.exit, replicator.output().stderr).toBe(0);
  await writeFile(join(dir, "go"), "");
  await until(
    "s5 to start",
    async () => (await journal()).includes("s5"),
    () => runner.output().stderr,
  );
  runner.child.kill("SIGKILL");
  await runner.exit;
  expect(await storedStages(primary, runId)).toEqual(["s1", "s2", "s3", "s4"]);
  expect(await storedStages(replica, runId)).toEqual(["s1", "s2", "s3"]);
  for (const suffix of ["", "-wal", "-shm"]) {
    await copyFile(join(dir, `primary.db${suffix}`), join(dir, `restored.db${suffix}`)).catch((error) => {
      if (suffix === "" || error.code !== "ENOENT") throw error;
    });
    await rm(join(dir, `primary.db${suffix}`), { force: true });
  }

  // On the replica, s4 runs again (the replica never had it); s1..s3 do not.
  const resumed = await runCairn(["run", "p.yaml", "--run-id", runId, "--store", replica, "--json"], {
    cwd: dir,
  });
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(await journal()).toEqual(["s1", "s2", "s3", "s4", "s5", "s4", "s5", "s6"]);

  const before = JSON.parse(
    (await runCairn(["compare", "--store", restored, "--store", replica, "--json"], { cwd: dir })).stdout,
  ) as StoreComparison;
  const run = before.runs[0] ?? expect.fail("no run differs");
  expect(run.checkpointsOnlyInA.map((c) => c.stageName)).toEqual(["s4"]);
  expect(run.checkpointsOnlyInB.map((c) => c.stageName)).toEqual(expect.arrayContaining(["s4", "s5", "s6"]));
  const back = await runCairn(["replicate", "--from", replica, "--to", restored, "--json"], { cwd: dir });
  expect(back.code, back.stdout).toBe(0);
  expect(JSON.parse(back.stdout.trim().split("\n").at(-1) as string)).toMatchObject({
    checkpointsDeleted: 1,
  });
  const after = await runCairn(["compare", "--store", restored, "--store", replica], { cwd: dir });
  expect(after.code, after.stdout).toBe(0);
  expect((await runCairn(["validate", "--all", "--store", restored], { cwd: dir })).code).toBe(0);
});
