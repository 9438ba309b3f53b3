/**
 * How a cairn lease TTL becomes pg-boss settings, and how a run id becomes a pg-boss job id.
 * pg-boss 10 has no heartbeat: an active job is failed (and retried) once `expireInSeconds` have
 * passed since it started, whatever the worker is doing. So a job is a *slice* of its run: the
 * worker stops the run at its next checkpoint before the slice expires and hands the job back.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../core/errors.js";
import type { WorkerConnection } from "./types.js";

/** pg-boss's default schema, used when the connection names none. */
export const DEFAULT_PGBOSS_SCHEMA = "pgboss";

/**
 * Retries allowed per job: every slice and every dead-worker expiry counts as one, and each one
 * resumes from a checkpoint, so no count of them means the run cannot finish (PostgreSQL int max).
 */
export const PGBOSS_RETRY_LIMIT = 2_147_483_647;

/** The pg-boss settings derived from the lease TTL `T` (ms). */
export interface PgBossTiming {
  /** The job's expiry: `ceil(T / 1000)` s, at least 1 (pg-boss's unit and minimum). */
  expireInSeconds: number;
  /** When the worker stops the run at its next checkpoint, in ms after the job started. */
  sliceMs: number;
  /** How often maintenance fails expired jobs: `T / 2` rounded down to whole seconds, at least 1 (pg-boss's minimum). */
  maintenanceIntervalSeconds: number;
  /** How often an idle worker asks for a job: `T / 10`, between 0.5 s (pg-boss's minimum) and 1 s. */
  pollingIntervalSeconds: number;
}

/** Derives the pg-boss timing from the cairn lease TTL. */
export function pgBossTiming(leaseTtlMs: number): PgBossTiming {
  if (!Number.isFinite(leaseTtlMs) || leaseTtlMs <= 0) {
    throw new InvalidArgumentError(`leaseTtlMs must be a positive number of milliseconds, got ${leaseTtlMs}`);
  }
  const expireInSeconds = Math.max(1, Math.ceil(leaseTtlMs / 1000));
  return {
    expireInSeconds,
    sliceMs: sliceMs(expireInSeconds),
    maintenanceIntervalSeconds: Math.max(1, Math.floor(leaseTtlMs / 2000)),
    pollingIntervalSeconds: Math.min(1, Math.max(0.5, leaseTtlMs / 10_000)),
  };
}

/**
 * When a job that expires after `expireInSeconds` ends its slice, in ms after it started. The
 * margin leaves the running stage time to finish and checkpoint inside the slice: a stage longer
 * than it overruns the slice, and the job then waits for pg-boss's maintenance.
 */
export function sliceMs(expireInSeconds: number): number {
  const expireMs = expireInSeconds * 1000;
  const margin = Math.max(500, Math.round(expireMs / 2));
  return Math.max(250, expireMs - margin);
}

/** The per-job options every run's job is sent and its queue created with. */
export function jobOptions(leaseTtlMs: number) {
  return {
    expireInSeconds: pgBossTiming(leaseTtlMs).expireInSeconds,
    retryLimit: PGBOSS_RETRY_LIMIT,
    retryDelay: 0,
    retryBackoff: false,
  };
}

/**
 * The job id of a run: pg-boss 10 requires UUIDs, so the id is derived from the queue name and
 * the run id (SHA-256, laid out as an RFC 4122 version 5 UUID). The same run in the same queue
 * is always the same job, which is what makes enqueueing a run twice one job.
 */
export function pgBossJobId(queue: string, runId: string): string {
  const bytes = createHash("sha256").update(`cairn-run\0${queue}\0${runId}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * pg-boss's constructor options from a worker connection: a connection string, or an object
 * (`{ connectionString, schema }`, or any option pg-boss accepts) passed through.
 */
export function pgBossConfig(connection: WorkerConnection): {
  config: Record<string, unknown>;
  schema: string;
} {
  if (typeof connection === "string") {
    if (connection.length === 0) throw new InvalidArgumentError("the pg-boss connection string is empty");
    return { config: { connectionString: connection }, schema: DEFAULT_PGBOSS_SCHEMA };
  }
  if (connection === null || typeof connection !== "object") {
    throw new InvalidArgumentError(
      "a pg-boss connection is a connection string or an object such as { connectionString, schema }",
    );
  }
  const schema = connection.schema;
  if (schema !== undefined && (typeof schema !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(schema))) {
    throw new InvalidArgumentError(`the pg-boss schema must be a plain SQL name, got ${String(schema)}`);
  }
  return { config: { ...connection }, schema: schema ?? DEFAULT_PGBOSS_SCHEMA };
}
