/**
 * The BullMQ engine (Redis). BullMQ's own liveness does the fleet work: a worker holds a lock on
 * each active job and renews it at half its duration; a job whose lock lapsed (its worker died or
 * froze) is found by the stall check and goes back to the queue for another worker, whose
 * execute() resumes the run from its checkpoints. Settings derived from the lease TTL T:
 * `lockDuration` T, `stalledInterval` T/2, `maxStalledCount` 10 (each stall of a checkpointed run
 * is a resume, not a restart, so BullMQ's default of 1 would abandon runs for no reason).
 */
import { randomUUID } from "node:crypto";
import type { Job, Processor } from "bullmq";
import { InvalidArgumentError, StoreUnavailableError } from "../core/errors.js";
import { loadDriver } from "../stores/driver.js";
import type {
  AdapterSettings,
  EngineAdapter,
  EngineWorker,
  JobHandler,
  RunJobData,
  WorkerConnection,
} from "./types.js";

type BullMQ = typeof import("bullmq");
type Driver = Pick<BullMQ, "Queue" | "Worker" | "DelayedError" | "UnrecoverableError">;

/** Stalls a job survives before BullMQ fails it: every stall of a run is a resume from a checkpoint. */
export const MAX_STALLED_COUNT = 10;
/** How long BullMQ keeps a finished job (so an enqueue of the same run id stays a no-op meanwhile). */
const KEEP_COMPLETED_S = 24 * 3600;
const KEEP_FAILED_S = 7 * 24 * 3600;
/** Marks one enqueue's payload, to tell whether `add` created the job or found it there. */
const NONCE = "cairnEnqueue";

function loadBullMQ(): Promise<Driver> {
  return loadDriver(
    "bullmq",
    "bullmq",
    () => import("bullmq"),
    (m) =>
      typeof m.Worker === "function" && typeof m.Queue === "function" ? (m as unknown as Driver) : undefined,
    "The bullmq worker engine",
  );
}

/** BullMQ's options derived from the lease TTL (exported for the README's table and tests). */
export function bullmqSettings(leaseTtlMs: number) {
  return {
    lockDuration: leaseTtlMs,
    stalledInterval: Math.max(500, Math.floor(leaseTtlMs / 2)),
    maxStalledCount: MAX_STALLED_COUNT,
  };
}

/** ioredis options and BullMQ's key prefix from a `redis://` URL or `{ url?, prefix?, ...ioredis options }`. */
export function bullmqConnection(connection: WorkerConnection): {
  redis: Record<string, unknown>;
  prefix: string | undefined;
} {
  if (typeof connection === "string") return { redis: redisUrlOptions(connection), prefix: undefined };
  const { url, prefix, ...rest } = connection as Record<string, unknown>;
  if (url !== undefined && typeof url !== "string")
    throw new InvalidArgumentError("connection.url must be a redis:// URL");
  if (prefix !== undefined && (typeof prefix !== "string" || prefix.length === 0))
    throw new InvalidArgumentError("connection.prefix (BullMQ's key prefix) must be a non-empty string");
  if ("keyPrefix" in rest)
    throw new InvalidArgumentError(
      "BullMQ does not support ioredis keyPrefix: use connection.prefix instead",
    );
  return { redis: { ...(url !== undefined ? redisUrlOptions(url) : {}), ...rest }, prefix };
}

function redisUrlOptions(text: string): Record<string, unknown> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`connection ${JSON.stringify(text)} is not a redis:// URL`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:")
    throw new InvalidArgumentError(
      `the bullmq engine needs a redis:// or rediss:// URL, got ${url.protocol}//…`,
    );
  const db = url.pathname.replace(/^\//, "");
  if (db !== "" && !/^\d+$/.test(db))
    throw new InvalidArgumentError(`redis URL database must be a number, got ${db}`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1",
    port: url.port === "" ? 6379 : Number(url.port),
    ...(url.username !== "" ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== "" ? { password: decodeURIComponent(url.password) } : {}),
    ...(db !== "" ? { db: Number(db) } : {}),
    ...(url.protocol === "rediss:" ? { tls: {} } : {}),
  };
}

/** Where the connection points, for messages (never its password). */
function where(redis: Record<string, unknown>): string {
  return `Redis at ${String(redis.host ?? "127.0.0.1")}:${String(redis.port ?? 6379)}`;
}

type RedisClient = {
  connect(): Promise<void>;
  disconnect(): void;
  on(event: "error", listener: (error: Error) => void): unknown;
};
type RedisConstructor = new (options: Record<string, unknown>) => RedisClient;

/**
 * Connects once to the server, without retrying, before BullMQ does (BullMQ's own connections
 * retry forever): a worker or an enqueue pointed at a server that does not answer, or refuses
 * the password, fails now with `CAIRN_STORE_UNAVAILABLE` instead of waiting for ever.
 */
