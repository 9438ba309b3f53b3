/**
 * The harness of the `cairn worker` / `cairn enqueue` tests (test/cli/worker*.test.ts): a
 * temporary folder per test with an agents module whose stages journal their start and finish,
 * 3-stage pipeline files, `cairn worker` processes with their JSON events, each engine's queue
 * flags and a checkpoint store on the same server (queues, schemas and key prefixes removed after
 * the file), and the scenarios every engine must pass. Kills only the processes it started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { CLI_PATH, runCairn, startCairn } from "./cli.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
  uniqueName,
} from "./services.js";

let dir: string;
/** The current test's folder. */
export const testDir = () => dir;
const children = new Set<ChildProcess>();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "cairn-cli-worker-"));
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  // Each stage journals its start and finish; `ms` is how long it works (it ignores aborts, as
  // real work that cannot be cut short would: a drain waits for it).
  await writeFile(
    join(dir, "agents.js"),
    `import { appendFileSync } from "node:fs";
export async function stage(inputs, ctx) {
  const line = (event) =>
    appendFileSync(ctx.config.journal, JSON.stringify({ event, run: ctx.pipelineId, stage: ctx.stageName, pid: process.pid, n: inputs.n ?? null }) + "\\n");
  line("start");
  await new Promise((resolve) => setTimeout(resolve, ctx.config.ms));
  line("finish");
  return { [ctx.stageName]: inputs.n ?? 0 };
}
`,
  );
});
afterEach(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  await rm(dir, { recursive: true, force: true });
});

const cleanup = { schemas: [] as string[], prefixes: [] as string[] };
afterAll(async () => {
  if (postgresUp) await dropSchemas(...cleanup.schemas);
  if (redisUp) await deleteKeyPrefixes(...cleanup.prefixes);
});

export interface JournalLine {
  event: "start" | "finish";
  run: string;
  stage: string;
  pid: number;
  /** The run input `n` the stage received. */
  n: number | null;
}

/** Writes a 3-stage pipeline file (the middle stage takes `middleMs`); returns its path. */
export async function pipelineFile(name: string, store: string, middleMs = 50, file = "pipeline.yaml") {
  const journal = join(dir, "journal.jsonl");
  const step = (stage: string, ms: number) =>
    `  - { name: ${stage}, agent: ./agents.js:stage, config: { journal: ${JSON.stringify(journal)}, ms: ${ms} } }`;
  const path = join(dir, file);
  await writeFile(
    path,
    [
      `name: ${name}`,
      `checkpoint: { enabled: true, store: ${JSON.stringify(store)} }`,
      "steps:",
      step("one", 30),
      step("two", middleMs),
      step("three", 30),
      "",
    ].join("\n"),
  );
  return path;
}

export async function journal(): Promise<JournalLine[]> {
  const text = await readFile(join(dir, "journal.jsonl"), "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as JournalLine);
}

/** Runs `cairn ...args` with `input` on its stdin. */
export function enqueueFromStdin(
  args: string[],
  input: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: dir,
    env: { ...process.env, CAIRN_STORE: undefined, CAIRN_DEBUG: undefined },
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (chunk: Buffer) => {
    out.stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    out.stderr += chunk.toString();
  });
  child.stdin.end(input);
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, ...out })));
}

/** A `cairn worker` process: its output so far and a way to wait for a condition on it. */
export function startWorker(args: string[]) {
  const started = startCairn(["worker", ...args, "--json"], { cwd: dir, children, timeoutMs: 30_000 });
  const events = () =>
    started.lines().map((l) => JSON.parse(l) as { type: string; runId?: string; delivery?: number });
  const event = (type: string, runId: string) =>
    started.until(`${type} of ${runId}`, () => events().some((e) => e.type === type && e.runId === runId));
  return { ...started, events, event };
}

