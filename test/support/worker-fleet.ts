/**
 * The fleet harness of the worker tests (any engine): worker processes started with
 * `worker-process.ts`, the journal their stages append to, signals sent while a worker is inside
 * a stage, and the checks over the store once the runs are done: every run completed, its
 * checkpoint chain linear with one checkpoint per stage, and no stage ran again after its
 * checkpoint was stored. Registers its own hooks; kills only the processes it started.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterEach, beforeEach, expect } from "vitest";
import { type CheckpointManager, PIPELINE_COMPLETE_STAGE } from "../../src/index.js";
import { enqueueRun } from "../../src/workers/index.js";
import type { WorkerConnection, WorkerEngine } from "../../src/workers/types.js";
import {
  FLEET_PIPELINE,
  FLEET_STAGES,
  type FleetInputs,
  type JournalEntry,
  type WorkerProcessConfig,
} from "./fleet-pipeline.js";
import { expectRunIntact } from "./run-checks.js";

const TSX = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const WORKER = fileURLToPath(new URL("./worker-process.ts", import.meta.url));

/** The engine, queue and store every worker of a test shares. */
export interface FleetSetup {
  engine: WorkerEngine;
  connection: WorkerConnection;
  queue: string;
  /** The checkpoint store's URL. */
  store: string;
  leaseTtlMs: number;
  /** Runs per worker at once (default 1: a signalled worker then holds exactly one run). */
  concurrency?: number;
}

/** A line a worker process printed: `ready`, a worker event (`job_fenced`...), `closed`. */
export interface WorkerLine {
  event: string;
  pid: number;
  runId?: string;
  error?: string;
  [key: string]: unknown;
}

/** One worker process. */
export interface FleetWorker {
  pid: number;
  child: ChildProcess;
  /** Every line it printed, in order. */
  lines: WorkerLine[];
  /** Resolves once it exited, with its exit code or signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

/** A (run, stage) whose execution a test interrupted: that stage may start twice. */
export interface Disrupted {
  run: string;
  stage: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** The harness of one test file; `tag` names its temporary folder. */
export function workerFleet(tag: string) {
  let folder: string | undefined;
  const workers = new Set<FleetWorker>();
  const journalPath = () => {
    if (!folder) throw new Error("workerFleet: the journal exists from beforeEach on");
    return join(folder, "journal.jsonl");
  };
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), `cairn-${tag}-`));
    await writeFile(journalPath(), "");
  });
  afterEach(async () => {
    for (const worker of workers)
      if (alive(worker.child)) {
        worker.child.kill("SIGCONT");
        worker.child.kill("SIGKILL");
      }
    await Promise.all([...workers].map((w) => w.exited));
    workers.clear();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  /** Every journal line so far. */
  function journal(): JournalEntry[] {
    const text = readFileSync(journalPath(), "utf8");
    // Complete lines only: a worker may be appending the last one right now.
    return text
      .slice(0, text.lastIndexOf("\n") + 1)
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as JournalEntry);
  }

  /** Starts one worker process and waits until it is ready. */
  async function startWorker(setup: FleetSetup): Promise<FleetWorker> {
    const config: WorkerProcessConfig = {
      engine: setup.engine,
      connection: setup.connection,
      queue: setup.queue,
      store: setup.store,
      leaseTtlMs: setup.leaseTtlMs,
      concurrency: setup.concurrency ?? 1,
      journal: journalPath(),
    };
    const child = spawn(process.execPath, ["--import", TSX, WORKER, JSON.stringify(config)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: WorkerLine[] = [];
    let pending = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      pending += chunk;
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("{")) lines.push(JSON.parse(line) as WorkerLine);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal })),
    );
    const worker: FleetWorker = { pid: child.pid as number, child, lines, exited, stderr: () => stderr };
    workers.add(worker);
    await waitFor(`worker ${worker.pid} ready`, () => {
      if (!alive(child))
        throw new Error(`worker exited before it was ready: ${JSON.stringify(lines)}\n${stderr}`);
      return lines.some((l) => l.event === "ready");
    });
    return worker;
  }

  /** Starts `n` workers at once. */
  function startWorkers(setup: FleetSetup, n: number): Promise<FleetWorker[]> {
    return Promise.all(Array.from({ length: n }, () => startWorker(setup)));
  }

  /** Polls `ready` until it holds; fails naming `what`, the journal's length and the workers' output. */
  async function waitFor(what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 40_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (Date.now() > deadline) {
        const output = [...workers].map(
          (w) => `${w.pid}: ${JSON.stringify(w.lines.slice(-8))} ${w.stderr()}`,
        );
        throw new Error(`timed out waiting for ${what}\n${output.join("\n")}`);
      }
      await sleep(5);
    }
  }

  /**
   * Waits until a live worker is inside `stage` (started, not finished) of a run `which` accepts,
   * and returns the worker and the run.
   */
  async function inStage(
    stage: string,
    which: (run: string) => boolean = () => true,
  ): Promise<{ worker: FleetWorker; run: string }> {
    let found: { worker: FleetWorker; run: string } | undefined;
    await waitFor(`a worker inside stage ${stage}`, () => {
      const open = new Map<string, JournalEntry>();
      for (const entry of journal()) {
        const key = `${entry.pid}/${entry.run}/${entry.stage}`;
        if (entry.ev === "start") open.set(key, entry);
        else open.delete(key);
      }
      for (const entry of open.values()) {
        const worker = [...workers].find((w) => w.pid === entry.pid && alive(w.child));
        if (worker && entry.stage === stage && which(entry.run)) {
          found = { worker, run: entry.run };
          return true;
        }
      }
      return false;
    });
    return found as { worker: FleetWorker; run: string };
  }

  /** Waits until every run's newest checkpoint is the completion checkpoint. */
  async function allCompleted(manager: CheckpointManager, runs: readonly string[], timeoutMs?: number) {
    const left = new Set(runs);
    await waitFor(
      `${runs.length} runs to complete`,
      async () => {
        for (const run of [...left]) {
          const newest = (await manager.getCheckpointHistory(run))[0];
          if (newest?.stageName === PIPELINE_COMPLETE_STAGE) left.delete(run);
        }
        return left.size === 0;
      },
      timeoutMs,
    );
  }

  return { journal, startWorker, startWorkers, waitFor, inStage, allCompleted };
}

