/**
 * The flags `cairn worker` and `cairn enqueue` share: the queue engine, its connection, the
 * queue's name and the lease TTL. Each engine has its own connection flag; giving the other
 * engine's flag is a usage error rather than a flag silently ignored.
 */
import { type Command, InvalidArgumentError as CommanderArgumentError, Option } from "commander";
import type { WorkerConnection, WorkerEngine } from "../workers/types.js";
import { CommandExit, ExitCode, UsageError } from "./exit-codes.js";
import { redactPassword } from "./store-args.js";

/** The engines, as `--engine` takes them. */
export const ENGINES: readonly WorkerEngine[] = ["bullmq", "pg-boss"];

/** Redis when `--redis-url` and `REDIS_URL` are both absent (BullMQ). */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

/** The flags of {@link addEngineOptions}. */
export interface EngineFlags {
  engine: WorkerEngine;
  redisUrl?: string;
  connectionString?: string;
  pgBossSchema?: string;
  queue?: string;
  leaseTtl?: number;
  json?: boolean;
}

/** Parses `--lease-ttl`: whole milliseconds, at least a second (pg-boss counts its expiry in seconds). */
function parseLeaseTtl(value: string): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < 1000)
    throw new CommanderArgumentError("expected a whole number of milliseconds ≥ 1000");
  return Number(value);
}

/** Parses `--queue`: a name the engines accept as is (BullMQ keys its queue by it, `:` is its separator). */
function parseQueue(value: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(value))
    throw new CommanderArgumentError(
      "expected letters, digits, '.', '_' and '-' only, starting with a letter or digit",
    );
  return value;
}

/** Parses `--pg-boss-schema`: a plain SQL name, as pg-boss puts it in its statements unquoted. */
function parseSchema(value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value))
    throw new CommanderArgumentError(
      "expected a plain SQL name: letters, digits and '_', not starting with a digit",
    );
  return value;
}

/** Adds `--engine`, the connection flags, `--queue`, `--lease-ttl` and `--json` to `command`. */
export function addEngineOptions(command: Command, json: string): Command {
  return command
    .addOption(
      new Option("--engine <engine>", "the queue engine: bullmq (Redis) or pg-boss (PostgreSQL)")
        .choices(ENGINES)
        .makeOptionMandatory(),
    )
    .option(
      "--redis-url <url>",
      `bullmq: the Redis holding the queue (default: REDIS_URL, else ${DEFAULT_REDIS_URL})`,
    )
    .option(
      "--connection-string <url>",
      "pg-boss: the PostgreSQL holding the queue (default: DATABASE_URL; one is required)",
    )
    .option(
      "--pg-boss-schema <name>",
      "pg-boss: the PostgreSQL schema of its tables (default pgboss)",
      parseSchema,
    )
    .option("--queue <name>", "the queue's name (default cairn-runs)", parseQueue)
    .option(
      "--lease-ttl <ms>",
      "the runs' lease TTL, which also sets the engine's lock duration (bullmq) or job expiry " +
        "(pg-boss); give workers and enqueue the same value (default 30000)",
      parseLeaseTtl,
    )
    .option("--json", json);
}

/**
 * The engine's connection from the flags, else the environment (`REDIS_URL` for bullmq,
 * `DATABASE_URL` for pg-boss); the other engine's flag is refused.
 */
export function engineConnection(flags: EngineFlags, env: NodeJS.ProcessEnv = process.env): WorkerConnection {
  for (const [flag, value] of [
    ["--redis-url", flags.redisUrl],
    ["--connection-string", flags.connectionString],
  ] as const)
    if (value !== undefined && value.trim() === "") throw new UsageError(`${flag} is empty`);
  if (flags.engine === "bullmq") {
    for (const [flag, value] of [
      ["--connection-string", flags.connectionString],
      ["--pg-boss-schema", flags.pgBossSchema],
    ] as const)
      if (value !== undefined)
        throw new UsageError(`${flag} is for --engine pg-boss; bullmq's queue is in Redis: use --redis-url`);
    return flags.redisUrl ?? (env.REDIS_URL || DEFAULT_REDIS_URL);
  }
  if (flags.redisUrl !== undefined)
    throw new UsageError(
      "--redis-url is for --engine bullmq; pg-boss's queue is in PostgreSQL: use --connection-string",
    );
  const url = flags.connectionString ?? (env.DATABASE_URL || undefined);
  if (url === undefined)
    throw new UsageError(
      "--engine pg-boss needs a PostgreSQL connection: pass --connection-string <url> or set DATABASE_URL",
    );
  return flags.pgBossSchema !== undefined ? { connectionString: url, schema: flags.pgBossSchema } : url;
}

/** The connection, for messages (its password hidden). */
export function connectionLabel(connection: WorkerConnection): string {
  if (typeof connection === "string") return redactPassword(connection);
  const { connectionString, schema } = connection;
  return typeof connectionString === "string"
    ? `${redactPassword(connectionString)}${typeof schema === "string" ? ` (schema ${schema})` : ""}`
    : "(connection options)";
}

/**
 * The options of `createWorker` / `enqueueRun` the shared flags set: the engine, its connection
 * (see {@link engineConnection}: a usage error comes from there), the queue and the lease TTL
 * (absent ones left to their defaults).
 */
export function engineOptions(
  flags: EngineFlags,
  env: NodeJS.ProcessEnv = process.env,
): { engine: WorkerEngine; connection: WorkerConnection; queue?: string; leaseTtlMs?: number } {
  return {
    engine: flags.engine,
    connection: engineConnection(flags, env),
    ...(flags.queue !== undefined ? { queue: flags.queue } : {}),
    ...(flags.leaseTtl !== undefined ? { leaseTtlMs: flags.leaseTtl } : {}),
  };
}

/** Socket errors that mean the queue's server cannot be reached (the engines throw them untyped). */
const UNREACHABLE = [
  "ECONNREFUSED",
  "ENOTFOUND",
  "ETIMEDOUT",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
];

/**
 * Rethrows an engine's connection error as exit 5 (server unreachable), as the store commands
 * report theirs; any other error as it is.
 */
export function unreachableAsExit(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && UNREACHABLE.includes(code))
    throw new CommandExit(
      ExitCode.StoreUnavailable,
      `the queue's server is unreachable: ${(error as Error).message} (${code})`,
    );
  throw error;
}