/** One engine's queue connection and a checkpoint store on the same server, fresh per test. */
export interface Engine {
  engine: "bullmq" | "pg-boss";
  up: boolean;
  /** The flags naming the queue's connection (with a queue of its own). */
  flags: () => string[];
  /** A fresh checkpoint store URL on the same server. */
  store: () => string;
}

export const engines: Engine[] = [
  {
    engine: "bullmq",
    up: redisUp,
    flags: () => {
      const queue = uniqueName("cairn-cli-worker");
      // BullMQ keeps a queue's keys under `bull:<queue>`.
      cleanup.prefixes.push(`bull:${queue}`);
      return ["--engine", "bullmq", "--redis-url", REDIS_URL, "--queue", queue];
    },
    store: () => {
      const prefix = `${uniqueName("cairn-cli-worker")}:`;
      cleanup.prefixes.push(prefix);
      return `${REDIS_URL}?keyPrefix=${prefix}`;
    },
  },
  {
    engine: "pg-boss",
    up: postgresUp,
    flags: () => {
      const schema = uniqueName("cairn_cli_pgboss");
      cleanup.schemas.push(schema);
      return [
        "--engine",
        "pg-boss",
        "--connection-string",
        POSTGRES_URL,
        "--pg-boss-schema",
        schema,
        "--queue",
        "runs",
      ];
    },
    store: () => {
      const schema = uniqueName("cairn_cli_worker");
      cleanup.schemas.push(schema);
      return `${POSTGRES_URL}?schema=${schema}`;
    },
  },
];