/** Enqueues each run of the fleet pipeline, a few at a time; returns the run ids. */
export async function enqueueFleetRuns(
  setup: FleetSetup,
  runs: readonly { runId: string; inputs?: FleetInputs }[],
): Promise<string[]> {
  const queue = [...runs];
  const enqueueNext = async (): Promise<void> => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const enqueued = await enqueueRun({
        engine: setup.engine,
        connection: setup.connection,
        queue: setup.queue,
        leaseTtlMs: setup.leaseTtlMs,
        pipeline: FLEET_PIPELINE,
        runId: next.runId,
        inputs: { ...next.inputs },
      });
      expect(enqueued).toMatchObject({ runId: next.runId, created: true });
    }
  };
  await Promise.all(Array.from({ length: 8 }, enqueueNext));
  return runs.map((r) => r.runId);
}

/**
 * The checks of every fleet scenario: each run completed with a linear chain of one checkpoint
 * per stage; each stage started once, except the `disrupted` ones, started exactly twice; and no
 * stage started after its checkpoint was stored.
 */
export async function expectFleetOutcome(
  manager: CheckpointManager,
  runs: readonly string[],
  journal: readonly JournalEntry[],
  disrupted: readonly Disrupted[] = [],
): Promise<void> {
  const starts = new Map<string, JournalEntry[]>();
  for (const entry of journal)
    if (entry.ev === "start")
      starts.set(`${entry.run}/${entry.stage}`, [
        ...(starts.get(`${entry.run}/${entry.stage}`) ?? []),
        entry,
      ]);
  const twice = new Set(disrupted.map((d) => `${d.run}/${d.stage}`));
  for (const run of runs) {
    // Linear: every checkpoint valid and chained on the one listed before it.
    await expectRunIntact(manager, run);
    const history = [...(await manager.getCheckpointHistory(run))].reverse();
    expect(
      history.map((m) => m.stageName),
      run,
    ).toEqual([...FLEET_STAGES, PIPELINE_COMPLETE_STAGE]);
    for (const checkpoint of history) {
      if (checkpoint.stageName === PIPELINE_COMPLETE_STAGE) continue;
      const key = `${run}/${checkpoint.stageName}`;
      const started = starts.get(key) ?? [];
      expect(started.length, `starts of ${key}`).toBe(twice.has(key) ? 2 : 1);
      const stored = checkpoint.timestamp.getTime();
      const late = started.filter((s) => s.t >= stored);
      expect(late, `${key} started again after its checkpoint was stored`).toEqual([]);
    }
  }
  // Nothing ran for a run the test did not enqueue.
  const known = new Set(runs);
  expect(journal.filter((e) => !known.has(e.run))).toEqual([]);
}
