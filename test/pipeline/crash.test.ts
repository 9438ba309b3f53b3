/**
 * Crash safety with real processes: a runner killed with SIGKILL in the middle of a stage, two
 * runners racing for the same run, and a stalled runner whose lease expired. Children run
 * `fixtures/crash-runner.mjs` on the built package (`dist/`, built by the global setup); every
 * agent call appends "<stage> <pipelineId> <pid>" to a journal (fsynced) before returning, so
 * the journal tells exactly which process ran which stage.
 *
 * The store is a parameter (a URL built from the test's temp folder): another store joins by
 * adding a row to STORES.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CheckpointManager,
  type CheckpointMetadata,
  PIPELINE_COMPLETE_STAGE,
  Pipeline,
  RunLockedError,
} from "../../src/index.js";
import { azureUp, azureUrl, s3Up, s3Url } from "../support/object-servers.js";
import {
  deleteKeyPrefixes,
  dropSchemas,
  POSTGRES_URL,
  postgresUp,
  REDIS_URL,
  redisUp,
} from "../support/services.js";

const RUNNER = fileURLToPath(new URL("./fixtures/crash-runner.mjs", import.meta.url));
const PIPELINE_NAME = "crashtest";
const STAGES = ["s1", "s2", "s3", "s4"] as const;
const TEST_TIMEOUT = 60_000;

/** A store under test: its URL inside a test's temp folder. */
interface StoreCase {
  name: string;
  url(dir: string): string;
  /**
   * True when a killed runner left a cross-process lock behind (the file store's run lock file,
   * held for ~1 ms at each lease renewal; a later runner breaks it once it sees the holder's pid
   * is gone). Stores whose locks die with the process return false.
   */
  leftoverRunLock(dir: string, runId: string): boolean;
  /** True when the store's server is not reachable (outside CI): its tests are skipped. */
  skip?: boolean;
  /**
   * The lease TTL of the kill tests (default 2500 ms). The object stores judge expiry by the
   * server's Date header (1 s resolution): within 2 s of expiry an acquirer cannot decide by the
   * clock and watches the tip for a whole TTL instead, then takes the lease (it did expire). So
   * "locked right after the kill" is only observable when the dead runner's lease has more than
   * 2 s left, which a TTL of 6 s (renewed every 2 s) guarantees.
   */
  leaseTtlMs?: number;
}

const STORES: StoreCase[] = [
  {
    name: "file",
    url: (dir) => `file:${join(dir, "store")}`,
    leftoverRunLock: (dir, runId) => existsSync(join(dir, "store", ".leases", `${runId}.lock`)),
  },
  {
    name: "sqlite",
    url: (dir) => `sqlite:${join(dir, "c.db")}`,
    leftoverRunLock: () => false,
  },
  {
    name: "postgres",
    // One schema per test folder, dropped after the file's tests.
    url: (dir) =>
      `${POSTGRES_URL}?schema=${track(serverSchemas, `cairn_crash_${basename(dir).replace(/\W/g, "_").toLowerCase()}`)}`,
    leftoverRunLock: () => false,
    skip: !postgresUp,
  },
  {
    name: "redis",
    url: (dir) => `${REDIS_URL}?keyPrefix=${track(serverPrefixes, `cairn-crash:${basename(dir)}:`)}`,
    leftoverRunLock: () => false,
    skip: !redisUp,
  },
  // A prefix per test folder in the file's bucket / container (removed after the file).
  {
    name: "s3",
    url: (dir) => s3Url(`crash-${basename(dir)}`),
    leftoverRunLock: () => false,
    skip: !s3Up,
    leaseTtlMs: 6000,
  },
  {
    name: "azure",
    url: (dir) => azureUrl(`crash-${basename(dir)}`),
    leftoverRunLock: () => false,
    skip: !azureUp,
    leaseTtlMs: 6000,
  },
];

const serverSchemas = new Set<string>();
const serverPrefixes = new Set<string>();
function track(names: Set<string>, name: string): string {
  names.add(name);
  return name;
}

afterAll(async () => {
  await dropSchemas(...serverSchemas);
  await deleteKeyPrefixes(...serverPrefixes);
});

/** What `crash-runner.mjs` accepts (see the fixture). */
interface RunnerConfig {
  store: string;
  journal: string;
  runId?: string;
  leaseTtlMs?: number;
  hangAt?: string;
  stallAt?: string;
  stallUntil?: string;
  stageDelayMs?: number;
  barrier?: string;
  retryLockedForMs?: number;
}