/** The scenarios every engine passes: run to completion, drain on SIGTERM, exit on a second signal. */
export function engineScenarios(name: Engine["engine"]): void {
  const found = engines.find((e) => e.engine === name);
  if (!found) throw new Error(`no engine ${name}`);
  const { engine, up, flags, store } = found;
  /**
   * Enqueues one run of a fresh 3-stage pipeline (lease 4 s, stage two working `middleMs`) and
   * starts a worker on it; resolves once that worker is in stage two. `nextWorker` starts another
   * worker, waits for it to complete the run and stops it with SIGTERM (exit code 0).
   */
  async function inStageTwo(name: string, middleMs: number, tag: string) {
    const file = await pipelineFile(name, store(), middleMs);
    const queue = flags();
    const runId = uniqueName(tag);
    const enqueued = await runCairn(["enqueue", file, ...queue, "--run-id", runId, "--lease-ttl", "4000"], {
      cwd: dir,
    });
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const worker = () => startWorker([file, ...queue, "--lease-ttl", "4000"]);
    const first = worker();
    await first.until("stage two started", async () =>
      (await journal()).some((l) => l.run === runId && l.stage === "two" && l.event === "start"),
    );
    const nextWorker = async () => {
      const next = worker();
      await next.event("job_completed", runId);
      next.child.kill("SIGTERM");
      expect(await next.exited, next.out.stderr).toBe(0);
      return next;
    };
    return { runId, first, nextWorker };
  }
  describe(engine, () => {
    it.skipIf(!up)(
      "runs an enqueued run to completion, once though enqueued twice, and drains on SIGTERM",
      { timeout: 60_000 },
      async () => {
        const storeUrl = store();
        const file = await pipelineFile("worker_runs", storeUrl);
        const queue = flags();
        const runId = uniqueName("twice");
        const inputs = join(dir, "inputs.json");
        await writeFile(inputs, JSON.stringify({ n: 7 }));
        const enqueued = await runCairn(
          ["enqueue", file, ...queue, "--inputs", inputs, "--run-id", runId, "--lease-ttl", "3000", "--json"],
          { cwd: dir },
        );
        expect(enqueued.code, enqueued.stderr).toBe(0);
        expect(JSON.parse(enqueued.stdout)).toMatchObject({
          runId,
          created: true,
          pipeline: "worker_runs",
          engine,
        });
        // The same run id again, its inputs from stdin: nothing is added.
        const again = await enqueueFromStdin(
          ["enqueue", file, ...queue, "--inputs", "-", "--run-id", runId],
          JSON.stringify({ n: 8 }),
        );
        expect(again.code, again.stderr).toBe(0);
        expect(again.stdout).toContain(`Run ${runId} is already queued`);
        const worker = startWorker([file, ...queue, "--lease-ttl", "3000"]);
        await worker.event("job_completed", runId);
        worker.child.kill("SIGTERM");
        expect(await worker.exited, worker.out.stderr).toBe(0);
        expect(worker.events().map((e) => e.type)).toEqual(
          expect.arrayContaining([
            "worker_ready",
            "job_started",
            "job_completed",
            "worker_draining",
            "worker_stopped",
          ]),
        );
        const runs = await runCairn(["list", "--json", "--store", storeUrl], { cwd: dir });
        const listed = (
          JSON.parse(runs.stdout) as { pipelineId: string; status: string; completedStages: number }[]
        ).find((r) => r.pipelineId === runId);
        expect(listed).toMatchObject({ status: "completed", completedStages: 3 });
        const done = (await journal()).filter((l) => l.run === runId && l.event === "finish");
        expect(done.map((l) => l.stage)).toEqual(["one", "two", "three"]);
        // The inputs given to enqueue reached every stage.
        expect(done.map((l) => l.n)).toEqual([7, 7, 7]);
      },
    );

    it.skipIf(!up)(
      "SIGTERM mid-stage: the stage finishes and checkpoints, the job is returned, another worker finishes the run",
      { timeout: 60_000 },
      async () => {
        const { runId, first, nextWorker } = await inStageTwo("worker_drain", 2_000, "drain");
        first.child.kill("SIGTERM");
        expect(await first.exited, first.out.stderr).toBe(0);
        const firstEvents = first.events().map((e) => e.type);
        expect(firstEvents).toContain("job_returned");
        expect(firstEvents).not.toContain("job_completed");
        const drained = await journal();
        // The stage in progress finished in the draining worker; nothing after it started.
        expect(drained.filter((l) => l.event === "finish").map((l) => l.stage)).toEqual(["one", "two"]);
        expect(drained.some((l) => l.stage === "three")).toBe(false);

        const second = await nextWorker();
        const all = (await journal()).filter((l) => l.run === runId);
        // Every stage ran once: the drained worker's checkpoints were resumed from, not re-run.
        for (const stage of ["one", "two", "three"])
          expect(
            all.filter((l) => l.stage === stage && l.event === "start"),
            stage,
          ).toHaveLength(1);
        expect(all.find((l) => l.stage === "three")?.pid).toBe(second.child.pid);
        expect(all.find((l) => l.stage === "two")?.pid).toBe(first.child.pid);
      },
    );

    it.skipIf(!up)(
      "a second signal exits at once with 130; another worker resumes the run once its lease lapses",
      { timeout: 60_000 },
      async () => {
        const { runId, first, nextWorker } = await inStageTwo("worker_exit", 2_500, "exit");
        first.child.kill("SIGTERM");
        await first.until("draining", () => first.events().some((e) => e.type === "worker_draining"));
        first.child.kill("SIGTERM");
        expect(await first.exited, first.out.stderr).toBe(130);
        const cut = await journal();
        expect(cut.some((l) => l.stage === "two" && l.event === "finish")).toBe(false);

        const second = await nextWorker();
        const all = (await journal()).filter((l) => l.run === runId);
        const starts = (stage: string) =>
          all.filter((l) => l.stage === stage && l.event === "start").map((l) => l.pid);
        // Stage one was checkpointed before the exit: not run again. Two was cut short: run again.
        expect(starts("one")).toEqual([first.child.pid]);
        expect(starts("two")).toEqual([first.child.pid, second.child.pid]);
        expect(starts("three")).toEqual([second.child.pid]);
      },
    );
  });
}
