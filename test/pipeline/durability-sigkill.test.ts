/**
 * SIGKILL of a real process in each durability mode, on every store, while stage c of the
 * linear a → b → c → d hangs: what the resume (another process) re-runs is what the mode may
 * lose. sync: nothing completed (a and b are skipped). async: at most the stages whose
 * checkpoints were still queued or being written when the process died (a's and b's: on a
 * store slower to fsync than a stage runs, both can be), never a stage whose checkpoint the
 * process reported written, and always a prefix of the chain. exit: everything since
 * the execution started (a and b run again). In every mode the side-effect journal shows each
 * stage completed once per process that ran it, and never twice in one process. Children run
 * `fixtures/durability-runner.mjs` on the built package (`dist/`, built by the global setup).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "../support/services.js";

const RUNNER = fileURLToPath(new URL("./fixtures/durability-runner.mjs", import.meta.url));
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
  dir = await mkdtemp(join(tmpdir(), "cairn-dur-kill-"));
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
      const schema = uniqueName("cairn_durkill");
      schemas.push(schema);
      return `${POSTGRES_URL}?schema=${schema}`;
    },
    skip: !postgresUp,
  },
  {
    name: "redis",
    url: () => {
      const prefix = `${uniqueName("cairn-durkill")}:`;
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

/** The runner's process ids, in the order they journaled `kind` for `stage`. */
async function journalPids(journal: string, kind: "start" | "done", stage: string): Promise<string[]> {
  return (await readFile(journal, "utf8"))
    .split("\n")
    .map((line) => line.split(" "))
    .filter(([k, s]) => k === kind && s === stage)
    .map(([, , pid]) => pid as string);
}

describe.each(STORES)("SIGKILL in each durability mode ($name store)", (store) => {
  for (const durability of ["sync", "async", "exit"] as const) {
    it.skipIf(store.skip === true)(
      `${durability}: the resume re-runs only what ${durability} may lose`,
      async () => {
        const url = store.url();
        const journal = join(dir, "journal");
        const first = startRunner({ store: url, journal, hangAt: ["c"], durability });
        await first.until((r) => r.some((e) => e.event === "hang" && e.stage === "c"));
        first.child.kill("SIGKILL");
        await first.exited;
        const written = first.reports.filter((r) => r.event === "checkpoint").map((r) => r.stage);

        const second = startRunner({ store: url, journal, retryLockedForMs: 15_000, durability });
        await second.exited;
        const result = second.reports.at(-1);
        expect(result?.event, second.describe()).toBe("result");
        const skipped = result?.skippedStages ?? [];
        if (durability === "sync") {
          expect(written).toEqual(["a", "b"]);
          expect(skipped).toEqual(["a", "b"]);
        } else if (durability === "async") {
          // b's (and a's) checkpoints may have been in flight at the kill: then they run again.
          expect([[], ["a"], ["a", "b"]]).toContainEqual(skipped);
          // Every checkpoint the killed process saw written is reused.
          for (const stage of written) expect(skipped).toContain(stage);
        } else {
          expect(written).toEqual([]);
          expect(skipped).toEqual([]);
        }
        const ran = ["a", "b", "c", "d"].filter((s) => !skipped.includes(s));
        expect(await journalCounts(journal, "start")).toEqual(
          Object.fromEntries(
            ["a", "b", "c", "d"].map((s) => [s, 1 + (ran.includes(s) && s !== "d" ? 1 : 0)]),
          ),
        );
        // Completed once per process that ran it: never twice in one process.
        for (const stage of ["a", "b", "c", "d"]) {
          const pids = await journalPids(journal, "done", stage);
          expect(new Set(pids).size, stage).toBe(pids.length);
        }
        expect(result?.outputs?.d).toEqual({ stage: "d", seen: { n: 1, x: "c" } });
      },
      TEST_TIMEOUT,
    );
  }
});
