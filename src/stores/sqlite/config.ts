/** The SQLite store's options, and their checks. */
import { InvalidConfigError } from "../../core/errors.js";
import { unknownOptionsProblem } from "../../core/options.js";
import type { SqliteDatabase } from "./database.js";

/** Options of the SQLite store. */
export interface SqliteStoreConfig {
  /** Database file; created with its folder when missing. `:memory:` keeps nothing. */
  dbPath?: string;
  /** An open better-sqlite3 database to use instead; the caller keeps ownership and closes it. */
  database?: SqliteDatabase;
  /** Prefix of every table and index name; default `cairn_`. */
  tablePrefix?: string;
  /**
   * `full` (default) syncs the WAL on every commit, so a checkpoint survives power loss;
   * `normal` syncs only at WAL checkpoints: it survives a crash of the process, not of the machine.
   */
  synchronous?: SqliteSynchronous;
  /**
   * How many changes the change feed keeps (at least 100; default 100,000); older ones are
   * trimmed, and a watcher or replicator behind them must re-sync. A string of digits is accepted
   * (the store URL's `?feedRetention=N`).
   */
  feedRetention?: number | string;
}

/** SQLite's `PRAGMA synchronous` levels the store accepts. */
export type SqliteSynchronous = "full" | "normal";
const SYNCHRONOUS_LEVELS: readonly string[] = ["full", "normal"] satisfies SqliteSynchronous[];
/** Every option the store accepts, for the registry. */
export const SQLITE_OPTIONS = [
  "dbPath",
  "database",
  "tablePrefix",
  "synchronous",
  "feedRetention",
] as const satisfies readonly (keyof SqliteStoreConfig)[];

/** The fewest changes a feed may keep: a watcher needs room to catch up. */
export const MIN_FEED_RETENTION = 100;
/** The number of changes the feed keeps when `feedRetention` is not given. */
export const DEFAULT_FEED_RETENTION = 100_000;

/** `feedRetention` as a number (default when undefined); undefined when it is not valid. */
export function feedRetentionOf(value: unknown): number | undefined {
  if (value === undefined) return DEFAULT_FEED_RETENTION;
  const n = typeof value === "string" && /^\d{1,15}$/.test(value) ? Number(value) : value;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= MIN_FEED_RETENTION ? n : undefined;
}

/** The problem with a `feedRetention` value, or undefined when it is fine. */
export function feedRetentionProblem(value: unknown): string | undefined {
  if (feedRetentionOf(value) !== undefined) return undefined;
  return `feedRetention must be an integer of at least ${MIN_FEED_RETENTION} (changes kept), got ${JSON.stringify(value)}`;
}

/**
 * A `sqlite:` URL as a configuration: the path, and options as query parameters
 * (`sqlite:./cairn.db?feedRetention=5000`). A path containing `?` must be given as `dbPath`.
 */
export function sqliteConfigFromUrl(url: string, pathOf: (rest: string) => string): Record<string, unknown> {
  const query = url.indexOf("?");
  const config: Record<string, unknown> = { dbPath: pathOf(query < 0 ? url : url.slice(0, query)) };
  if (query < 0) return config;
  for (const [key, value] of new URLSearchParams(url.slice(query + 1))) {
    if (key === "dbPath" || key === "database")
      throw new InvalidConfigError([`the sqlite URL cannot set ${key} as a query parameter`]);
    if (key in config) throw new InvalidConfigError([`the sqlite URL gives ${key} twice`]);
    config[key] = value;
  }
  return config;
}

/** The table prefix when none is configured. */
export const DEFAULT_TABLE_PREFIX = "cairn_";

// Same rule as the registry: the prefix is pasted into SQL, so it must be a plain identifier.
const PREFIX_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,30}$/;

/** What is wrong with a SQLite store configuration, one line each; empty when nothing is. */
export function configProblems(config: Record<string, unknown>): string[] {
  const {
    dbPath,
    database,
    tablePrefix = DEFAULT_TABLE_PREFIX,
    synchronous = "full",
  } = config as SqliteStoreConfig;
  const problems: string[] = [];
  const unknown = unknownOptionsProblem("the sqlite store", config, SQLITE_OPTIONS);
  if (unknown !== undefined) problems.push(unknown);
  if (typeof synchronous !== "string" || !SYNCHRONOUS_LEVELS.includes(synchronous)) {
    problems.push(`synchronous must be "full" or "normal", got ${JSON.stringify(synchronous)}`);
  }
  const retention = feedRetentionProblem(config.feedRetention);
  if (retention !== undefined) problems.push(retention);
  if (typeof tablePrefix !== "string" || !PREFIX_PATTERN.test(tablePrefix)) {
    problems.push("tablePrefix must be letters, digits and '_', not starting with a digit (at most 31)");
  }
  if (database !== undefined && dbPath !== undefined) {
    problems.push("give dbPath or database, not both");
  } else if (database !== undefined) {
    const db = database as Partial<SqliteDatabase> | null;
    if (typeof db?.prepare !== "function" || typeof db.transaction !== "function") {
      problems.push("database must be an open better-sqlite3 Database");
    } else if (db.open === false) problems.push("database is closed");
    if (config.synchronous !== undefined) {
      problems.push(
        "synchronous applies to a database the store opens; set the pragma on your own connection",
      );
    }
  } else if (typeof dbPath !== "string" || dbPath.length === 0) {
    problems.push("dbPath must be a non-empty string (or pass an open better-sqlite3 database as database)");
  }
  return problems;
}
