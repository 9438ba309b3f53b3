/**
 * Configuration of the PostgreSQL store: validation (every problem reported at once), the
 * options handed to `pg.Pool`, and the location string shown in messages (never the password).
 */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import type { PgPool } from "./driver.js";

/** Options of the PostgreSQL store. */
export interface PostgresStoreConfig {
  /** `postgres://user:pass@host:port/db?sslmode=...`; may carry `schema`, `tablePrefix`, `poolSize`, `statementTimeoutMs`, `feedRetention`. */
  connectionString?: string;
  /** Server host, when no connection string is given. */
  host?: string;
  /** Server port (default 5432). */
  port?: number;
  /** Role to connect as. */
  user?: string;
  /** Password of `user`, or a function returning it (as pg accepts). */
  password?: string | (() => string | Promise<string>);
  /** Database name. */
  database?: string;
  /** Schema holding cairn's tables, created when missing; default `public`. */
  schema?: string;
  /** Prefix of every table and index name; default `cairn_`. */
  tablePrefix?: string;
  /** TLS: `true`, or tls options (`ca`, `cert`, `key`, `rejectUnauthorized`, ...) passed to pg as is. */
  ssl?: boolean | Record<string, unknown>;
  /** Most connections the pool opens; default 10. */
  poolSize?: number;
  /** Server-side limit of one statement, in ms (`statement_timeout`); 0 means none. */
  statementTimeoutMs?: number;
  /** How long to wait for a new connection before reporting the store unavailable; default 10 s. */
  connectionTimeoutMs?: number;
  /** `application_name` shown in `pg_stat_activity`; default `cairn`. */
  applicationName?: string;
  /** An open `pg.Pool` to use instead; the caller owns it and ends it. */
  pool?: PgPool;
  /** How many of the newest changes the change feed keeps (at least 100); default 100,000. */
  feedRetention?: number;
}

/** Every option the store accepts, for the registry. */
export const POSTGRES_OPTIONS = [
  "connectionString",
  "host",
  "port",
  "user",
  "password",
  "database",
  "schema",
  "tablePrefix",
  "ssl",
  "poolSize",
  "statementTimeoutMs",
  "connectionTimeoutMs",
  "applicationName",
  "pool",
  "feedRetention",
] as const satisfies readonly (keyof PostgresStoreConfig)[];

/** A validated configuration. */
export interface ResolvedConfig {
  schema: string;
  tablePrefix: string;
  /** The caller's pool, or undefined when the store creates (and ends) its own. */
  pool: PgPool | undefined;
  /** Options for `new pg.Pool(...)` (unused with a caller's pool). */
  poolOptions: Record<string, unknown>;
  /** `postgres://host:port/db (schema x)`. */
  location: string;
  /** How many of the newest changes the feed keeps. */
  feedRetention: number;
}

/** The feed's retention when none is configured. */
export const DEFAULT_FEED_RETENTION = 100_000;

// Quoted in SQL, so any plain identifier is safe; PostgreSQL reserves `pg_` schema names.
const SCHEMA_PATTERN = /^(?!pg_)[A-Za-z_][A-Za-z0-9_]{0,62}$/;
// At most 30, so `<prefix>checkpoints_run_sequence` stays within the 63-byte name limit.
const PREFIX_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,29}$/;
/** Options that configure a connection, meaningless when the caller passes a pool. */
const CONNECTION_OPTIONS = POSTGRES_OPTIONS.filter(
  (k) => !["schema", "tablePrefix", "pool", "feedRetention"].includes(k),
);
/** Options a connection string may carry as query parameters; cairn's, not the server's. */
const URL_OPTIONS = ["schema", "tablePrefix", "poolSize", "statementTimeoutMs", "feedRetention"] as const;
const FIELD_OPTIONS = ["host", "port", "user", "password", "database"] as const;

/** An integer from a number or a string of digits (URL parameters are strings). */
function toInteger(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === "string" && /^\d{1,15}$/.test(value)) return Number(value);
  return undefined;
}

interface ParsedUrl {
  /** The URL without cairn's own query parameters, for pg. */
  url: string;
  params: Partial<Record<(typeof URL_OPTIONS)[number], string>>;
  host: string;
  port: string;
  database: string;
}

function parseConnectionString(value: unknown, problems: string[]): ParsedUrl | undefined {
  if (typeof value !== "string" || value.length === 0) {
    problems.push("connectionString must be a non-empty postgres:// URL");
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // The URL may hold a password: never echo it.
    problems.push(
      "connectionString is not a valid URL (expected postgres://user:password@host:port/database)",
    );
    return undefined;
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    problems.push(`connectionString must start with postgres:// or postgresql://, not ${url.protocol}//`);
    return undefined;
  }
  const params: ParsedUrl["params"] = {};
  for (const key of URL_OPTIONS) {
    const param = url.searchParams.get(key);
    if (param !== null) params[key] = param;
    url.searchParams.delete(key);
  }
  return {
    url: url.toString(),
    params,
    host: url.hostname || url.searchParams.get("host") || "localhost",
    port: url.port || "5432",
    database: decodeURIComponent(url.pathname.slice(1)),
  };
}