async function probe(redis: Record<string, unknown>): Promise<void> {
  // ioredis is a dependency of bullmq: installed with it.
  const Redis = await loadDriver<RedisConstructor>(
    "bullmq",
    "ioredis",
    () => import("ioredis"),
    (m) => (typeof m.Redis === "function" ? (m.Redis as RedisConstructor) : undefined),
    "The bullmq worker engine",
  );
  const client = new Redis({
    ...redis,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // The socket's error says why (ECONNREFUSED); connect() only says the connection closed.
  let reason: Error | undefined;
  client.on("error", (error) => {
    reason ??= error;
  });
  try {
    await client.connect();
  } catch (error) {
    const cause = reason ?? (error as Error);
    throw new StoreUnavailableError("bullmq", `cannot reach ${where(redis)}: ${cause.message}`, { cause });
  } finally {
    client.disconnect();
  }
}

/** The job's payload without the enqueue marker. */
function payloadOf(job: Job): RunJobData {
  const { [NONCE]: _nonce, ...data } = (job.data ?? {}) as Record<string, unknown>;
  return data as unknown as RunJobData;
}

/** A lock or state error: the job is no longer this worker's (another one has it, or it finished). */
const isLockError = (error: unknown) =>
  /lock|missing key|not in the active|not active/i.test(String((error as Error)?.message ?? error));

async function startWorker(settings: AdapterSettings, handler: JobHandler): Promise<EngineWorker> {
  const { Worker, DelayedError, UnrecoverableError } = await loadBullMQ();
  const { redis, prefix } = bullmqConnection(settings.connection);
  await probe(redis);
  const stops = new Map<string, AbortController>();
  let closing = false;

  /** Puts a job this worker drained (or lost) back in the queue, due now. */
  const moveBack = async (job: Job, token: string | undefined) => {
    try {
      await job.moveToDelayed(Date.now(), token);
    } catch (error) {
      // Fenced: the job is another worker's now (or done). Anything else is worth a report.
      if (!isLockError(error)) settings.onError(error as Error);
    }
    // The documented way to end a processor whose job was moved: BullMQ then leaves the job alone.
    throw new DelayedError();
  };

  const processor: Processor = async (job, token) => {
    const data = payloadOf(job);
    const jobId = job.id ?? data.runId;
    // A job fetched as the worker closes goes straight back: a drain starts no new run.
    if (closing) return moveBack(job, token);
    const stop = new AbortController();
    stops.set(jobId, stop);
    let outcome: Awaited<ReturnType<JobHandler>>;
    try {
      outcome = await handler(data, { jobId, delivery: Math.max(1, job.attemptsStarted), stop: stop.signal });
    } finally {
      stops.delete(jobId);
    }
    switch (outcome.kind) {
      case "completed":
        return { status: "completed" };
      case "returned":
      case "fenced":
        // Fenced: never completed nor failed here; if the job is still ours it is retried, finding
        // the run's lease holder (or the completed run).
        return moveBack(job, token);
      case "failed":
        throw new UnrecoverableError(outcome.error.message);
    }
  };

  const worker = new Worker(settings.queue, processor, {
    connection: { ...redis, maxRetriesPerRequest: null },
    ...(prefix !== undefined ? { prefix } : {}),
    concurrency: settings.concurrency,
    ...bullmqSettings(settings.leaseTtlMs),
    autorun: true,
  });
  // Engine errors (a lost connection BullMQ retries, a lock it could not renew).
  worker.on("error", (error) => settings.onError(error));
  try {
    await worker.waitUntilReady();
  } catch (error) {
    await worker.close(true).catch(() => undefined);
    throw error;
  }
  return {
    async close() {
      closing = true;
      // close() takes no new job and waits for the active ones; the stops make them return soon.
      const closed = worker.close();
      for (const stop of stops.values()) stop.abort(new Error("the worker is closing"));
      await closed;
    },
  };
}

async function enqueue(
  settings: Omit<AdapterSettings, "concurrency" | "onError">,
  data: RunJobData,
): Promise<{ jobId: string; created: boolean }> {
  if (/^\d+$/.test(data.runId))
    throw new InvalidArgumentError(`BullMQ refuses integer job ids: run id ${data.runId} needs a non-digit`);
  const { Queue } = await loadBullMQ();
  const { redis, prefix } = bullmqConnection(settings.connection);
  await probe(redis);
  const queue = new Queue(settings.queue, { connection: redis, ...(prefix !== undefined ? { prefix } : {}) });
  try {
    const nonce = randomUUID();
    // An existing job id makes add() a no-op that returns the job as if new: the nonce tells.
    await queue.add(
      data.pipeline,
      { ...data, [NONCE]: nonce },
      {
        jobId: data.runId,
        attempts: 1,
        removeOnComplete: { age: KEEP_COMPLETED_S },
        removeOnFail: { age: KEEP_FAILED_S },
      },
    );
    const stored = await queue.getJob(data.runId);
    // Gone already: only a job added now and finished since could be (the kept ones stay a day).
    const created = stored === undefined || (stored.data as Record<string, unknown>)?.[NONCE] === nonce;
    return { jobId: data.runId, created };
  } finally {
    await queue.close();
  }
}

/** The BullMQ adapter. */
export const adapter: EngineAdapter = { startWorker, enqueue };
