/**
 * The pg-boss (PostgreSQL) engine of `cairn-pipelines/workers`. pg-boss distributes the jobs and
 * redelivers the job of a dead worker (its maintenance fails an active job once it has expired
 * and retries it); cairn's checkpoints and leases make each redelivery a resume.
 *
 * pg-boss 10 has no heartbeat, so each job is a slice of its run (see pg-boss-settings.ts): the
 * worker stops the run at its next checkpoint before the job expires and fails the job with
 * `retryDelay: 0`, which puts it back at once; the next delivery resumes the run.
 */
import { CairnError, InvalidArgumentError, StoreUnavailableError } from "../core/errors.js";
import { loadDriver } from "../stores/driver.js";
import { isConnectionError } from "../stores/postgres/driver.js";
import {
  jobOptions,
  type PgBossTiming,
  pgBossConfig,
  pgBossJobId,
  pgBossTiming,
  sliceMs,
} from "./pg-boss-settings.js";
import type {
  AdapterSettings,
  EngineAdapter,
  EngineWorker,
  JobHandler,
  JobOutcome,
  RunJobData,
} from "./types.js";

/** The part of a pg-boss job the worker reads (`fetch` with `includeMetadata`). */
interface PgBossJob {
  id: string;
  data: unknown;
  retryCount: number;
  /** The job's own expiry, set when it was sent (PostgreSQL numeric: may come as a string). */
  expireInSeconds: number | string;
}

/** The part of pg-boss 10's API cairn uses. */
interface PgBoss {
  on(event: "error", listener: (error: Error) => void): unknown;
  start(): Promise<unknown>;
  stop(options?: { graceful?: boolean; wait?: boolean; timeout?: number }): Promise<void>;
  createQueue(name: string, options: Record<string, unknown>): Promise<void>;
  getQueue(name: string): Promise<unknown>;
  send(name: string, data: object, options: Record<string, unknown>): Promise<string | null>;
  fetch(name: string, options: { batchSize: number; includeMetadata: true }): Promise<PgBossJob[]>;
  complete(name: string, id: string, data?: object): Promise<unknown>;
  fail(name: string, id: string, data?: object): Promise<unknown>;
  getDb(): { executeSql(text: string, values?: unknown[]): Promise<unknown> };
}
type PgBossClass = new (config: Record<string, unknown>) => PgBoss;

/**
 * Allowance when deciding whether a job is still this worker's delivery. Elapsed times on a
 * monotonic clock, measured from before the fetch, are compared with pg-boss's expiry (measured
 * by the database from the fetch): no wall clock is compared, so clock offsets do not matter.
 */
const OWNERSHIP_MARGIN_MS = 100;
/** How long `close()` lets pg-boss wait for its own in-flight work (ours has ended by then). */
const STOP_TIMEOUT_MS = 5_000;

function loadPgBoss(): Promise<PgBossClass> {
  return loadDriver(
    "pg-boss",
    "pg-boss",
    () => import("pg-boss"),
    (module) => {
      const candidate = module as unknown;
      return typeof candidate === "function" &&
        typeof (candidate as { prototype?: { start?: unknown } }).prototype?.start === "function"
        ? (candidate as PgBossClass)
        : undefined;
    },
    "The pg-boss worker engine",
  );
}

/** Why a failure went to pg-boss's job output: enough to read it in any pg-boss tool. */
function errorOutput(error: Error): Record<string, unknown> {
  return {
    name: error.name,
    message: error.message,
    ...(error instanceof CairnError ? { code: error.code } : {}),
  };
}

function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** PostgreSQL's "deadlock detected": the server aborted one of the transactions involved. */
const DEADLOCK = "40P01";

/**
 * Creates the queue unless it exists; every job also carries these settings (see `send`).
 * pg-boss's `create_queue` attaches a partition to its job table, and two processes creating the
 * same new queue at once (a fleet starting) can deadlock: PostgreSQL aborts one, which retries
 * and then finds the queue there.
 */
async function ensureQueue(boss: PgBoss, queue: string, options: Record<string, unknown>) {
  for (let attempt = 1; ; attempt++) {
    try {
      if ((await boss.getQueue(queue)) === null) await boss.createQueue(queue, options);
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== DEADLOCK || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt + Math.random() * 50));
    }
  }
}