/** Validates a store configuration; throws `InvalidConfigError` listing every problem. */
export function resolveConfig(config: Record<string, unknown>): ResolvedConfig {
  const problems: string[] = [];
  const unknown = unknownOptionsProblem("the postgres store", config, POSTGRES_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  const given = (key: string) => config[key] !== undefined;
  const parsed = given("connectionString")
    ? parseConnectionString(config.connectionString, problems)
    : undefined;

  // A URL parameter and an option for the same thing: refuse rather than guess which one wins.
  const merged: Record<string, unknown> = { ...config };
  for (const [key, value] of Object.entries(parsed?.params ?? {})) {
    if (given(key)) problems.push(`${key} is given both in connectionString and as an option`);
    else merged[key] = value;
  }

  const pool = config.pool as Partial<PgPool> | null | undefined;
  if (pool !== undefined) {
    if (
      typeof pool?.connect !== "function" ||
      typeof pool.query !== "function" ||
      typeof pool.end !== "function"
    ) {
      problems.push("pool must be a pg.Pool");
    }
    const clashing = CONNECTION_OPTIONS.filter(given);
    if (clashing.length > 0) {
      problems.push(`with pool, the connection belongs to the pool: remove ${clashing.join(", ")}`);
    }
  }
  // pg lets a connection string silently override the separate fields (even with an empty
  // password), so the two ways of naming the server are exclusive.
  const fields = FIELD_OPTIONS.filter(given);
  if (given("connectionString") && fields.length > 0) {
    problems.push(`give connectionString or ${fields.join(", ")}, not both`);
  }
  if (
    given("connectionString") &&
    given("ssl") &&
    /[?&](sslmode|ssl)=/.test(String(config.connectionString))
  ) {
    problems.push("give ssl/sslmode in connectionString or the ssl option, not both");
  }

  const text = (key: string) => {
    if (given(key) && (typeof config[key] !== "string" || config[key] === "")) {
      problems.push(`${key} must be a non-empty string`);
    }
  };
  text("host");
  text("user");
  text("database");
  text("applicationName");
  if (given("password") && typeof config.password !== "string" && typeof config.password !== "function") {
    problems.push("password must be a string (or a function returning one)");
  }
  const port = toInteger(config.port);
  if (given("port") && (port === undefined || port < 1 || port > 65535)) {
    problems.push("port must be an integer from 1 to 65535");
  }
  if (
    given("ssl") &&
    typeof config.ssl !== "boolean" &&
    (typeof config.ssl !== "object" || config.ssl === null)
  ) {
    problems.push("ssl must be a boolean or an object of tls options");
  }

  const schema = merged.schema ?? "public";
  if (typeof schema !== "string" || !SCHEMA_PATTERN.test(schema)) {
    problems.push(
      "schema must be letters, digits and '_', not starting with a digit or pg_ (at most 63 characters)",
    );
  }
  const tablePrefix = merged.tablePrefix ?? "cairn_";
  if (typeof tablePrefix !== "string" || !PREFIX_PATTERN.test(tablePrefix)) {
    problems.push("tablePrefix must be letters, digits and '_', not starting with a digit (at most 30)");
  }
  const integer = (key: string, min: number, max: number, fallback: number | undefined) => {
    if (merged[key] === undefined) return fallback;
    const n = toInteger(merged[key]);
    if (n === undefined || n < min || n > max)
      problems.push(`${key} must be an integer from ${min} to ${max}`);
    return n;
  };
  const poolSize = integer("poolSize", 1, 10_000, 10);
  const statementTimeoutMs = integer("statementTimeoutMs", 0, 2_147_483_647, undefined);
  const connectionTimeoutMs = integer("connectionTimeoutMs", 0, 2_147_483_647, 10_000);
  const feedRetention = integer("feedRetention", 100, 1_000_000_000_000, DEFAULT_FEED_RETENTION);
  if (problems.length > 0) throw new InvalidConfigError(problems);

  const poolOptions: Record<string, unknown> = {
    max: poolSize,
    connectionTimeoutMillis: connectionTimeoutMs,
    application_name: config.applicationName ?? "cairn",
    // TCP keepalive notices a server that vanished without closing the connection.
    keepAlive: true,
    // Idle connections never keep the process alive (a script without close() ends); a
    // connection in use still does, and the store holds the process while it awaits a reply.
    allowExitOnIdle: true,
  };
  if (parsed) poolOptions.connectionString = parsed.url;
  for (const key of FIELD_OPTIONS) if (given(key)) poolOptions[key] = key === "port" ? port : config[key];
  if (given("ssl")) poolOptions.ssl = config.ssl;
  if (statementTimeoutMs !== undefined) poolOptions.statement_timeout = statementTimeoutMs;

  const where = parsed ?? describePool(pool ?? undefined) ?? describeFields(config);
  return {
    schema: schema as string,
    tablePrefix: tablePrefix as string,
    pool: (pool ?? undefined) as PgPool | undefined,
    poolOptions,
    location: `postgres://${where.host}:${where.port}/${where.database} (schema ${schema as string})`,
    feedRetention: feedRetention ?? DEFAULT_FEED_RETENTION,
  };
}

type Where = { host: string; port: string; database: string };

// Mirrors pg's defaults (environment variables, then localhost:5432) for the location string.
function describeFields(options: Record<string, unknown>): Where {
  const env = process.env;
  return {
    host: String(options.host ?? env.PGHOST ?? "localhost"),
    port: String(options.port ?? env.PGPORT ?? 5432),
    database: String(options.database ?? env.PGDATABASE ?? options.user ?? env.PGUSER ?? ""),
  };
}

function describePool(pool: Partial<PgPool> | undefined): Where | undefined {
  if (pool === undefined) return undefined;
  const options = (pool.options ?? {}) as Record<string, unknown>;
  if (typeof options.connectionString === "string") {
    const parsed = parseConnectionString(options.connectionString, []);
    if (parsed) return parsed;
  }
  return describeFields(options);
}

/** Every problem with a configuration (empty when valid), without opening anything. */
export function configProblems(config: Record<string, unknown>): string[] {
  try {
    resolveConfig(config);
    return [];
  } catch (error) {
    if (error instanceof InvalidConfigError) return [...error.problems];
    throw error;
  }
}
