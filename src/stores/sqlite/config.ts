/** The SQLite store's options, and their checks. */
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
}

/** SQLite's `PRAGMA synchronous` levels the store accepts. */
export type SqliteSynchronous = "full" | "normal";
const SYNCHRONOUS_LEVELS: readonly string[] = ["full", "normal"] satisfies SqliteSynchronous[];
const SQLITE_OPTIONS = [
  "dbPath",
  "database",
  "tablePrefix",
  "synchronous",
] as const satisfies readonly (keyof SqliteStoreConfig)[];

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