/** Where the connection points, for messages (never its password). */
function where(config: Record<string, unknown>): string {
  if (typeof config.connectionString === "string") {
    try {
      const url = new URL(config.connectionString);
      return `PostgreSQL at ${url.hostname}:${url.port || "5432"}`;
    } catch {
      return "PostgreSQL";
    }
  }
  return `PostgreSQL at ${String(config.host ?? "localhost")}:${String(config.port ?? 5432)}`;
}

/** Starts pg-boss on the connection and makes sure the queue exists with cairn's settings. */
async function openBoss(
  settings: Pick<AdapterSettings, "connection" | "queue" | "leaseTtlMs">,
  role: { supervise: boolean; connections: number },
  onError: (error: Error) => void,
): Promise<{ boss: PgBoss; schema: string; timing: PgBossTiming }> {
  if (typeof settings.queue !== "string" || !/^[\w.-]+$/.test(settings.queue)) {
    throw new InvalidArgumentError(
      `a pg-boss queue name has letters, digits, "_", "-" or "." only, got ${String(settings.queue)}`,
    );
  }
  const timing = pgBossTiming(settings.leaseTtlMs);
  const { config, schema } = pgBossConfig(settings.connection);
  const PgBossClass = await loadPgBoss();
  const boss = new PgBossClass({
    // A pool that fits the work (each fetch loop holds at most one connection at a time) unless
    // the connection sets its own `max`.
    max: role.connections,
    ...config,
    // Maintenance is what fails the jobs of dead workers: only workers run it, often enough
    // that a dead worker's job is retried within about T + T/2.
    supervise: role.supervise,
    maintenanceIntervalSeconds: timing.maintenanceIntervalSeconds,
    pollingIntervalSeconds: timing.pollingIntervalSeconds,
    schedule: false,
  });
  boss.on("error", (error) => onError(asError(error)));
  try {
    await boss.start();
  } catch (error) {
    await boss.stop({ graceful: false }).catch(() => {});
    if (!isConnectionError(error)) throw error;
    const cause = asError(error);
    throw new StoreUnavailableError("pg-boss", `cannot reach ${where(config)}: ${cause.message}`, { cause });
  }
  try {
    await ensureQueue(boss, settings.queue, jobOptions(settings.leaseTtlMs));
  } catch (error) {
    await boss.stop({ graceful: false }).catch(() => {});
    throw error;
  }
  return { boss, schema, timing };
}

/**
 * Fails a job for good: pg-boss retries any failed job while `retry_count < retry_limit`, and a
 * cairn job's limit is effectively infinite (slices count as retries), so the limit is first
 * lowered to the count. The job ends in pg-boss's `failed` state with the error as its output,
 * and goes to the queue's dead-letter queue if one is set. A crash between the two statements
 * leaves an active job whose expiry fails it for good the same way.
 */
async function failForGood(boss: PgBoss, schema: string, queue: string, id: string, error: Error) {
  await boss
    .getDb()
    .executeSql(
      `UPDATE ${schema}.job SET retry_limit = retry_count WHERE name = $1 AND id = $2 AND state < 'completed'`,
      [queue, id],
    );
  await boss.fail(queue, id, errorOutput(error));
}