/** One JSON line a runner printed. */
interface RunnerEvent {
  event: "ready" | "hang" | "stall" | "result" | "error" | "close_failed";
  pid: number;
  pipelineId?: string;
  stage?: string;
  status?: string;
  resumedFrom?: string | null;
  skippedStages?: string[];
  lockedAttempts?: number;
  outputs?: string;
  code?: string | null;
  message?: string;
  expiresAt?: string;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The runner's final report (`result` or `error`), if it printed one. */
  last: RunnerEvent | undefined;
  stdout: string;
  stderr: string;
}

interface Runner {
  pid: number;
  events: RunnerEvent[];
  /** Waits until the runner reports `event` (polling); fails if it exits first or time runs out. */
  waitFor(event: RunnerEvent["event"], timeoutMs?: number): Promise<RunnerEvent>;
  finished: Promise<Finished>;
  describe(): string;
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

afterEach(async () => {
  // Only the processes this file started, by their handle.
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cairn-crash-"));
  tempDirs.push(dir);
  return dir;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startRunner(config: RunnerConfig): Runner {
  const child = spawn(process.execPath, [RUNNER, JSON.stringify(config)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const events: RunnerEvent[] = [];
  let stdout = "";
  let stderr = "";
  let pending = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    let newline = pending.indexOf("\n");
    while (newline >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.startsWith("{")) events.push(JSON.parse(line) as RunnerEvent);
      newline = pending.indexOf("\n");
    }
  });
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  let exited = false;
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      exited = true;
      const last = [...events].reverse().find((e) => e.event === "result" || e.event === "error");
      resolve({ code, signal, last, stdout, stderr });
    });
  });
  const describeRunner = () =>
    `runner ${child.pid} ${JSON.stringify(config)}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  return {
    pid: child.pid as number,
    events,
    finished,
    describe: describeRunner,
    async waitFor(event, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = events.find((e) => e.event === event);
        if (found) return found;
        if (exited) throw new Error(`runner exited before reporting ${event}: ${describeRunner()}`);
        if (Date.now() > deadline) throw new Error(`no ${event} within ${timeoutMs} ms: ${describeRunner()}`);
        await sleep(5);
      }
    },
  };
}

/** The runner's result; fails with its output unless it completed the run. */
async function resultOf(runner: Runner): Promise<RunnerEvent> {
  const done = await runner.finished;
  if (done.code !== 0 || done.last?.event !== "result" || done.last.status !== "completed") {
    throw new Error(`expected a completed run: ${runner.describe()}`);
  }
  return done.last;
}

/** The runner's error report; fails with its output unless it failed. */
async function errorOf(runner: Runner): Promise<RunnerEvent> {
  const done = await runner.finished;
  if (done.code !== 1 || done.last?.event !== "error")
    throw new Error(`expected a failure: ${runner.describe()}`);
  return done.last;
}

interface JournalEntry {
  stage: string;
  pipelineId: string;
  pid: number;
}

async function readJournal(path: string): Promise<JournalEntry[]> {
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return "";
    throw error;
  });
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const [stage, pipelineId, pid] = line.split(" ");
      return { stage: stage as string, pipelineId: pipelineId as string, pid: Number(pid) };
    });
}

/** Which pids ran `stage`, in journal order. */
const pidsOf = (journal: JournalEntry[], stage: string) =>
  journal.filter((e) => e.stage === stage).map((e) => e.pid);

/** The run's checkpoints, oldest first, read with a fresh manager. */
async function historyOf(url: string, runId: string): Promise<CheckpointMetadata[]> {
  const manager = new CheckpointManager({ store: url });
  try {
    return (await manager.getCheckpointHistory(runId)).reverse();
  } finally {
    await manager.close();
  }
}

/** A complete, consistent history: one checkpoint per stage in order, then `pipeline_complete`. */
async function expectCleanHistory(url: string, runId: string): Promise<void> {
  const history = await historyOf(url, runId);
  expect(history.map((h) => h.stageName)).toEqual([...STAGES, PIPELINE_COMPLETE_STAGE]);
  expect(history.map((h) => h.sequence)).toEqual([1, 2, 3, 4, 5]);
  // A checkpoint a run resumed from is marked `resumed`; no stage failed.
  for (const h of history) expect(["completed", "resumed"]).toContain(h.status);
  history.forEach((h, i) => {
    expect(h.parentCheckpointId).toBe(i === 0 ? undefined : history[i - 1]?.checkpointId);
  });
  const manager = new CheckpointManager({ store: url });
  try {
    // Loads and verifies the newest checkpoint (checksums, outputs, chain link).
    const latest = await manager.loadLatestCheckpoint(runId);
    expect(latest?.metadata.stageName).toBe(PIPELINE_COMPLETE_STAGE);
  } finally {
    await manager.close();
  }
}

/**
 * `execute()` in this process on a run that a (dead or alive) runner still leases: the error it
 * fails with. Its agents throw, so if the run were not locked the test would fail loudly.
 */
async function executeInProcess(url: string, runId: string, leaseTtlMs: number): Promise<unknown> {
  const mustNotRun = () => {
    throw new Error("the run was not locked: an agent ran in the test process");
  };
  const pipeline = new Pipeline({
    name: PIPELINE_NAME,
    checkpointEnabled: true,
    checkpointStore: url,
    leaseTtlMs,
    steps: STAGES.map((name) => ({ name, agent: mustNotRun })),
  });
  try {
    return await pipeline.execute({ runId }).then(
      () => undefined,
      (error: unknown) => error,
    );
  } finally {
    await pipeline.close();
  }
}

describe.each(STORES)("crash safety on the $name store", (store) => {
  if (store.skip) {
    it.skip(`${store.name} server not reachable`, () => {});
    return;
  }
  /** Encoded final outputs of an uninterrupted run in its own store. */
  let reference: string;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-crash-ref-"));
    try {
      const journal = join(dir, "journal.log");
      const runner = startRunner({ store: store.url(dir), journal, runId: "reference" });
      const result = await resultOf(runner);
      reference = result.outputs as string;
      expect((await readJournal(journal)).map((e) => [e.stage, e.pid])).toEqual(
        STAGES.map((s) => [s, runner.pid]),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, TEST_TIMEOUT);

  // Odd stages name the run explicitly, even ones let auto-resume find it.
  it.each([1, 2, 3, 4])(
    "a runner killed with SIGKILL when stage s%i starts is resumed by a new process",
    async (k) => {
      const dir = await tempDir();
      const url = store.url(dir);
      const journalPath = join(dir, "journal.log");
      // Long enough that the check right after the kill still finds the dead runner's lease on a
      // loaded machine (its last renewal can be most of a TTL old when it dies).
      const leaseTtlMs = store.leaseTtlMs ?? 2500;
      const autoResume = k % 2 === 0;
      const runId = autoResume ? undefined : `crash-at-s${k}`;
      const hangStage = `s${k}`;

      const first = startRunner({
        store: url,
        journal: journalPath,
        leaseTtlMs,
        hangAt: hangStage,
        ...(runId ? { runId } : {}),
      });
      const hang = await first.waitFor("hang");
      expect(hang.stage).toBe(hangStage);
      const pipelineId = hang.pipelineId as string;
      if (runId) expect(pipelineId).toBe(runId);
      process.kill(first.pid, "SIGKILL");
      expect((await first.finished).signal).toBe("SIGKILL");
      const deadAt = Date.now();

      if (store.leftoverRunLock(dir, pipelineId)) {
        // The kill landed inside the store's lease-renewal critical section: the next acquire
        // waits for the lock to go stale, by which time the lease has expired too, so "locked
        // right after the kill" cannot be observed. The resume below still has to work.
        console.warn(`crash test s${k} (${store.name}): the kill left the run lock behind`);
      } else {
        // Right after the kill, the dead runner's lease still holds the run.
        const locked = await executeInProcess(url, pipelineId, leaseTtlMs);
        expect(locked).toBeInstanceOf(RunLockedError);
        const lockedError = locked as RunLockedError;
        expect(lockedError.code).toBe("CAIRN_RUN_LOCKED");
        // The lease is the dead runner's last one: it ends at most one TTL after its death.
        expect(lockedError.expiresAt.getTime()).toBeLessThanOrEqual(deadAt + leaseTtlMs);
        // Past the TTL nobody holds it any more (waiting for a known instant, not a guess).
        await sleep(lockedError.expiresAt.getTime() - Date.now() + 50);
      }

      const second = startRunner({
        store: url,
        journal: journalPath,
        leaseTtlMs,
        ...(runId ? { runId } : {}),
      });
      const result = await resultOf(second);
      expect(result.lockedAttempts).toBe(0);
      expect(result.outputs).toBe(reference);
      expect(result.pipelineId).toBe(pipelineId);
      expect(result.skippedStages).toEqual(STAGES.slice(0, k - 1));

      const journal = await readJournal(journalPath);
      expect(journal.every((e) => e.pipelineId === pipelineId)).toBe(true);
      STAGES.forEach((stage, i) => {
        const pids = pidsOf(journal, stage);
        if (i + 1 < k) expect(pids, `${stage} ran once, before the crash`).toEqual([first.pid]);
        else if (i + 1 === k)
          expect(pids, `${stage} started before the crash, ran again after`).toEqual([first.pid, second.pid]);
        else expect(pids, `${stage} ran once, after the crash`).toEqual([second.pid]);
      });
      await expectCleanHistory(url, pipelineId);
      // It resumed from the checkpoint the killed runner wrote last (none when it died in s1).
      const history = await historyOf(url, pipelineId);
      expect(result.resumedFrom).toBe(k > 1 ? history[k - 2]?.checkpointId : null);
    },
    TEST_TIMEOUT,
  );

  it(
    "two processes started together on one run: one completes, the other is locked out",
    async () => {
      const dir = await tempDir();
      const url = store.url(dir);
      const journalPath = join(dir, "journal.log");
      const barrier = join(dir, "go");
      const runId = "raced";
      const config: RunnerConfig = { store: url, journal: journalPath, runId, stageDelayMs: 300, barrier };
      const runners = [startRunner(config), startRunner(config)];
      for (const runner of runners) await runner.waitFor("ready");
      await writeFile(barrier, "");

      const outcomes = await Promise.all(runners.map((r) => r.finished));
      const winners = runners.filter((_, i) => outcomes[i]?.code === 0);
      const losers = runners.filter((_, i) => outcomes[i]?.code !== 0);
      expect(winners.length, runners.map((r) => r.describe()).join("\n")).toBe(1);
      const winner = winners[0] as Runner;
      const loser = losers[0] as Runner;
      const result = await resultOf(winner);
      expect(result.outputs).toBe(reference);
      expect(result.skippedStages).toEqual([]);
      expect((await errorOf(loser)).code, loser.describe()).toBe("CAIRN_RUN_LOCKED");

      const journal = await readJournal(journalPath);
      expect(journal.map((e) => [e.stage, e.pid])).toEqual(STAGES.map((s) => [s, winner.pid]));
      await expectCleanHistory(url, runId);
    },
    TEST_TIMEOUT,
  );

  it(
    "a stalled runner whose lease expired cannot write a checkpoint after another runner took over",
    async () => {
      const dir = await tempDir();
      const url = store.url(dir);
      const journalPath = join(dir, "journal.log");
      const release = join(dir, "release-stalled-runner");
      const runId = "stalled";
      const leaseTtlMs = 500;

      // The stale runner blocks its event loop in s2 until told to go on: it cannot renew.
      const stale = startRunner({
        store: url,
        journal: journalPath,
        runId,
        leaseTtlMs,
        stallAt: "s2",
        stallUntil: release,
      });
      await stale.waitFor("stall");

      // The successor is locked out until the stale lease expires, then takes the run over.
      const successor = startRunner({
        store: url,
        journal: journalPath,
        runId,
        leaseTtlMs,
        retryLockedForMs: 20_000,
      });
      const result = await resultOf(successor);
      expect(result.outputs).toBe(reference);
      expect(result.skippedStages).toEqual(["s1"]);
      const historyAtTakeover = await historyOf(url, runId);
      expect(historyAtTakeover.map((h) => h.stageName)).toEqual([...STAGES, PIPELINE_COMPLETE_STAGE]);

      // Let the stale runner's agent return: its s2 checkpoint must be refused.
      await writeFile(release, "");
      const failure = await errorOf(stale);
      expect(failure.code, stale.describe()).toBe("CAIRN_LEASE_LOST");

      // Nothing stale was written: the history is exactly what the two runners did in turn.
      const history = await historyOf(url, runId);
      expect(history.map((h) => h.checkpointId)).toEqual(historyAtTakeover.map((h) => h.checkpointId));
      await expectCleanHistory(url, runId);

      const journal = await readJournal(journalPath);
      expect(journal.map((e) => [e.stage, e.pid])).toEqual([
        ["s1", stale.pid],
        ["s2", stale.pid],
        ["s2", successor.pid],
        ["s3", successor.pid],
        ["s4", successor.pid],
      ]);
    },
    TEST_TIMEOUT,
  );
});
