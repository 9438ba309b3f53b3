/**
 * SIGKILL of a real process while two branches of a DAG run: the resume (another process)
 * re-runs only the stages without a checkpoint, and every stage's side-effect journal shows it
 * completed exactly once per checkpointed completion. Children run `fixtures/dag-runner.mjs` on
 * the built package (`dist/`, built by the global setup).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CheckpointManager } from "../../src/index.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";

const RUNNER = fileURLToPath(new URL("./fixtures/dag-runner.mjs", import.meta.url));
const TEST_TIMEOUT = 60_000;

interface Report {
  event: "hang" | "checkpoint" | "result" | "error";
  pid: number;
  stage?: string;
  pipelineId?: string;
  status?: string;
  skippedStages?: string[];
  outputs?: Record<string, unknown>;
  message?: string;
}

const schemas: string[] = [];
const prefixes: string[] = [];
afterAll(async () => {
  await dropSchemas(...schemas);
  await deleteKeyPrefixes(...prefixes);
});

const children = new Set<ChildProcess>();
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-dag-kill-"));
});
afterEach(async () => {
  // Only the processes this file started, by their handle.
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a runner; `reports` fills as it prints; `exited` resolves when it is gone. */
function startRunner(config: Record<string, unknown>) {
  const child = spawn(process.execPath, [RUNNER, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const reports: Report[] = [];
  let pending = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    pending += chunk;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith("{")) reports.push(JSON.parse(line) as Report);
    }
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const describeIt = () => `${JSON.stringify(reports)}\n${stderr}`;
  return {
    child,
    reports,
    exited,
    /** Waits until `ready` holds over the reports; fails if the runner exits first. */
    async until(ready: (r: Report[]) => boolean): Promise<void> {
      const deadline = Date.now() + 20_000;
      while (!ready(reports)) {
        if (child.exitCode !== null) throw new Error(`runner exited early: ${describeIt()}`);
        if (Date.now() > deadline) throw new Error(`runner never got there: ${describeIt()}`);
        await sleep(2);
      }
    },
    describe: describeIt,
  };
}

const STORES: { name: string; url: () => string; skip?: boolean }[] = [
  { name: "file", url: () => `file:${join(dir, "store")}` },
  { name: "sqlite", url: () => `sqlite:${join(dir, "c.db")}` },
  {
    name: "postgres",
    url: () => {
      const schema = uniqueName("cairn_dagkill");
      schemas.push(schema);
      return `${POSTGRES_URL}?schema=${schema}`;
    },
    skip: !postgresUp,
  },
  {
    name: "redis",
    url: () => {
      const prefix = `${uniqueName("cairn-dagkill")}:`;
      prefixes.push(prefix);
      return `${REDIS_URL}?keyPrefix=${prefix}`;
    },
    skip: !redisUp,
  },
];

/** How often each stage's agent journaled `kind` (start or done). */
async function journalCounts(journal: string, kind: "start" | "done"): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await readFile(journal, "utf8")).split("\n")) {
    const [k, stage] = line.split(" ");
    if (k === kind && stage) counts[stage] = (counts[stage] ?? 0) + 1;
  }
  return counts;
}

/** Checkpoints written after a stage completed (not failed ones, not the final one), by stage. */
async function checkpointedCompletions(url: string): Promise<Record<string, number>> {
  const manager = new CheckpointManager({ store: url });
  try {
    const runId = (await manager.listRuns("dagcrash")).runs[0]?.pipelineId as string;
    const counts: Record<string, number> = {};
    for (const m of await manager.getCheckpointHistory(runId))
      if (m.status !== "failed" && ["a", "b", "c", "d"].includes(m.stageName))
        counts[m.stageName] = (counts[m.stageName] ?? 0) + 1;
    return counts;
  } finally {
    await manager.close();
  }
}

describe.each(STORES)("SIGKILL while two DAG branches run ($name store)", (store) => {
  it.skipIf(store.skip === true)(
    "both branches in flight: the resume runs them and the join; a is reused",
    async () => {
      const url = store.url();
      const journal = join(dir, "journal");
      const first = startRunner({ store: url, journal, hangAt: ["b", "c"] });
      await first.until((r) => ["b", "c"].every((s) => r.some((e) => e.event === "hang" && e.stage === s)));
      first.child.kill("SIGKILL");
      await first.exited;
      expect(first.reports.filter((r) => r.event === "checkpoint").map((r) => r.stage)).toEqual(["a"]);

      const second = startRunner({ store: url, journal, retryLockedForMs: 15_000 });
      await second.exited;
      const result = second.reports.at(-1);
      expect(result?.event, second.describe()).toBe("result");
      expect(result?.skippedStages).toEqual(["a"]);
      expect(await journalCounts(journal, "start")).toEqual({ a: 1, b: 2, c: 2, d: 1 });
      expect(await journalCounts(journal, "done")).toEqual(await checkpointedCompletions(url));
      expect(await journalCounts(journal, "done")).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    },
    TEST_TIMEOUT,
  );

  it.skipIf(store.skip === true)(
    "one branch checkpointed, the other in flight: the resume runs only that branch and the join",
    async () => {
      const url = store.url();
      const journal = join(dir, "journal");
      const first = startRunner({ store: url, journal, hangAt: ["c"] });
      await first.until(
        (r) =>
          r.some((e) => e.event === "hang" && e.stage === "c") &&
          r.some((e) => e.event === "checkpoint" && e.stage === "b"),
      );
      first.child.kill("SIGKILL");
      await first.exited;

      const second = startRunner({ store: url, journal, retryLockedForMs: 15_000 });
      await second.exited;
      const result = second.reports.at(-1);
      expect(result?.event, second.describe()).toBe("result");
      expect(result?.skippedStages).toEqual(["a", "b"]);
      expect(await journalCounts(journal, "start")).toEqual({ a: 1, b: 1, c: 2, d: 1 });
      expect(await journalCounts(journal, "done")).toEqual(await checkpointedCompletions(url));
      expect(result?.outputs?.d).toEqual({
        stage: "d",
        seen: { n: 1, b: { n: 1, x: "a" }, c: "c" },
      });
    },
    TEST_TIMEOUT,
  );
});