/** One worker: `concurrency` loops, each fetching one job at a time. */
async function startWorker(settings: AdapterSettings, handler: JobHandler): Promise<EngineWorker> {
  if (!Number.isInteger(settings.concurrency) || settings.concurrency < 1) {
    throw new InvalidArgumentError(`concurrency must be an integer ≥ 1, got ${settings.concurrency}`);
  }
  const { queue, onError } = settings;
  const report = (error: unknown) => {
    try {
      onError(asError(error));
    } catch {
      // A throwing listener must not stop the worker.
    }
  };
  const { boss, schema, timing } = await openBoss(
    settings,
    { supervise: true, connections: settings.concurrency + 2 },
    report,
  );
  const pollMs = timing.pollingIntervalSeconds * 1000;
  const closing = new AbortController();
  const running = new Set<AbortController>();

  const settle = async (job: PgBossJob, outcome: JobOutcome, ownedUntil: number) => {
    switch (outcome.kind) {
      case "completed":
        // Even after the job expired: the run is complete, so whichever delivery this
        // completes would find it complete at once.
        await boss.complete(queue, job.id, { status: "completed" });
        return;
      case "failed":
        await failForGood(boss, schema, queue, job.id, outcome.error);
        return;
      case "returned":
      case "fenced":
        // Past its expiry the job is pg-boss's again (maybe another worker's delivery now):
        // failing it then could fail that delivery, so it is left to the expiry.
        if (performance.now() < ownedUntil) {
          await boss.fail(
            queue,
            job.id,
            outcome.kind === "fenced"
              ? errorOutput(outcome.error)
              : { message: "returned at a checkpoint; the next delivery resumes the run" },
          );
        }
        return;
    }
  };

  const runOne = async (job: PgBossJob, fetchedAt: number) => {
    // The job's own expiry rules (its enqueuer may have used another lease TTL than this worker).
    const expireInSeconds =
      Number(job.expireInSeconds) > 0 ? Number(job.expireInSeconds) : timing.expireInSeconds;
    const ownedUntil = fetchedAt + expireInSeconds * 1000 - OWNERSHIP_MARGIN_MS;
    const stop = new AbortController();
    running.add(stop);
    if (closing.signal.aborted) stop.abort();
    // The slice: stop at the next checkpoint before pg-boss expires the job.
    const slice = setTimeout(
      () => stop.abort(),
      Math.max(0, fetchedAt + sliceMs(expireInSeconds) - performance.now()),
    );
    let outcome: JobOutcome;
    try {
      // The runner checks the payload: a job that is not a cairn run is its `failed` outcome.
      outcome = await handler(job.data as RunJobData, {
        jobId: job.id,
        delivery: job.retryCount + 1,
        stop: stop.signal,
      });
    } catch (error) {
      // The runner never throws; if it does, retrying the same code would throw again.
      outcome = { kind: "failed", error: asError(error) };
    } finally {
      clearTimeout(slice);
      running.delete(stop);
    }
    await settle(job, outcome, ownedUntil);
  };

  const loop = async () => {
    while (!closing.signal.aborted) {
      const fetchedAt = performance.now();
      let job: PgBossJob | undefined;
      try {
        job = (await boss.fetch(queue, { batchSize: 1, includeMetadata: true }))[0];
      } catch (error) {
        report(error);
      }
      if (job === undefined) {
        await sleep(pollMs, closing.signal);
        continue;
      }
      try {
        if (closing.signal.aborted) {
          // Fetched while close() began: hand it straight back rather than start the run.
          await boss.fail(queue, job.id, { message: "the worker closed; the next delivery runs it" });
          return;
        }
        await runOne(job, fetchedAt);
      } catch (error) {
        // complete/fail did not reach pg-boss: the job's expiry hands it back.
        report(error);
        await sleep(pollMs, closing.signal);
      }
    }
  };

  const loops = Array.from({ length: settings.concurrency }, loop);
  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= (async () => {
        closing.abort();
        for (const stop of running) stop.abort();
        await Promise.all(loops);
        await boss.stop({ graceful: true, wait: true, timeout: STOP_TIMEOUT_MS });
      })();
      return closed;
    },
  };
}

/** Adds the run's job unless the queue already has it (`send` returns null for an existing id). */
async function enqueue(
  settings: Omit<AdapterSettings, "concurrency" | "onError">,
  data: RunJobData,
): Promise<{ jobId: string; created: boolean }> {
  let engineError: Error | undefined;
  const { boss } = await openBoss(settings, { supervise: false, connections: 2 }, (error) => {
    engineError ??= error;
  });
  try {
    const jobId = pgBossJobId(settings.queue, data.runId);
    const payload: RunJobData = { pipeline: data.pipeline, runId: data.runId };
    if (data.inputs !== undefined) payload.inputs = data.inputs;
    const sent = await boss.send(settings.queue, payload, { id: jobId, ...jobOptions(settings.leaseTtlMs) });
    if (engineError !== undefined) throw engineError;
    return { jobId, created: sent !== null };
  } finally {
    await boss.stop({ graceful: false });
  }
}

/** The pg-boss adapter. */
export const adapter: EngineAdapter = { startWorker, enqueue };
